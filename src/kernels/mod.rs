//! Typed launches of our own Ascend C kernels (`kernels-ascendc/`): the tiling is computed here,
//! in Rust, and passed to the kernel as a `#[repr(C)]` struct in device memory.
//!
//! ```
//! use ascend_npu::{select_backend, Backend, Device};
//! use ascend_npu::kernels::Kernels;
//! select_backend(Backend::Sim)?;
//! let device = Device::open(0)?;
//! let stream = device.new_stream()?;
//! let kernels = Kernels::load(&device)?;
//! let gate = stream.upload(&[0.0f32, 1.0, -2.0])?;
//! let up = stream.upload(&[1.0f32, 2.0, 3.0])?;
//! let mut out = stream.alloc_zeroed::<f32>(3)?;
//! ascend_npu::kernels::swiglu(&kernels, &stream, &gate, &up, &mut out)?;
//! let silu = |g: f32| g / (1.0 + (-g).exp());
//! let got = out.to_vec()?;
//! assert!((got[1] - silu(1.0) * 2.0).abs() < 1e-6);
//! # Ok::<(), ascend_npu::Error>(())
//! ```

mod fp8;
mod manifest;
mod matmul;
pub(crate) mod mla;
mod swiglu;
mod tiling_cache;

use std::sync::Arc;

use crate::error::Result;
use crate::runtime::{Device, Kernel, KernelArg, KernelBinary, Stream};

pub(crate) use fp8::{Activations, Fp8GemmLaunch, Grouping};
pub use fp8::{Fp8DequantTiling, Fp8GemmTiling, Fp8QuantTiling, Fp8WeightQuantTiling};
pub use matmul::{MatmulInput, MatmulOutput, MatmulShape, MatmulTiling, WeightLayout, matmul};
pub use mla::{MlaCacheWriteTiling, MlaDecodeTiling, MlaLseMergeTiling, MlaSwapAxesTiling};
pub use swiglu::{SwigluElement, SwigluTiling, swiglu};

use tiling_cache::TilingCache;

/// Our kernels, loaded for one device. Cloning is cheap and shares them: load once per
/// device and hand clones to every layer, stream and thread.
#[derive(Clone)]
pub struct Kernels {
    pub(crate) inner: Arc<Loaded>,
}

/// What [`Kernels`] shares.
pub(crate) struct Loaded {
    device: Device,
    swiglu: [Kernel; 3],
    /// Indexed by `MatmulInput::INDEX * 2 + MatmulOutput::INDEX`.
    matmul: [Kernel; 4],
    fp8: fp8::Fp8Kernels,
    codec: fp8::Fp8CodecKernels,
    /// `moe_gather_scores`: routing weights without renormalisation.
    pub(crate) gather_scores: Kernel,
    /// The MLA cache write and decode kernels.
    pub(crate) mla: mla::MlaKernels,
    pub(crate) tilings: TilingCache,
    pub(crate) vector_cores: u32,
    cube_cores: u32,
}

impl Kernels {
    /// Loads the kernels of `kernels-ascendc/` for `device` (see [`KernelBinary::builtin`]).
    pub fn load(device: &Device) -> Result<Kernels> {
        let binary = KernelBinary::builtin(device)?;
        let kernel = |name: &str| manifest::load(&binary, name);
        let loaded = Loaded {
            device: device.clone(),
            swiglu: [
                kernel("swiglu_f32")?,
                kernel("swiglu_f16")?,
                kernel("swiglu_bf16")?,
            ],
            matmul: [
                kernel("matmul_f16_f32")?,
                kernel("matmul_f16_bf16")?,
                kernel("matmul_bf16_f32")?,
                kernel("matmul_bf16_bf16")?,
            ],
            fp8: fp8::Fp8Kernels::load(&binary)?,
            codec: fp8::Fp8CodecKernels::load(&binary)?,
            gather_scores: kernel("moe_gather_scores")?,
            mla: mla::MlaKernels::load(&binary)?,
            tilings: TilingCache::new(device)?,
            vector_cores: device.vector_cores()?,
            cube_cores: device.cube_cores()?,
        };
        Ok(Kernels {
            inner: Arc::new(loaded),
        })
    }

    /// The device the kernels are loaded for.
    pub fn device(&self) -> &Device {
        &self.inner.device
    }

    /// Launches one of these kernels on `blocks` cores: `args`, then `tiling` from the tiling
    /// cache (every kernel's last argument).
    pub(crate) fn launch_tiled<T: bytemuck::Pod>(
        &self,
        stream: &Stream,
        (kernel, blocks): (&Kernel, u32),
        tiling: &T,
        args: &[KernelArg<'_>],
    ) -> Result<()> {
        let tiling = self.inner.tilings.arg(bytemuck::bytes_of(tiling), stream)?;
        let all: Vec<KernelArg<'_>> = args.iter().copied().chain([tiling]).collect();
        stream.launch_trusted(kernel, blocks, &all)
    }

    /// Cores for `items` independent work items of a vector kernel: one item each, at most
    /// every vector core, at least one.
    pub(crate) fn vector_blocks(&self, items: usize) -> u32 {
        items.clamp(1, self.inner.vector_cores.max(1) as usize) as u32
    }
}

impl std::fmt::Debug for Kernels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kernels")
            .field("device", &self.inner.device.id())
            .finish_non_exhaustive()
    }
}
