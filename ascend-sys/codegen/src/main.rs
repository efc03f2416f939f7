//! `cargo run -p ascend-sys-codegen`: rewrites ascend-sys's generated sources
//! (`src/bindings.rs`, `src/symbols.rs`, `src/codes.rs`) from our header.

use ascend_sys_codegen as codegen;

fn main() {
    let outputs = [
        (codegen::bindings_path(), codegen::generate()),
        (codegen::symbols_path(), codegen::generate_symbols()),
        (codegen::codes_path(), codegen::generate_codes()),
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
