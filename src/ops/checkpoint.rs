//! A layer's tensors out of a safetensors checkpoint by name: the lookup, the dtype and shape
//! checks, and errors that name the tensor, for every loader
//! ([`MoeLayer`](super::moe::MoeLayer), [`MlaLayer`](super::mla::MlaLayer),
//! [`Fp8Weight::from_safetensors`](super::fp8::Fp8Weight::from_safetensors)).

use half::bf16;
use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result};
use crate::fp8::{BlockQuantized, F8E4M3, ScaleLayout};

/// A parsed safetensors file and the prefix of one layer's names (`model.layers.3.mlp`;
/// empty for full names).
pub(crate) struct Checkpoint<'a> {
    file: SafeTensors<'a>,
    prefix: &'a str,
}

impl<'a> Checkpoint<'a> {
    /// Parses the file's header.
    pub(crate) fn parse(bytes: &'a [u8], prefix: &'a str) -> Result<Self> {
        let file = SafeTensors::deserialize(bytes)
            .map_err(|e| Error::invalid(format!("safetensors: {e}"), "a valid safetensors file"))?;
        Ok(Checkpoint { file, prefix })
    }

    /// The full name of the layer's tensor `name`.
    pub(crate) fn full(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    /// The dtype of `name`, or `None` when the file has no such tensor.
    pub(crate) fn dtype(&self, name: &str) -> Option<Dtype> {
        self.file.tensor(&self.full(name)).ok().map(|t| t.dtype())
    }

    /// The shape and little-endian bytes of `name`, which must be of `dtype`.
    pub(crate) fn tensor(&self, name: &str, dtype: Dtype) -> Result<(Vec<usize>, &'a [u8])> {
        let full = self.full(name);
        let t = self.file.tensor(&full).map_err(|e| {
            Error::invalid(
                format!("tensor {full}: {e}"),
                "the checkpoint's tensor names",
            )
        })?;
        if t.dtype() != dtype {
            return Err(Error::invalid(
                format!("{full} is {:?}", t.dtype()),
                format!("{dtype:?}"),
            ));
        }
        Ok((t.shape().to_vec(), t.data()))
    }

    /// `name` as BF16 values of exactly `shape`.
    pub(crate) fn bf16(&self, name: &str, shape: &[usize]) -> Result<Vec<bf16>> {
        let (got, data) = self.tensor(name, Dtype::BF16)?;
        self.check_shape(name, &got, shape)?;
        Ok(le_bf16(data))
    }

    /// `name` as F8_E4M3 `[N, K]` codes with their `{name}_scale_inv` F32 128×128 block
    /// scales (`[ceil(N/128), ceil(K/128)]`), DeepSeek's FP8 weights.
    pub(crate) fn fp8(&self, name: &str) -> Result<BlockQuantized> {
        let (shape, codes) = self.tensor(name, Dtype::F8_E4M3)?;
        let (n, k) = match shape.as_slice() {
            [n, k] => (*n, *k),
            other => {
                return Err(Error::invalid(
                    format!("{} of shape {other:?}", self.full(name)),
                    "an [N, K] matrix",
                ));
            }
        };
        let scale_name = format!("{name}_scale_inv");
        let (scale_shape, scales) = self.tensor(&scale_name, Dtype::F32)?;
        self.check_shape(
            &scale_name,
            &scale_shape,
            &[n.div_ceil(128), k.div_ceil(128)],
        )?;
        let codes = codes.iter().map(|&b| F8E4M3::from_bits(b)).collect();
        Ok(BlockQuantized::from_parts(
            codes,
            le_f32(scales),
            n,
            k,
            ScaleLayout::Block128x128,
        )?)
    }

    /// The error for tensor `name` of shape `got` where `want` was expected.
    pub(crate) fn check_shape(&self, name: &str, got: &[usize], want: &[usize]) -> Result<()> {
        if got != want {
            return Err(Error::invalid(
                format!("{} of shape {got:?}", self.full(name)),
                format!("{want:?}"),
            ));
        }
        Ok(())
    }
}

/// Little-endian BF16 bytes as values.
pub(crate) fn le_bf16(bytes: &[u8]) -> Vec<bf16> {
    bytes
        .chunks_exact(2)
        .map(|b| bf16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// Little-endian F32 bytes as values.
pub(crate) fn le_f32(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}
