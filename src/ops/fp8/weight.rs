//! FP8 weights on the device: E4M3 codes `[groups, N, K]` and their 128×128 block scales.

use crate::error::{Error, Result};
use crate::fp8::{BlockQuantized, F8E4M3, ScaleFormat, ScaleLayout};
use crate::kernels::{Kernels, MatmulOutput};
use crate::runtime::{DeviceBuffer, DeviceSlice, DeviceSliceMut, KernelArg, Stream};

/// FP8 weights of one matrix or a stack of experts, with `weight_scale_inv` block scales
/// (dequantized value = code × scale). Scales are checked finite when the weight is made, so
/// every GEMM can trust them.
pub struct Fp8Weight {
    pub(crate) codes: DeviceBuffer<F8E4M3>,
    pub(crate) scales: DeviceBuffer<f32>,
    pub(crate) groups: usize,
    pub(crate) n: usize,
    pub(crate) k: usize,
    /// Every scale is zero or a power of two `2^e` with `-117 <= e <= 119`: then `code × scale`
    /// is exact in bf16 for every E4M3 code (|code| in [2^-9, 448]), and the W8A16 GEMM folds
    /// the scales into its decode (UE8M0 scales always qualify).
    pub(crate) folds: bool,
}

/// Whether `s` times any E4M3 value is exact, and normal, in bf16 (see [`Fp8Weight::folds`]).
fn folds_into_bf16(s: f32) -> bool {
    let bits = s.to_bits();
    let exp = ((bits >> 23) & 0xFF) as i32 - 127;
    s == 0.0 || (bits & 0x7F_FFFF == 0 && (-117..=119).contains(&exp))
}

impl Fp8Weight {
    /// Uploads `groups` matrices of `[n, k]` codes with `[groups, ceil(n/128), ceil(k/128)]`
    /// scales.
    pub fn upload(
        stream: &Stream,
        groups: usize,
        n: usize,
        k: usize,
        codes: &[F8E4M3],
        scales: &[f32],
    ) -> Result<Fp8Weight> {
        if groups == 0 || n == 0 || k == 0 {
            return Err(Error::invalid(
                format!("FP8 weight of {groups} × [{n}, {k}]"),
                "non-empty weights",
            ));
        }
        let want_codes = groups.checked_mul(n).and_then(|x| x.checked_mul(k));
        if want_codes != Some(codes.len()) {
            return Err(Error::invalid(
                format!("{} codes for {groups} × [{n}, {k}]", codes.len()),
                format!("{groups}·{n}·{k} codes"),
            ));
        }
        let (sn, sk) = (n.div_ceil(128), k.div_ceil(128));
        if scales.len() != groups * sn * sk {
            return Err(Error::invalid(
                format!("{} scales for {groups} × [{n}, {k}]", scales.len()),
                format!(
                    "{groups} × [{sn}, {sk}] = {} scales (ceil-divided 128×128 blocks)",
                    groups * sn * sk
                ),
            ));
        }
        if let Some(i) = scales.iter().position(|s| !s.is_finite()) {
            return Err(Error::invalid(
                format!(
                    "scale {} at block {i} (group {}, [{}, {}])",
                    scales[i],
                    i / (sn * sk),
                    i % (sn * sk) / sk,
                    i % sk
                ),
                "finite scales",
            ));
        }
        Ok(Fp8Weight {
            codes: stream.upload(codes)?,
            scales: stream.upload(scales)?,
            groups,
            n,
            k,
            folds: scales.iter().all(|&s| folds_into_bf16(s)),
        })
    }

    /// Uploads one matrix quantized on the host (`fp8::quantize_weight`).
    pub fn from_quantized(stream: &Stream, q: &BlockQuantized) -> Result<Fp8Weight> {
        if q.layout() != ScaleLayout::Block128x128 {
            return Err(Error::invalid(
                "activation-quantized data as a weight",
                "128×128 block scales",
            ));
        }
        Self::upload(stream, 1, q.rows(), q.cols(), q.codes(), q.scales())
    }

    /// Matrices in the stack (experts).
    pub fn groups(&self) -> usize {
        self.groups
    }

    /// Output features `N`.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Input features `K`.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The codes, `[groups, N, K]`.
    pub fn codes(&self) -> &DeviceBuffer<F8E4M3> {
        &self.codes
    }

