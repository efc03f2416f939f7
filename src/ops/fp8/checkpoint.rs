//! FP8 weights straight from a safetensors checkpoint (`<name>` E4M3 codes and
//! `<name>_scale_inv` f32 block scales, as DeepSeek ships them) into device buffers.

use safetensors::{Dtype, SafeTensors};

use super::Fp8Weight;
use crate::error::{Error, Result};
use crate::fp8::F8E4M3;
use crate::runtime::Stream;

impl Fp8Weight {
    /// Loads the weights named `names` (each `[N, K]` F8_E4M3 with a `<name>_scale_inv` F32
    /// companion) from a safetensors file's bytes, stacked in order as groups.
    pub fn from_safetensors(stream: &Stream, bytes: &[u8], names: &[&str]) -> Result<Fp8Weight> {
        let file = SafeTensors::deserialize(bytes)
            .map_err(|e| Error::invalid(format!("safetensors: {e}"), "a valid safetensors file"))?;
        let mut codes = Vec::new();
        let mut scales = Vec::new();
        let mut dims: Option<(usize, usize)> = None;
        for name in names {
            let get = |n: &str, dtype: Dtype| {
                let t = file.tensor(n).map_err(|e| {
                    Error::invalid(format!("tensor {n}: {e}"), "the checkpoint's tensor names")
                })?;
                if t.dtype() != dtype {
                    return Err(Error::invalid(
                        format!("{n} is {:?}", t.dtype()),
                        format!("{dtype:?}"),
                    ));
                }
                Ok(t)
            };
            let w = get(name, Dtype::F8_E4M3)?;
            let s = get(&format!("{name}_scale_inv"), Dtype::F32)?;
            let (n, k) = match w.shape() {
                [n, k] => (*n, *k),
                other => {
                    return Err(Error::invalid(
                        format!("{name} of shape {other:?}"),
                        "an [N, K] matrix",
                    ));
                }
            };
            if dims.is_some_and(|d| d != (n, k)) {
                return Err(Error::invalid(
                    format!("{name} of shape [{n}, {k}]"),
                    format!("{:?} like the others", dims),
                ));
            }
            dims = Some((n, k));
            let want = [n.div_ceil(128), k.div_ceil(128)];
            if s.shape() != want {
                return Err(Error::invalid(
                    format!("{name}_scale_inv of shape {:?}", s.shape()),
                    format!("{want:?}"),
                ));
            }
            codes.extend(w.data().iter().map(|&b| F8E4M3::from_bits(b)));
            scales.extend(
                s.data()
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            );
        }
        let (n, k) = dims.ok_or_else(|| Error::invalid("no weight names", "at least one name"))?;
        Fp8Weight::upload(stream, names.len(), n, k, &codes, &scales)
    }
}
