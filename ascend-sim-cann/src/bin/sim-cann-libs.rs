//! `sim-cann-libs <dir>`: installs the drop-in simulator libraries into `<dir>` (see
//! `scripts/sim-cann-libs.sh`, which builds them first).

#[path = "../layout.rs"]
mod layout;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir] = args.as_slice() else {
        eprintln!("usage: sim-cann-libs <dir>; got {} arguments", args.len());
        return ExitCode::from(2);
    };
    // `cargo build` puts the library next to the binaries of the same profile.
    let built = match std::env::current_exe() {
        Ok(exe) => exe.with_file_name(layout::BUILT_NAME),
        Err(e) => {
            eprintln!("sim-cann-libs: cannot find its own executable: {e}");
            return ExitCode::FAILURE;
        }
    };
    if !built.is_file() {
        eprintln!(
            "sim-cann-libs: {} does not exist; build it first with `cargo build -p ascend-sim-cann`",
            built.display()
        );
        return ExitCode::FAILURE;
    }
    match layout::install(&built, &PathBuf::from(dir)) {
        Ok(dir) => {
            println!("{}", dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sim-cann-libs: cannot lay out {dir}: {e}");
            ExitCode::FAILURE
        }
    }
}