    /// The scales, `[groups, ceil(N/128), ceil(K/128)]`.
    pub fn scales(&self) -> &DeviceBuffer<f32> {
        &self.scales
    }
}

impl Fp8Weight {
    /// Quantizes `w` (`[n, k]`, f32 or bf16) on the device in 128×128 blocks, as DeepSeek's
    /// checkpoints are: scale = max(amax, 1e-4) / 448 per block (rounded up to a power of two
    /// for [`ScaleFormat::Ue8m0`]), codes = e4m3(w / scale).
    ///
    /// # Errors
    /// Shape errors at the call. NaN or ±Inf in `w` is found by the kernel and returned as
    /// [`QuantError::NonFinite`](crate::fp8::QuantError::NonFinite) (wrapped in
    /// [`Error::Quant`](crate::Error::Quant)) by the stream's next synchronisation (or
    /// synchronous copy); the codes and scales are then unspecified. See the
    /// [non-finite policy](crate::fp8#non-finite-values).
    pub fn quantize<T: super::activations::QuantInput>(
        kernels: &Kernels,
        stream: &Stream,
        n: usize,
        k: usize,
        format: ScaleFormat,
        w: &impl DeviceSlice<T>,
    ) -> Result<Fp8Weight> {
        if n == 0 || k == 0 || crate::error::elements("weight", &[n, k])? != w.len() {
            return Err(Error::invalid(
                format!("{} elements as [{n}, {k}]", w.len()),
                "a non-empty [n, k] matrix",
            ));
        }
        let mut codes = stream.alloc_uninit::<F8E4M3>(n * k)?;
        let mut scales = stream.alloc_uninit::<f32>(n.div_ceil(128) * k.div_ceil(128))?;
        kernels.launch_fp8_weight_quant(
            stream,
            T::BF16,
            (n, k),
            format == ScaleFormat::Ue8m0,
            [
                KernelArg::buffer(w),
                KernelArg::buffer_mut(&mut codes),
                KernelArg::buffer_mut(&mut scales),
            ],
        )?;
        // The scales stay on the device, so nothing vouches for their range: no folding.
        Ok(Fp8Weight {
            codes,
            scales,
            groups: 1,
            n,
            k,
            folds: false,
        })
    }

    /// Writes the dequantized weights (code × scale in f32, rounded once for bf16) into `out`,
    /// `[groups, N, K]`.
    pub fn dequantize<O: MatmulOutput>(
        &self,
        kernels: &Kernels,
        stream: &Stream,
        out: &mut impl DeviceSliceMut<O>,
    ) -> Result<()> {
        let per_group = self.n * self.k;
        if out.len() != self.groups * per_group {
            return Err(Error::invalid(
                format!("an output of {} elements", out.len()),
                format!("{} × [{}, {}]", self.groups, self.n, self.k),
            ));
        }
        let scales_per_group = self.n.div_ceil(128) * self.k.div_ceil(128);
        let out_ptr = out.device_ptr_mut();
        for g in 0..self.groups {
            let codes = self.codes.slice(g * per_group..(g + 1) * per_group)?;
            let scales = self
                .scales
                .slice(g * scales_per_group..(g + 1) * scales_per_group)?;
            // Each group's blocks restart at its row 0, so groups are launched one by one.
            let offset = (g * per_group * std::mem::size_of::<O>()) as u64;
            let dst = KernelArg::owned_by_crate(out_ptr + offset, out.device().id(), per_group);
            kernels.launch_fp8_dequant(
                stream,
                O::INDEX == 1,
                (self.n, self.k),
                true,
                [KernelArg::buffer(&codes), KernelArg::buffer(&scales), dst],
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::folds_into_bf16;

    #[test]
    fn only_powers_of_two_in_range_fold() {
        for e in -117..=119 {
            assert!(folds_into_bf16(2f32.powi(e)), "2^{e}");
            assert!(folds_into_bf16(-(2f32.powi(e))), "-2^{e}");
        }
        assert!(folds_into_bf16(0.0));
        for s in [
            2f32.powi(-118),
            2f32.powi(120),
            1.5,
            3.0 / 448.0,
            f32::MIN_POSITIVE / 2.0,
        ] {
            assert!(!folds_into_bf16(s), "{s:e}");
        }
    }
}
