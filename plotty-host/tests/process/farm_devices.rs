//! A plotter farm of several plotters per daemon (issue 15), with the real binaries: three
//! `plotty daemon`s (`a`, `b`, `c`) on one throwaway PostgreSQL cluster, each driving two
//! simulated EBBs served on pseudo-terminals by this test process (`devices:` in each config,
//! plotters named `a1` … `c2`, tagged with a pen colour and a paper size).
//!
//! Daemon `c` starts first and gives each of its plotters a long job that names it, paced to
//! the wall clock; `a` and `b` join with boards that run as fast as they can. A fourth daemon
//! with a plotter named like one of `b`'s is refused at start, and `b`'s device list shows the
//! six plotters with their daemons (the others' read-only: a manual action on one is 409). Sixty small jobs,
//! each a 5 mm line of its own, are submitted round-robin to the three daemons and released at
//! once, a third naming a plotter of `a` or `b`, a third asking for tags, a third asking
//! nothing. Daemon `c` is killed (SIGKILL) mid-plot; its two jobs must then be recorded PAUSED
//! (interrupted) on `c` by the others and never plotted elsewhere, and every small job plotted
//! exactly once on a plotter that meets its requirements: checked on the job records (the
//! plotter each was armed on, one claim each) and on each plotter's own trace (exactly the
//! lines of the jobs recorded on it, each once).
//!
//! Needs PostgreSQL's server binaries (`initdb`, `pg_ctl`): without them the test skips loudly,
//! and fails under `CI=true`.

use std::collections::BTreeMap;
use std::path::Path;
use std::thread;

use nix::sys::signal::Signal;
use plotty_fw_sim::pty::StopHandle;
use plotty_fw_sim::runner::ClockMode;
use plotty_fw_sim::trace::Trace;

use crate::common::{Env, Running, free_port, poll_for, stderr, stdout};
use crate::farm::{Db, board, svg, to_segment};

/// Small jobs submitted across the daemons.
const JOBS: usize = 60;

/// The lease of the test's daemons, seconds (renewed every third).
const LEASE_TTL_S: u64 = 4;

/// A plotter: its name and its two tags.
type Plotter = (&'static str, [&'static str; 2]);

/// The plotters of each daemon: name and tags.
const PLOTTERS: [(&str, [Plotter; 2]); 3] = [
    ("a", [("a1", ["red", "a4"]), ("a2", ["black", "a3"])]),
    ("b", [("b1", ["red", "a3"]), ("b2", ["black", "a4"])]),
    ("c", [("c1", ["red", "a4"]), ("c2", ["blue", "a3"])]),
];

/// What the small jobs ask for by tags, in turn (each met by a plotter of `a` or `b`).
const TAG_SETS: [&[&str]; 6] = [
    &["red"],
    &["black"],
    &["a3"],
    &["a4"],
    &["red", "a3"],
    &["black", "a4"],
];

