//! Checkpoints for the layer tests: named tensors (their values in f64, the dtype they are
//! stored in) written as a safetensors file, and their FP8 form (E4M3 codes with 128×128
//! `weight_scale_inv` blocks, DeepSeek's format).

use ascend_npu::fp8::{F8E4M3, ScaleFormat, quantize_weight};
use half::bf16;
use safetensors::Dtype;
use safetensors::tensor::TensorView;

/// `(name, shape, values, dtype)`; BF16 values are bf16-exact, F8_E4M3 values are
/// dequantized (code × scale, with the scales in `{name}_scale_inv`).
#[derive(Clone, Default)]
pub struct Tensors(pub Vec<(String, Vec<usize>, Vec<f64>, Dtype)>);

impl Tensors {
    /// Adds a tensor.
    pub fn push(&mut self, name: &str, shape: &[usize], values: Vec<f64>, dtype: Dtype) {
        self.0
            .push((name.to_string(), shape.to_vec(), values, dtype));
    }

    /// The values of `name`.
    pub fn get(&self, name: &str) -> &[f64] {
        &self.0.iter().find(|t| t.0 == name).unwrap().2
    }

    /// Removes `name`.
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|t| t.0 != name);
    }

    /// The same tensors with those `which` names quantized to FP8 (128×128 block scales);
    /// the values become the dequantized ones.
    pub fn quantized(&self, which: impl Fn(&str) -> bool) -> Tensors {
        let mut out = Tensors::default();
        for (name, shape, values, dtype) in &self.0 {
            if !which(name) {
                out.0
                    .push((name.clone(), shape.clone(), values.clone(), *dtype));
                continue;
            }
            let as_f32: Vec<f32> = values.iter().map(|&v| v as f32).collect();
            let q = quantize_weight(&as_f32, shape[0], shape[1], ScaleFormat::Fp32).unwrap();
            let deq = q.dequantize().iter().map(|&v| f64::from(v)).collect();
            let (sn, sk) = q.scale_shape();
            let scales = q.scales().iter().map(|&v| f64::from(v)).collect();
            out.push(name, shape, deq, Dtype::F8_E4M3);
            out.push(&format!("{name}_scale_inv"), &[sn, sk], scales, Dtype::F32);
        }
        out
    }

    /// The safetensors file, every name under `prefix`.
    pub fn bytes(&self, prefix: &str) -> Vec<u8> {
        self.bytes_without(prefix, "")
    }

    /// [`bytes`](Self::bytes) without the tensor `left_out` (an FP8 weight's scales, say,
    /// which its codes still need to be encoded).
    pub fn bytes_without(&self, prefix: &str, left_out: &str) -> Vec<u8> {
        let encoded: Vec<(String, Vec<usize>, Vec<u8>, Dtype)> = self
            .0
            .iter()
            .filter(|t| t.0 != left_out)
            .map(|(name, shape, values, dtype)| {
                let bytes = match dtype {
                    Dtype::BF16 => values
                        .iter()
                        .flat_map(|&v| bf16::from_f64(v).to_le_bytes())
                        .collect(),
                    // Dequantized values re-encode exactly: each is a code times its scale.
                    Dtype::F8_E4M3 => {
                        let scales = self.get(&format!("{name}_scale_inv"));
                        let sk = shape[1].div_ceil(128);
                        let at =
                            |i: usize| scales[(i / shape[1]) / 128 * sk + (i % shape[1]) / 128];
                        values
                            .iter()
                            .enumerate()
                            .map(|(i, &v)| F8E4M3::from_f64(v / at(i)).to_bits())
                            .collect()
                    }
                    _ => values
                        .iter()
                        .flat_map(|&v| (v as f32).to_le_bytes())
                        .collect(),
                };
                (format!("{prefix}.{name}"), shape.clone(), bytes, *dtype)
            })
            .collect();
        let views = encoded.iter().map(|(name, shape, bytes, dtype)| {
            (
                name.clone(),
                TensorView::new(*dtype, shape.clone(), bytes).unwrap(),
            )
        });
        safetensors::serialize(views, &None).unwrap()
    }
}
