//! Replays every committed corpus file through its target's entry point on stable Rust.
//! Corpus files live in `corpus/<target>/`; each target adds one arm to `replay`.

use std::path::Path;

/// Runs `data` through the entry point of `target`; false if there is none.
fn replay(target: &str, data: &[u8]) -> bool {
    match target {
        "svg_import" => plotty_fuzz::svg_import(data),
        _ => return false,
    }
    true
}

#[test]
fn corpus_replays_without_panics() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut replayed = 0;
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    dirs.sort();
    for dir in dirs.iter().filter(|d| d.is_dir()) {
        let target = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .expect("corpus directory is readable")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for file in files {
            let data = std::fs::read(&file).expect("corpus file is readable");
            assert!(replay(target, &data), "no fuzz target for corpus/{target}");
            replayed += 1;
        }
    }
    assert!(replayed > 0, "no corpus files under {}", root.display());
}