/// One daemon of the farm and its two plotters' boards.
struct Member {
    name: &'static str,
    port: u16,
    process: Running,
    boards: Vec<(&'static str, StopHandle, thread::JoinHandle<Trace>)>,
}

/// What a job asks: a plotter by name, and tags.
#[derive(Clone, Debug, Default)]
struct Asks {
    device: Option<&'static str>,
    tags: Vec<&'static str>,
}

/// Starts daemon `name` (an entry of [`PLOTTERS`]) on the database `url`, its boards running at
/// `clock`.
fn start(env: &Env, url: &str, index: usize, clock: ClockMode) -> Member {
    let (name, plotters) = PLOTTERS[index];
    let mut devices = String::new();
    let mut boards = Vec::new();
    for (plotter, tags) in plotters {
        let link = env.path(&format!("ebb-{plotter}"));
        let (stop, handle) = board(&link, clock);
        boards.push((plotter, stop, handle));
        devices.push_str(&format!(
            "  - name: {plotter}\n    type: axidraw\n    port: {}\n    tags: [{}]\n",
            link.display(),
            tags.join(", ")
        ));
    }
    let config = env.write(
        &format!("{name}.yaml"),
        &format!(
            "database:\n  url: \"{url}\"\n  lease_ttl: {LEASE_TTL_S}\ndaemon:\n  name: {name}\n\
             devices:\n{devices}"
        ),
    );
    let port = free_port();
    let mut cmd = env.cmd();
    cmd.args(["daemon", "-h", "127.0.0.1", "-p", &port.to_string(), "-c"])
        .arg(&config)
        .arg("-w")
        .arg(env.path(&format!("ws-{name}")));
    let mut process = env.spawn(cmd);
    process.wait_ready();
    Member {
        name,
        port,
        process,
        boards,
    }
}

impl Member {
    /// `plotty add FILE --start` with `asks` on this daemon; the new job's id.
    fn add(&self, env: &Env, file: &Path, asks: &Asks) -> String {
        let mut cmd = env.cmd();
        cmd.args([
            "add",
            file.to_str().unwrap(),
            "--start",
            "--host",
            "127.0.0.1",
        ])
        .args(["--port", &self.port.to_string()]);
        if let Some(d) = asks.device {
            cmd.args(["--device", d]);
        }
        for t in &asks.tags {
            cmd.args(["--tag", t]);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}: {}", self.name, stderr(&out));
        stdout(&out).trim().to_owned()
    }

