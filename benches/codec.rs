//! EBB codec throughput: command encoding (LM and SM, commands/s and MB/s) and reply parsing
//! (a QS/OK-heavy legacy stream and a future-mode stream, MB/s).
//!
//! Run with `cargo bench --bench codec`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use plotty_motion::ebb::{
    Command, EncodeOptions, FirmwareVersion, LineBuffer, LowLevelMove, Reply, ReplyKind, ReplyMode,
    ReplyParser, StepperMove, limits,
};

const COMMANDS: usize = 1024;

/// Realistic LM moves: a few hundred steps per axis, rates of kHz, small accelerations.
fn lm_commands() -> Vec<Command> {
    (0..COMMANDS as i32)
        .map(|i| {
            Command::LowLevelMove(LowLevelMove {
                rate: [85_899_346 * (1 + i % 20), 42_949_673 * (1 + i % 13)],
                steps: [37 + i % 400, -(12 + i % 300)],
                accel: [1732 * (i % 7 - 3), -687 * (i % 5 - 2)],
                clear: None,
            })
        })
        .collect()
}

/// AxiDraw-style SM slices (§5.3): 25 ms pieces of up to ~600 steps.
fn sm_commands() -> Vec<Command> {
    (0..COMMANDS as i32)
        .map(|i| {
            Command::StepperMove(StepperMove {
                duration_ms: 25 + (i % 3) as u32,
                steps: [i % 600 - 300, 300 - i % 500],
                clear: None,
            })
        })
        .collect()
}

fn encoded_bytes(commands: &[Command], options: &EncodeOptions) -> u64 {
    commands
        .iter()
        .map(|c| c.encoded_len_with(options) as u64)
        .sum()
}

fn encode_all(commands: &[Command], options: &EncodeOptions) -> usize {
    // The recommended transmit buffer: room for the longest command the firmware accepts.
    let mut buf = [0u8; limits::MAX_ENCODED_LEN];
    let mut total = 0;
    for c in commands {
        // A command that fails to encode would make the iteration faster, not the encoder.
        total += c
            .encode_with(options, &mut buf)
            .unwrap_or_else(|e| panic!("{c:?} does not encode: {e:?}"));
        black_box(&buf);
    }
    total
}

fn bench_encode(c: &mut Criterion) {
    let options = EncodeOptions::new(FirmwareVersion::LATEST);
    for (name, commands) in [("lm", lm_commands()), ("sm", sm_commands())] {
        assert_eq!(
            encode_all(&commands, &options) as u64,
            encoded_bytes(&commands, &options),
            "every benchmark command must be valid"
        );
        let mut group = c.benchmark_group("encode_commands");
        group.throughput(Throughput::Elements(COMMANDS as u64));
        group.bench_function(name, |b| {
            b.iter(|| encode_all(black_box(&commands), &options));
        });
        group.finish();
        let mut group = c.benchmark_group("encode_bytes");
        group.throughput(Throughput::Bytes(encoded_bytes(&commands, &options)));
        group.bench_function(name, |b| {
            b.iter(|| encode_all(black_box(&commands), &options));
        });
        group.finish();
    }
}

/// `pairs` × (QS reply + SM acknowledgement) in the given mode, and the kinds in order.
fn reply_stream(mode: ReplyMode, pairs: usize) -> (Vec<u8>, Vec<ReplyKind>) {
    let mut bytes = Vec::new();
    let mut kinds = Vec::new();
    for i in 0..pairs {
        let (m1, m2) = (123_456 + i as i64 * 37, -98_765 + i as i64 * 11);
        match mode {
            ReplyMode::Future => {
                bytes.extend_from_slice(format!("QS,{m1},{m2}\nSM\n").as_bytes());
            }
            _ => bytes.extend_from_slice(format!("{m1},{m2}\n\rOK\r\nOK\r\n").as_bytes()),
        }
        kinds.push(ReplyKind::Steps);
        kinds.push(ReplyKind::Ack("SM"));
    }
    (bytes, kinds)
}

/// Parses the stream in 64-byte pieces (one USB packet each); returns the number of replies.
fn parse_stream(mode: ReplyMode, bytes: &[u8], kinds: &[ReplyKind]) -> usize {
    let mut lines = LineBuffer::<128>::new();
    let mut parser = ReplyParser::new(mode);
    let mut next = kinds.iter();
    let mut done = 0;
    if let Some(&k) = next.next() {
        parser.begin(k);
    }
    for packet in bytes.chunks(64) {
        let mut rest = packet;
        while !rest.is_empty() {
            let (tail, line) = lines.push(rest);
            rest = tail;
            let reply = match line {
                Some(Ok(line)) => parser.push_line(line),
                Some(Err(e)) => parser.push_line_error(e),
                None => None,
            };
            if let Some(reply) = reply {
                if matches!(reply, Ok(Reply::Steps { .. } | Reply::Ok)) {
                    done += 1;
                }
                if let Some(&k) = next.next() {
                    parser.begin(k);
                }
            }
        }
    }
    done
}

fn bench_parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_bytes");
    for (name, mode) in [
        ("legacy_qs_ok", ReplyMode::Legacy),
        ("future_qs_sm", ReplyMode::Future),
    ] {
        let (bytes, kinds) = reply_stream(mode, 2048);
        assert_eq!(parse_stream(mode, &bytes, &kinds), kinds.len());
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| parse_stream(mode, black_box(&bytes), &kinds));
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_encode, bench_parse
}
criterion_main!(benches);
