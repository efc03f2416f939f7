//! The vendor's dense matmuls: `aclnnMatmul` (bf16/fp16/fp32) and
//! `aclnnWeightQuantBatchMatmulV2` (W8A16: INT8 weights dequantized by per-channel or
//! per-group scales), for comparison with our kernels.

use super::{AclElement, AclTensor, CubeMathType, Matmul, Plan, WeightQuantBatchMatmulV2};
use crate::error::{Error, Result};
use crate::kernels::{MatmulShape, WeightLayout};
use crate::runtime::{DeviceSlice, DeviceSliceMut, DeviceView, Stream};

/// Checks that `what` holds `want` elements.
fn check_len(what: &str, len: usize, want: usize, dims: &str) -> Result<()> {
    if len == want {
        Ok(())
    } else {
        Err(Error::invalid(
            format!("{what} of {len} elements"),
            format!("{want} elements ({dims})"),
        ))
    }
}

/// Checks the operands' lengths against `shape` and refuses an empty K (the operators have
/// no empty-tensor form); `Ok(false)` when there is nothing to compute (no rows or columns).
fn check_shape(shape: MatmulShape, a: usize, b: usize, c: usize) -> Result<bool> {
    let MatmulShape { m, n, k } = shape;
    check_len("A", a, m * k, &format!("[{m}, {k}]"))?;
    check_len("B", b, k * n, &format!("{k}·{n}"))?;
    check_len("C", c, m * n, &format!("[{m}, {n}]"))?;
    if m == 0 || n == 0 {
        return Ok(false);
    }
    if k == 0 {
        return Err(Error::invalid(
            format!("K = 0 for C [{m}, {n}]"),
            "K of at least 1 (the vendor operators take no empty tensors)",
        ));
    }
    Ok(true)
}

/// B as the operators see it, `[K, N]`: as stored (`KN`), or an `[N, K]` buffer viewed
/// transposed (`NK`, no copy).
fn weight_view<'a, T: AclElement>(
    b: &'a impl DeviceSlice<T>,
    shape: MatmulShape,
    layout: WeightLayout,
) -> Result<AclTensor<'a>> {
    match layout {
        WeightLayout::KN => AclTensor::new(b, &[shape.k, shape.n]),
        WeightLayout::NK => AclTensor::transposed(b, &[shape.n, shape.k]),
    }
}

/// `C[M, N] = A[M, K] · B` with `aclnnMatmul`, in stream order: B is `[K, N]` or `[N, K]` by
/// `layout`; products accumulate in fp32 and C is rounded once to `T`.
pub fn matmul<T: AclElement>(
    stream: &Stream,
    shape: MatmulShape,
    layout: WeightLayout,
    a: &impl DeviceSlice<T>,
    b: &impl DeviceSlice<T>,
    c: &mut impl DeviceSliceMut<T>,
    math: CubeMathType,
) -> Result<()> {
    if !check_shape(shape, a.len(), b.len(), c.len())? {
        return Ok(());
    }
    let a = AclTensor::new(a, &[shape.m, shape.k])?;
    let b = weight_view(b, shape, layout)?;
    let mut out = AclTensor::new_mut(c, &[shape.m, shape.n])?;
    let out_ptr = out.as_mut_ptr();
    let plan = Plan::new::<Matmul>(stream, &[&a, &b, &out], |f, ws, exec| {
        // SAFETY: live tensor handles, out-pointers from Plan::new.
        unsafe {
            f(
                a.as_ptr(),
                b.as_ptr(),
                out_ptr,
                math.value() as i8,
                ws,
                exec,
            )
        }
    })?;
    plan.launch()
}

/// The dequantization of a W8A16 weight: `(w + offset) · scale`, the scales (and offsets)
/// per output column, or per `group` rows of K and column (`[⌈K/group⌉, N]`).
pub struct Int8Weight<'a, T> {
    /// The INT8 codes, `[K, N]` or `[N, K]` by the layout.
    pub codes: DeviceView<'a, i8>,
    /// `[N]` per channel, or `[⌈K/group⌉, N]` per group, in the activations' type.
    pub scale: DeviceView<'a, T>,
    /// Offsets of the scale's shape, or `None` for symmetric quantization.
    pub offset: Option<DeviceView<'a, T>>,
    /// 0 for per-channel scales, else the group size along K (a multiple of 32 below K).
    pub group: usize,
}

/// `Y[M, N] = X[M, K] · ((W + offset) · scale) (+ bias)` with
/// `aclnnWeightQuantBatchMatmulV2`, in stream order: X and Y fp16 or bf16, W INT8 `[K, N]` or
/// `[N, K]` by `layout`. The bias (`[N]`) is f32 for bf16 X and fp16 for fp16 X, as the
/// operator requires (`B`).
pub fn weight_quant_matmul<T: AclElement, B: AclElement>(
    stream: &Stream,
    shape: MatmulShape,
    layout: WeightLayout,
    x: &impl DeviceSlice<T>,
    weight: Int8Weight<'_, T>,
    bias: Option<DeviceView<'_, B>>,
    y: &mut impl DeviceSliceMut<T>,
) -> Result<()> {
    if !check_shape(shape, x.len(), weight.codes.len(), y.len())? {
        return Ok(());
    }
    let MatmulShape { m, n, k } = shape;
    let scale_dims = if weight.group == 0 {
        vec![n]
    } else {
        vec![k.div_ceil(weight.group), n]
    };
    let scales: usize = scale_dims.iter().product();
    check_len(
        "scale",
        weight.scale.len(),
        scales,
        &format!("{scale_dims:?}"),
    )?;
    if let Some(o) = &weight.offset {
        check_len("offset", o.len(), scales, &format!("{scale_dims:?}"))?;
    }
    if let Some(b) = &bias {
        check_len("bias", b.len(), n, &format!("[{n}]"))?;
    }
    let group = i32::try_from(weight.group).map_err(|_| {
        Error::invalid(
            format!("group size {}", weight.group),
            "a group size that fits an int",
        )
    })?;
    let xt = AclTensor::new(x, &[m, k])?;
    let wt = weight_view(&weight.codes, shape, layout)?;
    let st = AclTensor::new(&weight.scale, &scale_dims)?;
    let ot = weight
        .offset
        .as_ref()
        .map(|o| AclTensor::new(o, &scale_dims))
        .transpose()?;
    let bt = bias.as_ref().map(|b| AclTensor::new(b, &[n])).transpose()?;
    let mut yt = AclTensor::new_mut(y, &[m, n])?;
    let y_ptr = yt.as_mut_ptr();
    let null = std::ptr::null();
    let mut uses: Vec<&dyn super::tensor::TensorUses<'_>> = vec![&xt, &wt, &st];
    if let Some(o) = &ot {
        uses.push(o);
    }
    if let Some(b) = &bt {
        uses.push(b);
    }
    uses.push(&yt);
    let plan = Plan::new::<WeightQuantBatchMatmulV2>(stream, &uses, |f, ws, exec| {
        // SAFETY: live tensor handles or NULL for the absent optional ones, out-pointers from
        // Plan::new.
        unsafe {
            f(
                xt.as_ptr(),
                wt.as_ptr(),
                st.as_ptr(),
                ot.as_ref().map_or(null, AclTensor::as_ptr),
                null,
                null,
                bt.as_ref().map_or(null, AclTensor::as_ptr),
                group,
                y_ptr,
                ws,
                exec,
            )
        }
    })?;
    plan.launch()
}
