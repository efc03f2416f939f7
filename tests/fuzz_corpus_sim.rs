//! Replays the checked-in fuzz corpus (`fuzz/corpus/<target>/*`) through the fuzz targets'
//! bodies, so every input a fuzzer once found interesting stays a regression test of an
//! ordinary `cargo test`. Fuzzing itself: see `fuzz/README.md`.

#[path = "../fuzz/bodies.rs"]
mod bodies;

use std::path::Path;

#[test]
fn every_corpus_input_passes_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for (target, body) in bodies::TARGETS {
        let dir = root.join(target);
        let mut inputs: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("a corpus entry").path())
            .collect();
        inputs.sort();
        assert!(!inputs.is_empty(), "no corpus for {target}");
        for input in inputs {
            let data = std::fs::read(&input).expect("a corpus file");
            let result = std::panic::catch_unwind(|| body(&data));
            assert!(result.is_ok(), "{target} fails on {}", input.display());
        }
    }
}
