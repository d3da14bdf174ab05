//! Replays every committed corpus file through its target's entry point on stable Rust, plus a
//! deterministic batch of pseudo-random inputs (a short fuzz run that needs no nightly).

use std::fs;
use std::path::{Path, PathBuf};

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = fs::read(&p).expect("corpus file");
            (p, bytes)
        })
        .collect();
    files.sort();
    files
}

/// xorshift64: the same inputs on every run.
fn pseudo_random_inputs(count: usize, max_len: usize, alphabet: &[u8]) -> Vec<Vec<u8>> {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..count)
        .map(|_| {
            let len = (next() % max_len as u64) as usize;
            (0..len)
                .map(|_| {
                    let r = next();
                    if alphabet.is_empty() || r % 3 == 0 {
                        (r >> 8) as u8
                    } else {
                        alphabet[(r >> 8) as usize % alphabet.len()]
                    }
                })
                .collect()
        })
        .collect()
}

#[test]
fn response_parser_corpus() {
    let files = corpus("response_parser");
    assert!(files.len() >= 5, "seed corpus missing");
    for (path, bytes) in files {
        eprintln!("{}", path.display());
        plotty_fuzz::response_parser(&bytes);
        plotty_fuzz::response_parser_exhaustive(&bytes);
    }
}

#[test]
fn command_encode_corpus() {
    let files = corpus("command_encode");
    assert!(files.len() >= 5, "seed corpus missing");
    for (path, bytes) in files {
        eprintln!("{}", path.display());
        plotty_fuzz::command_encode(&bytes);
    }
}

#[test]
fn response_parser_pseudo_random() {
    for input in pseudo_random_inputs(300, 200, b"\r\n\r\nOK,,!0123456789 Err:QSV-") {
        plotty_fuzz::response_parser_exhaustive(&input);
    }
}

#[test]
fn command_encode_pseudo_random() {
    for input in pseudo_random_inputs(20_000, 96, b"") {
        plotty_fuzz::command_encode(&input);
    }
}

#[test]
fn svg_import_corpus() {
    let files = corpus("svg_import");
    assert!(!files.is_empty(), "seed corpus missing");
    for (path, bytes) in files {
        eprintln!("{}", path.display());
        plotty_fuzz::svg_import(&bytes);
    }
}

#[test]
fn ws_message_corpus() {
    let files = corpus("ws_message");
    assert!(files.len() >= 5, "seed corpus missing");
    for (path, bytes) in files {
        eprintln!("{}", path.display());
        plotty_fuzz::ws_message(&bytes);
    }
    for input in pseudo_random_inputs(5_000, 200, br#"{}[]",:typesubcrinljob_pausid0123 "#) {
        plotty_fuzz::ws_message(&input);
    }
}

#[test]
fn planner_ops_corpus() {
    let files = corpus("planner_ops");
    assert!(!files.is_empty(), "seed corpus missing");
    for (path, bytes) in files {
        eprintln!("{}", path.display());
        plotty_fuzz::planner_ops(&bytes);
    }
}

#[test]
fn session_rx_corpus() {
    let files = corpus("session_rx");
    assert!(files.len() >= 5, "seed corpus missing");
    for (path, bytes) in files {
        eprintln!("{}", path.display());
        plotty_fuzz::session_rx(&bytes);
    }
}

#[test]
fn session_rx_pseudo_random() {
    for input in pseudo_random_inputs(400, 300, b"\x04\x05\x07\x03\x06\r\nOK,QS0123456789!Err:") {
        plotty_fuzz::session_rx(&input);
    }
}

#[test]
fn firmware_input_corpus() {
    let files = corpus("firmware_input");
    assert!(!files.is_empty(), "seed corpus missing");
    for (path, bytes) in files {
        eprintln!("{}", path.display());
        plotty_fuzz::firmware_input(&bytes);
    }
}