    /// Stops the boards and returns each plotter's trace.
    fn traces(&mut self) -> Vec<(&'static str, Trace)> {
        self.boards
            .drain(..)
            .map(|(plotter, stop, handle)| {
                stop.stop();
                (plotter, handle.join().unwrap())
            })
            .collect()
    }
}

/// A plain HTTP POST without a body on loopback; the whole answer.
fn http_post(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Plotty-Request: 1\r\nContent-Length: 0\r\n\
         Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// The small job `i`: a 5 mm horizontal line of its own.
fn small_line(i: usize) -> [(f64, f64); 2] {
    let x = 10.0 + (i % 6) as f64 * 12.0;
    let y = 10.0 + (i / 6) as f64 * 8.0;
    [(x, y), (x + 5.0, y)]
}

/// What the small job `i` asks: a plotter of `a` or `b` by name, tags, or nothing, in turn.
fn asks(i: usize) -> Asks {
    match i % 3 {
        0 => Asks {
            device: Some(["a1", "a2", "b1", "b2"][(i / 3) % 4]),
            tags: Vec::new(),
        },
        1 => Asks {
            device: None,
            tags: TAG_SETS[(i / 3) % TAG_SETS.len()].to_vec(),
        },
        _ => Asks::default(),
    }
}

/// Whether the plotter `name` meets `asks`.
fn meets(name: &str, asks: &Asks) -> bool {
    let tags = PLOTTERS
        .iter()
        .flat_map(|(_, p)| p.iter())
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .unwrap_or_else(|| panic!("no plotter {name}"));
    asks.device.is_none_or(|d| d == name) && asks.tags.iter().all(|t| tags.contains(t))
}

#[test]
fn three_daemons_of_two_plotters_plot_every_job_once_on_a_plotter_that_meets_it() {
    let Some(url) = plotty_host::testing::postgres::database_or_skip(
        "process::farm_devices::three_daemons_of_two_plotters",
    ) else {
        return;
    };
    let env = Env::new();
    let db = Db::open(&url);

    // `c` first, alone: a long job (20 lines of 40 mm, in real time) for each of its plotters.
    let mut c = start(&env, &url, 2, ClockMode::Realtime);
    let long: Vec<[(f64, f64); 2]> = (0..20)
        .map(|i| {
            let y = 120.0 + 3.0 * f64::from(i);
            [(100.0, y), (140.0, y)]
        })
        .collect();
    let long_file = env.write("long.svg", &svg(&long));
    let longs: Vec<(String, &str)> = ["c1", "c2"]
        .into_iter()
        .map(|p| {
            let asks = Asks {
                device: Some(p),
                tags: Vec::new(),
            };
            (c.add(&env, &long_file, &asks), p)
        })
        .collect();
    poll_for("c to plot its long jobs", 60, || {
        longs
            .iter()
            .all(|(id, _)| db.job(id).state.as_str() == "PLOTTING")
            .then_some(())
    });
    for (id, plotter) in &longs {
        assert_eq!(db.job(id).device.as_deref(), Some(*plotter));
    }

    let mut a = start(&env, &url, 0, ClockMode::AsFastAsPossible);
    let mut b = start(&env, &url, 1, ClockMode::AsFastAsPossible);

    // A daemon with a plotter named like one of `b`'s is refused while `b` lives (exit 3),
    // naming both daemons.
    let twin = env.write(
        "twin.yaml",
        &format!(
            "database:\n  url: \"{url}\"\ndaemon:\n  name: d\n\
             devices:\n  - name: b1\n    type: simulator\n"
        ),
    );
    let mut cmd = env.cmd();
    cmd.args(["daemon", "-h", "127.0.0.1", "-p", "0", "-c"])
        .arg(&twin)
        .arg("-w")
        .arg(env.path("ws-twin"));
    let out = crate::common::output_within_deadline(cmd);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("plotter `b1` of daemon `d` is also a plotter of the live daemon `b`"),
        "{}",
        stderr(&out)
    );

    // `b` lists the whole farm's plotters, each with its daemon; the others' read-only.
    let listed = poll_for("b to list every daemon's plotters", 60, || {
        let answer = crate::farm::http_get(b.port, "/api/devices");
        let body = answer.split_once("\r\n\r\n")?.1;
        let v: serde_json::Value = serde_json::from_str(body).ok()?;
        let devices: BTreeMap<String, (String, bool)> = v["devices"]
            .as_array()?
            .iter()
            .map(|d| {
                (
                    d["device_id"].as_str().unwrap_or_default().to_owned(),
                    (
                        d["daemon"].as_str().unwrap_or_default().to_owned(),
                        d["remote"].as_bool().unwrap_or(false),
                    ),
                )
            })
            .collect();
        (devices.len() == 6).then_some(devices)
    });
    for (daemon, plotters) in PLOTTERS {
        for (plotter, _) in plotters {
            assert_eq!(
                listed.get(plotter),
                Some(&(daemon.to_owned(), daemon != "b")),
                "{listed:?}"
            );
        }
    }
    let refused = http_post(b.port, "/api/devices/a1/pen-up");
    assert!(
        refused.starts_with("HTTP/1.1 409") && refused.contains("daemon `a`"),
        "{refused}"
    );

    // Small jobs across the three daemons, each released at once.
    let mut small: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..JOBS {
        let file = env.write(&format!("small-{i}.svg"), &svg(&[small_line(i)]));
        let to = [&a, &b, &c][i % 3];
        small.insert(to.add(&env, &file, &asks(i)), i);
    }
    // Every job submitted to `c` is past its pipeline (its SVG and program are in the
    // database), and the long plots are under way: kill `c` mid-plot.
    poll_for("c's submissions to be READY or beyond", 120, || {
        small
            .keys()
            .all(|id| {
                !matches!(
                    db.job(id).state.as_str(),
                    "NEW" | "QUEUED" | "ANALYZED" | "OPTIMIZED"
                )
            })
            .then_some(())
    });
    poll_for("the long jobs to pass stroke 2", 120, || {
        longs
            .iter()
            .all(|(id, _)| db.job(id).resume.is_some_and(|r| r.stroke >= 2))
            .then_some(())
    });
    c.process.signal(Signal::SIGKILL);
    c.process.wait_exit();

    // Once its lease expired, `a` or `b` records both long jobs PAUSED (interrupted), still
    // `c`'s and still on their plotters.
    for (id, plotter) in &longs {
        let paused = poll_for("the killed daemon's jobs to be PAUSED", 60, || {
            let j = db.job(id);
            (j.state.as_str() == "PAUSED").then_some(j)
        });
        assert_eq!(paused.state_reason.as_deref(), Some("interrupted"));
        assert_eq!(
            paused.daemon.as_deref(),
            Some("c"),
            "c's plotter has the paper"
        );
        assert_eq!(paused.device.as_deref(), Some(*plotter));
        assert_eq!(paused.lease, None);
    }
    // …and the other daemons see it so.
    let listed = crate::farm::http_get(a.port, "/api/jobs?state=PAUSED");
    for (id, _) in &longs {
        assert!(
            listed.contains(id.as_str()),
            "a lists {id} PAUSED: {listed}"
        );
    }

    // Every small job is plotted once, by a plotter of `a` or `b` that meets what it asks.
    poll_for("every small job to complete", 180, || {
        small
            .keys()
            .all(|id| db.job(id).state.as_str() == "COMPLETED")
            .then_some(())
    });
    let mut on_plotter: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (id, &i) in &small {
        let j = db.job(id);
        assert_eq!(db.claims(id), 1, "job {id} was claimed more than once");
        let plotter = j.device.clone().expect("a completed job names its plotter");
        assert!(
            meets(&plotter, &asks(i)),
            "job {i} ({:?}) was plotted on {plotter}",
            asks(i)
        );
        let daemon = j.daemon.clone().unwrap_or_default();
        assert!(
            plotter.starts_with(&daemon) && (daemon == "a" || daemon == "b"),
            "job {i} on {plotter} of daemon {daemon}"
        );
        on_plotter.entry(plotter).or_default().push(i);
    }
    for (id, _) in &longs {
        let still = db.job(id);
        assert_eq!((still.state.as_str(), db.claims(id)), ("PAUSED", 1));
    }

    // Each plotter's trace holds exactly the lines of the jobs recorded on it, each once (and
    // c's the long job's lines only).
    for m in [&mut a, &mut b] {
        m.process.signal(Signal::SIGTERM);
        assert!(
            m.process.wait_exit().success(),
            "{}: {}",
            m.name,
            m.process.stderr()
        );
    }
    let mut traces = a.traces();
    traces.extend(b.traces());
    traces.extend(c.traces());
    let lines: Vec<[(f64, f64); 2]> = (0..JOBS).map(small_line).collect();
    let mut drawn = vec![0usize; JOBS];
    let mut strokes = BTreeMap::new();
    for (plotter, trace) in &traces {
        strokes.insert(*plotter, trace.strokes.len());
        let mine = on_plotter.get(*plotter).cloned().unwrap_or_default();
        for stroke in &trace.strokes {
            let points: Vec<(f64, f64)> = stroke.iter().map(|p| (p.x, p.y)).collect();
            let on = |[a, b]: &[(f64, f64); 2]| points.iter().all(|p| to_segment(*p, *a, *b) < 0.1);
            if let Some(i) = lines.iter().position(on) {
                assert!(
                    mine.contains(&i),
                    "{plotter} drew line {i}, recorded on another plotter"
                );
                drawn[i] += 1;
            } else {
                assert!(
                    plotter.starts_with('c') && long.iter().any(on),
                    "{plotter} drew a stroke of no job: {points:?}"
                );
            }
        }
    }
    for (i, n) in drawn.iter().enumerate() {
        assert_eq!(*n, 1, "line {i} drawn {n} times");
    }
    let counts: BTreeMap<&String, usize> = on_plotter.iter().map(|(p, v)| (p, v.len())).collect();
    eprintln!(
        "farm of 3×2 plotters: {JOBS} small jobs per plotter {counts:?}; strokes {strokes:?}"
    );
}
