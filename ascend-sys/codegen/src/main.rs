//! `cargo run -p ascend-sys-codegen`: rewrites `ascend-sys/src/bindings.rs` and `src/symbols.rs`.

use std::path::PathBuf;

fn main() {
    let outputs: [(PathBuf, Result<String, String>); 2] = [
        (
            ascend_sys_codegen::bindings_path(),
            ascend_sys_codegen::generate(),
        ),
        (
            ascend_sys_codegen::symbols_path(),
            ascend_sys_codegen::generate_symbols(),
        ),
    ];
    for (path, source) in outputs {
        let source = source.unwrap_or_else(|message| {
            eprintln!("{message}");
            eprintln!("bindgen needs libclang (Debian: apt-get install libclang-dev).");
            std::process::exit(1);
        });
        if let Err(e) = std::fs::write(&path, source) {
            eprintln!("cannot write {}: {e}", path.display());
            std::process::exit(1);
        }
        println!("wrote {}", path.display());
    }
}
