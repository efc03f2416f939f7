//! Rule moe-gating-topk.cann-8.1-kernel: a simulator answering as CANN 8.1.RC1 computes
//! aclnnMoeGatingTopK the way that release's kernel does (sigmoid, top-2-sum groups,
//! renormalised), whatever normType and groupSelectMode ask, so a caller relying on another
//! method sees different routing here just as it would on that release. Own process: the
//! release is fixed per process.

use std::ffi::c_void;
use std::sync::OnceLock;

use ascend_sim::{CannVersion, SimConfig, SocModel};
use ascend_sys::*;

fn api() -> &'static Api {
    static API: OnceLock<Api> = OnceLock::new();
    API.get_or_init(|| {
        ascend_sim::configure(
            SimConfig::uniform(SocModel::ascend910b2(), 1)
                .unwrap()
                .with_cann_version(CannVersion::V8_1_RC1),
        )
        .unwrap();
        let api = ascend_sim::api();
        // SAFETY: NULL config path is allowed.
        assert_eq!(
            unsafe { api.aclInit().unwrap()(std::ptr::null()) },
            ACL_SUCCESS
        );
        // SAFETY: device 0 exists.
        assert_eq!(unsafe { api.aclrtSetDevice().unwrap()(0) }, ACL_SUCCESS);
        api
    })
}

fn ok(rc: i32) {
    assert_eq!(rc, 0, "{:?}", ascend_sim::recent_error_message());
}

/// A device buffer holding `data`, and its tensor of `dims`.
fn tensor<T: Copy>(data: &[T], dims: &[i64], dtype: aclDataType) -> (*mut c_void, *mut aclTensor) {
    let api = api();
    let bytes = std::mem::size_of_val(data).max(32);
    let mut p = std::ptr::null_mut();
    // SAFETY: valid out-pointer; the copy reads `data`, whose size is passed.
    unsafe {
        ok(api.aclrtMalloc().unwrap()(
            &mut p,
            bytes,
            ACL_MEM_MALLOC_HUGE_FIRST,
        ));
        let n = std::mem::size_of_val(data);
        if n > 0 {
            ok(api.aclrtMemcpy().unwrap()(
                p,
                n,
                data.as_ptr().cast(),
                n,
                ACL_MEMCPY_HOST_TO_DEVICE,
            ));
        }
        let t = api.aclCreateTensor().unwrap()(
            dims.as_ptr(),
            dims.len() as u64,
            dtype,
            std::ptr::null(),
            0,
            ACL_FORMAT_ND,
            dims.as_ptr(),
            dims.len() as u64,
            p,
        );
        assert!(!t.is_null());
        (p, t)
    }
}

fn download<T: Copy + Default>(p: *mut c_void, n: usize) -> Vec<T> {
    let mut out = vec![T::default(); n];
    let bytes = std::mem::size_of_val(&out[..]);
    // SAFETY: `out` has `bytes` writable bytes; `p` holds at least that many.
    ok(unsafe {
        api().aclrtMemcpy().unwrap()(
            out.as_mut_ptr().cast(),
            bytes,
            p,
            bytes,
            ACL_MEMCPY_DEVICE_TO_HOST,
        )
    });
    out
}

/// Routes 2 rows of 8 experts (2 groups, 1 kept, top-2) asking for softmax and group max.
fn route_softmax_request(x: &[f32]) -> (Vec<f32>, Vec<i32>) {
    let api = api();
    let (rows, e, k) = (2usize, 8usize, 2usize);
    let (px, tx) = tensor(x, &[rows as i64, e as i64], ACL_FLOAT);
    let (py, ty) = tensor(&vec![0f32; rows * k], &[rows as i64, k as i64], ACL_FLOAT);
    let (pi, ti) = tensor(&vec![0i32; rows * k], &[rows as i64, k as i64], ACL_INT32);
    let (po, to) = tensor(&vec![0f32; rows * e], &[rows as i64, e as i64], ACL_FLOAT);
    let mut ws = 0u64;
    let mut exec = std::ptr::null_mut();
    let mut stream = std::ptr::null_mut();
    // SAFETY: live handles and valid out-pointers; normType 0 (softmax), groupSelectMode 0.
    unsafe {
        ok(api.aclnnMoeGatingTopKGetWorkspaceSize().unwrap()(
            tx,
            std::ptr::null(),
            k as i64,
            1,
            2,
            0,
            0,
            0,
            false,
            1.0,
            1e-20,
            ty,
            ti,
            to,
            &mut ws,
            &mut exec,
        ));
        assert_eq!(ws, 0);
        ok(api.aclrtCreateStream().unwrap()(&mut stream));
        ok(api.aclnnMoeGatingTopK().unwrap()(
            std::ptr::null_mut(),
            0,
            exec,
            stream,
        ));
        ok(api.aclrtSynchronizeStream().unwrap()(stream));
    }
    let out = (download::<f32>(py, rows * k), download::<i32>(pi, rows * k));
    // SAFETY: handles created above, no longer used.
    unsafe {
        for t in [tx, ty, ti, to] {
            api.aclDestroyTensor().unwrap()(t);
        }
        for p in [px, py, pi, po] {
            api.aclrtFree().unwrap()(p);
        }
        api.aclrtDestroyStream().unwrap()(stream);
    }
    out
}

#[test]
fn cann_8_1_computes_sigmoid_top2_renormalised() {
    // Row 0: group 0 has the single best expert (4.0) but group 1 the best top-2 sum, so group
    // max (requested) keeps group 0 while top-2 sum (8.1's kernel) keeps group 1.
    // Row 1: one group wins either way; softmax weights would not sum to 1.
    #[rustfmt::skip]
    let x: [f32; 16] = [
        4.0, -3.0, -3.0, -3.0, 2.5, 2.5, -3.0, -3.0,
        1.0, 0.5, -1.0, -2.0, -5.0, -5.0, -5.0, -5.0,
    ];
    let (w, ids) = route_softmax_request(&x);
    let sig = |v: f32| 1.0 / (1.0 + (-f64::from(v)).exp());
    assert_eq!(ids, [4, 5, 0, 1], "top-2-sum group selection");
    for (row, pair) in [(0, [4usize, 5]), (1, [0, 1])] {
        let s = [sig(x[row * 8 + pair[0]]), sig(x[row * 8 + pair[1]])];
        for j in 0..2 {
            let want = s[j] / (s[0] + s[1]);
            // fp32 output of an f64 computation: one rounding.
            let got = f64::from(w[row * 2 + j]);
            assert!((got - want).abs() <= 1e-7, "row {row}: {got} vs {want}");
        }
    }
}
