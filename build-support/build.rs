//! Records the target this crate is built for: outside a build script (in tests), simulator
//! kernels are built for that same machine.
fn main() {
    let target = std::env::var("TARGET").expect("set by cargo");
    println!("cargo:rustc-env=ASCEND_KERNEL_BUILD_TARGET={target}");
}
