//! Writes the shim registration of kernel sources (for builds outside cargo, such as
//! `kernels-ascendc/Makefile`): `ascend-kernel-registration OUT.cpp SOURCE.cpp...`.

use std::path::PathBuf;

fn main() {
    let mut args = std::env::args_os().skip(1);
    let Some(out) = args.next().map(PathBuf::from) else {
        eprintln!("usage: ascend-kernel-registration OUT.cpp SOURCE.cpp...");
        std::process::exit(2);
    };
    let dir =
        std::env::temp_dir().join(format!("ascend-kernel-registration-{}", std::process::id()));
    let kernels = ascend_kernel_build::SimKernels::new("registration")
        .files(args.map(PathBuf::from))
        .out_dir(&dir)
        .cargo_metadata(false)
        .scan();
    let _ = std::fs::remove_dir_all(&dir);
    let kernels = kernels.unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1);
    });
    if let Err(e) = std::fs::write(&out, ascend_kernel_build::registration_cpp(&kernels)) {
        eprintln!("cannot write {}: {e}", out.display());
        std::process::exit(1);
    }
}
