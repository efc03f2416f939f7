//! The rows a dispatch moves: bf16, or FP8 E4M3 codes with 1×128 fp32 scales.

use half::bf16;

use super::exchange::{all_to_all_rows, gather_rows};
use crate::error::{Error, Result};
use crate::fp8::F8E4M3;
use crate::ops::fp8::Fp8Activations;
use crate::runtime::comm::{AllToAllV, Comm};
use crate::runtime::{DeviceBuffer, DeviceSlice, Stream};

/// Hidden states to dispatch, `[T, H]`.
#[derive(Clone, Copy)]
pub enum Payload<'a> {
    /// bf16 rows.
    Bf16(&'a DeviceBuffer<bf16>),
    /// FP8 rows quantized per 1×128 tile ([`Fp8Activations::quantize`]); their scales travel
    /// with them.
    Fp8(&'a Fp8Activations),
}

/// Rows on the device in the payload's format: what a dispatch receives.
pub enum Rows {
    /// bf16 rows.
    Bf16(DeviceBuffer<bf16>),
    /// FP8 codes and their 1×128 scales.
    Fp8(Fp8Activations),
}

impl Payload<'_> {
    /// Checks the payload holds `rows` rows of `hidden`.
    pub(super) fn check(&self, rows: usize, hidden: usize) -> Result<()> {
        let (ok, got) = match self {
            Payload::Bf16(x) => (
                rows.checked_mul(hidden) == Some(x.len()),
                format!("{} bf16 elements", x.len()),
            ),
            Payload::Fp8(a) => (
                (a.rows(), a.k()) == (rows, hidden),
                format!("FP8 rows [{}, {}]", a.rows(), a.k()),
            ),
        };
        if !ok {
            return Err(Error::invalid(
                format!("a payload of {got}"),
                format!("[{rows}, {hidden}] for the {rows} routed tokens"),
            ));
        }
        Ok(())
    }

    /// The payload's rows `order[i]`, packed.
    pub(super) fn pack(&self, stream: &Stream, order: &[usize], hidden: usize) -> Result<Rows> {
        let mut out = Rows::alloc(stream, self.is_fp8(), order.len(), hidden)?;
        match (self, &mut out) {
            (Payload::Bf16(x), Rows::Bf16(o)) => gather_rows(stream, x, order, hidden, o)?,
            (Payload::Fp8(a), Rows::Fp8(o)) => {
                gather_rows(stream, &a.codes, order, hidden, &mut o.codes)?;
                let w = scale_width(hidden);
                gather_rows(stream, &a.scales, order, w, &mut o.scales)?;
            }
            _ => unreachable!("Rows::alloc makes the payload's kind"),
        }
        Ok(out)
    }

    fn is_fp8(&self) -> bool {
        matches!(self, Payload::Fp8(_))
    }
}

/// Scales per row of FP8 rows.
fn scale_width(hidden: usize) -> usize {
    hidden.div_ceil(128)
}

impl Rows {
    /// `rows` rows of unspecified contents (the simulator fills them with a garbage pattern).
    pub(super) fn alloc(stream: &Stream, fp8: bool, rows: usize, hidden: usize) -> Result<Rows> {
        let n = crate::error::elements("dispatched rows", &[rows, hidden])?;
        Ok(if fp8 {
            Rows::Fp8(Fp8Activations {
                codes: stream.alloc_pooled::<F8E4M3>(n)?,
                scales: stream.alloc_pooled::<f32>(rows * scale_width(hidden))?,
                rows,
                k: hidden,
            })
        } else {
            Rows::Bf16(stream.alloc_pooled::<bf16>(n)?)
        })
    }

    /// The rows as a payload, to dispatch again.
    pub fn as_payload(&self) -> Payload<'_> {
        match self {
            Rows::Bf16(x) => Payload::Bf16(x),
            Rows::Fp8(a) => Payload::Fp8(a),
        }
    }

    /// The bf16 rows, if that is the format.
    pub fn bf16(&self) -> Option<&DeviceBuffer<bf16>> {
        match self {
            Rows::Bf16(x) => Some(x),
            Rows::Fp8(_) => None,
        }
    }

    /// The FP8 rows, if that is the format.
    pub fn fp8(&self) -> Option<&Fp8Activations> {
        match self {
            Rows::Bf16(_) => None,
            Rows::Fp8(a) => Some(a),
        }
    }

    /// Sends `self`'s rows and receives into `recv`'s, `layout` counted in rows.
    pub(super) fn exchange(
        &self,
        comm: &Comm,
        stream: &Stream,
        recv: &mut Rows,
        layout: &AllToAllV,
        hidden: usize,
    ) -> Result<()> {
        match (self, recv) {
            (Rows::Bf16(s), Rows::Bf16(r)) => all_to_all_rows(comm, stream, s, r, layout, hidden),
            (Rows::Fp8(s), Rows::Fp8(r)) => {
                all_to_all_rows(comm, stream, &s.codes, &mut r.codes, layout, hidden)?;
                let w = scale_width(hidden);
                all_to_all_rows(comm, stream, &s.scales, &mut r.scales, layout, w)
            }
            _ => unreachable!("receive buffers are allocated in the sent kind"),
        }
    }
}
