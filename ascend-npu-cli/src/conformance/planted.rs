//! A test-only operator whose result is deliberately wrong, reachable only through the hidden
//! `--plant-wrong-result` flag: the test suite uses it to prove that a wrong result makes the
//! run exit 1, which a conformance run that cannot fail would not.

use ascend_npu::reference::moe::silu;

use super::{Family, Run};
use crate::check::{self, FP32};

/// SwiGLU on the device with one element of its result moved by 1e-3 relative.
pub const FAMILY: Family = Family {
    name: "planted",
    summary: "test only: SwiGLU with a deliberately wrong element",
    kernels: true,
    aclnn: &[],
    run,
};

fn run(run: &mut Run<'_>) {
    run.case("swiglu-wrong", "fp32 n=64", |run, op, case| {
        let mut rng = run.rng(case);
        let gate: Vec<f32> = check::round_to(&rng.vec(64, 4.0));
        let up: Vec<f32> = check::round_to(&rng.vec(64, 4.0));
        let stream = &run.session.stream;
        let device = |e: ascend_npu::Error| e.to_string();
        let kernels = run.kernels()?;
        let g = stream.upload(&gate).map_err(device)?;
        let u = stream.upload(&up).map_err(device)?;
        let mut out = stream.alloc_uninit::<f32>(64).map_err(device)?;
        ascend_npu::kernels::swiglu(kernels, stream, &g, &u, &mut out).map_err(device)?;
        let mut got = check::widen(&out.to_vec().map_err(device)?);
        // The plant: far outside the 8-ulp bound, far inside what a careless check would miss.
        got[17] *= 1.0 + 1e-3;
        let want: Vec<f64> = (0..64)
            .map(|i| silu(f64::from(gate[i])) * f64::from(up[i]))
            .collect();
        Ok(check::within(
            op,
            case,
            &got,
            &want,
            |i| 8.0 * FP32.u * want[i].abs() + FP32.tiny,
            "as swiglu fp32 (planted: element 17 scaled by 1+1e-3)",
        ))
    });
}
