//! Replays every committed corpus file through its target's entry point on stable Rust.
//! Corpus files live in `corpus/<target>/`; each directory name maps to one entry point below
//! (add an arm per new target).

use std::fs;
use std::path::Path;

/// Runs one corpus input through the target named by its directory; false if unknown.
fn run(target: &str, data: &[u8]) -> bool {
    match target {
        "firmware_input" => plotty_fuzz::firmware_input(data),
        _ => return false,
    }
    true
}

#[test]
fn replay_committed_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut files = 0;
    for dir in fs::read_dir(&root).unwrap() {
        let dir = dir.unwrap().path();
        let target = dir.file_name().unwrap().to_string_lossy().into_owned();
        for file in fs::read_dir(&dir).unwrap() {
            let path = file.unwrap().path();
            let data = fs::read(&path).unwrap();
            assert!(run(&target, &data), "no entry point for corpus directory {target:?}");
            files += 1;
        }
    }
    assert!(files > 0, "no corpus files under {}", root.display());
}
