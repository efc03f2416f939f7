//! Activations quantized per token in 1×128 tiles, on the device.

use half::bf16;

use crate::error::{Error, Result};
use crate::fp8::{BlockQuantized, F8E4M3, ScaleFormat, ScaleLayout};
use crate::kernels::Kernels;
use crate::runtime::{DeviceBuffer, DeviceSlice, KernelArg, Stream};

/// E4M3 codes `[rows, K]` with per-token scales `[rows, ceil(K/128)]`.
pub struct Fp8Activations {
    pub(crate) codes: DeviceBuffer<F8E4M3>,
    pub(crate) scales: DeviceBuffer<f32>,
    pub(crate) rows: usize,
    pub(crate) k: usize,
}

/// Activation types the quantization kernel reads.
pub trait QuantInput: crate::aclnn::AclElement + sealed::Sealed {
    #[doc(hidden)]
    const BF16: bool;
}
impl QuantInput for f32 {
    const BF16: bool = false;
}
impl QuantInput for bf16 {
    const BF16: bool = true;
}
mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for half::bf16 {}
}

impl Fp8Activations {
    /// Quantizes `x` (`[rows, k]`, f32 or bf16) on the device, as DeepSeek's `act_quant` does:
    /// scale = max(amax, 1e-4) / 448 per 1×128 tile (rounded up to a power of two for
    /// [`ScaleFormat::Ue8m0`]), codes = e4m3(x / scale).
    ///
    /// # Errors
    /// Shape errors at the call. NaN or ±Inf in `x` is found by the kernel and returned as
    /// [`QuantError::NonFinite`](crate::fp8::QuantError::NonFinite) (wrapped in
    /// [`Error::Quant`]) by the stream's next synchronisation (or synchronous copy), as the host
    /// quantizer returns it at the call; the codes and scales are then unspecified. See the
    /// [non-finite policy](crate::fp8#non-finite-values).
    pub fn quantize<T: QuantInput>(
        kernels: &Kernels,
        stream: &Stream,
        rows: usize,
        k: usize,
        format: ScaleFormat,
        x: &impl DeviceSlice<T>,
    ) -> Result<Fp8Activations> {
        if rows.checked_mul(k) != Some(x.len()) || k == 0 {
            return Err(Error::invalid(
                format!("{} elements as [{rows}, {k}]", x.len()),
                "rows·k elements, k >= 1",
            ));
        }
        let mut codes = stream.alloc_pooled::<F8E4M3>(rows * k)?;
        let mut scales = stream.alloc_pooled::<f32>(rows * k.div_ceil(128))?;
        kernels.launch_fp8_quant(
            stream,
            T::BF16,
            (rows, k),
            format == ScaleFormat::Ue8m0,
            [
                KernelArg::buffer(x),
                KernelArg::buffer_mut(&mut codes),
                KernelArg::buffer_mut(&mut scales),
            ],
        )?;
        Ok(Fp8Activations {
            codes,
            scales,
            rows,
            k,
        })
    }

    /// Uploads activations quantized on the host (`fp8::quantize_act`).
    pub fn from_quantized(stream: &Stream, q: &BlockQuantized) -> Result<Fp8Activations> {
        if q.layout() != ScaleLayout::Tile1x128 {
            return Err(Error::invalid(
                "weight-quantized data as activations",
                "1×128 tile scales",
            ));
        }
        if let Some(s) = q.scales().iter().find(|s| !s.is_finite()) {
            return Err(Error::invalid(
                format!("activation scale {s}"),
                "finite scales",
            ));
        }
        Ok(Fp8Activations {
            codes: stream.upload(q.codes())?,
            scales: stream.upload(q.scales())?,
            rows: q.rows(),
            k: q.cols(),
        })
    }

    /// Writes the dequantized activations (code × scale in f32, rounded once for bf16) into
    /// `out`, `[rows, K]`.
    pub fn dequantize<O: crate::kernels::MatmulOutput>(
        &self,
        kernels: &Kernels,
        stream: &Stream,
        out: &mut impl crate::runtime::DeviceSliceMut<O>,
    ) -> Result<()> {
        if out.len() != self.rows * self.k {
            return Err(Error::invalid(
                format!("an output of {} elements", out.len()),
                format!("[{}, {}]", self.rows, self.k),
            ));
        }
        kernels.launch_fp8_dequant(
            stream,
            O::INDEX == 1,
            (self.rows, self.k),
            false,
            [
                KernelArg::buffer(&self.codes),
                KernelArg::buffer(&self.scales),
                KernelArg::buffer_mut(out),
            ],
        )
    }

    /// Rows (tokens).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns `K`.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The codes, `[rows, K]`.
    pub fn codes(&self) -> &DeviceBuffer<F8E4M3> {
        &self.codes
    }

    /// The scales, `[rows, ceil(K/128)]`.
    pub fn scales(&self) -> &DeviceBuffer<f32> {
        &self.scales
    }
}
