//! FP8 weights straight from a safetensors checkpoint (`<name>` E4M3 codes and
//! `<name>_scale_inv` f32 block scales, as DeepSeek ships them) into device buffers.

use super::Fp8Weight;
use crate::error::{Error, Result};
use crate::ops::checkpoint::Checkpoint;
use crate::runtime::Stream;

impl Fp8Weight {
    /// Loads the weights named `names` (each `[N, K]` F8_E4M3 with a `<name>_scale_inv` F32
    /// companion) from a safetensors file's bytes, stacked in order as groups.
    pub fn from_safetensors(stream: &Stream, bytes: &[u8], names: &[&str]) -> Result<Fp8Weight> {
        Self::from_checkpoint(stream, &Checkpoint::parse(bytes, "")?, names)
    }

    /// [`from_safetensors`](Self::from_safetensors) from a parsed checkpoint, names relative
    /// to its prefix.
    pub(crate) fn from_checkpoint(
        stream: &Stream,
        ck: &Checkpoint<'_>,
        names: &[impl AsRef<str>],
    ) -> Result<Fp8Weight> {
        let mut codes = Vec::new();
        let mut scales = Vec::new();
        let mut dims: Option<(usize, usize)> = None;
        for name in names {
            let name = name.as_ref();
            let q = ck.fp8(name)?;
            let (n, k) = (q.rows(), q.cols());
            if dims.is_some_and(|d| d != (n, k)) {
                return Err(Error::invalid(
                    format!("{} of shape [{n}, {k}]", ck.full(name)),
                    format!("{:?} like the others", dims),
                ));
            }
            dims = Some((n, k));
            let (c, s) = q.into_parts();
            codes.extend(c);
            scales.extend(s);
        }
        let (n, k) = dims.ok_or_else(|| Error::invalid("no weight names", "at least one name"))?;
        Fp8Weight::upload(stream, names.len(), n, k, &codes, &scales)
    }
}
