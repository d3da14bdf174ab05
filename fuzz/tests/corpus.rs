//! Replays every committed corpus file through its target's entry point on stable Rust.
//!
//! Files live in `corpus/<target>/`; each target directory needs one arm in [`replay`].

use std::fs;
use std::path::Path;

/// Runs one corpus input through the target named by its directory.
fn replay(target: &str, data: &[u8]) {
    match target {
        "planner_ops" => plotty_fuzz::planner_ops(data),
        other => panic!("corpus/{other}/ has no replay arm: add one to fuzz/tests/corpus.rs"),
    }
}

#[test]
fn committed_corpus_replays_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut replayed = 0;
    let mut targets: Vec<_> = fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", root.display()))
        .map(|entry| entry.expect("readable corpus directory").path())
        .filter(|path| path.is_dir())
        .collect();
    targets.sort();
    for dir in targets {
        let target = dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("UTF-8 target directory name")
            .to_owned();
        let mut files: Vec<_> = fs::read_dir(&dir)
            .expect("readable target directory")
            .map(|entry| entry.expect("readable corpus file").path())
            .filter(|path| path.is_file())
            .collect();
        files.sort();
        for file in files {
            let data = fs::read(&file).expect("readable corpus file");
            eprintln!("replaying {}", file.display());
            replay(&target, &data);
            replayed += 1;
        }
    }
    assert!(replayed > 0, "no corpus files under {}", root.display());
}
