//! The client commands as processes against a real `plotty daemon`: what they print, their exit
//! codes, how they find the daemon, `monitor --json` across a daemon restart, and the daemon's
//! accept loop at a low open-files limit.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::Value;

use crate::common::{DEADLINE, Env, daemon, daemon_info, free_port, stderr, stdout};

const SVG: &str = r#"<svg xmlns="http://www.w3.org/2000/svg" width="20mm" height="20mm"><path d="M1 1L19 19" stroke="black"/></svg>"#;

fn at(port: u16, args: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    v.extend([
        "--host".into(),
        "127.0.0.1".into(),
        "--port".into(),
        port.to_string(),
    ]);
    v
}

fn run(env: &Env, args: &[String]) -> std::process::Output {
    env.cmd().args(args).output().unwrap()
}

#[test]
fn a_named_config_that_cannot_be_loaded_is_a_config_error() {
    let env = Env::new();
    std::fs::write(env.path("broken.yaml"), "websocket:\n  port: [not a port\n").unwrap();
    for args in [vec!["jobs"], vec!["status"], vec!["monitor", "--json"]] {
        let mut args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        args.extend(["-c".into(), "broken.yaml".into()]);
        let out = run(&env, &args);
        // 2: the configuration is unusable (not 1, "no daemon listening" on a guessed port).
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("broken.yaml"), "{args:?}: {err}");
        assert!(!err.contains("no plotty daemon"), "{args:?}: {err}");
    }
}

#[test]
fn without_a_daemon_every_command_says_how_to_start_one() {
    let env = Env::new();
    std::fs::write(env.path("a.svg"), SVG).unwrap();
    let port = free_port();
    for args in [
        vec!["jobs"],
        vec!["queue"],
        vec!["status"],
        vec!["job", "abc"],
        vec!["add", "a.svg"],
        vec!["pause", "abc"],
        vec!["retry", "abc"],
        vec!["device", "home"],
        vec!["device", "version"],
        vec!["monitor", "--json"],
    ] {
        let out = run(&env, &at(port, &args));
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = stderr(&out);
        assert!(
            err.contains(&format!(
                "no plotty daemon is listening on 127.0.0.1:{port}"
            )) && err.contains("`plotty daemon`"),
            "{args:?}: {err}"
        );
        assert!(stdout(&out).is_empty(), "{args:?}");
    }
    // Local mistakes are found before connecting.
    let out = run(&env, &at(port, &["add", "missing.svg"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot read missing.svg"),
        "{}",
        stderr(&out)
    );
    let out = run(&env, &at(port, &["job", "../x"]));
    assert!(stderr(&out).contains("is not a job id"), "{}", stderr(&out));
}

#[test]
fn the_commands_against_a_running_daemon() {
    let env = Env::new();
    std::fs::write(env.path("a.svg"), SVG).unwrap();
    std::fs::write(env.path("b.svg"), SVG).unwrap();
    let port = free_port();
    let _d = daemon(&env, port);

    let out = run(
        &env,
        &at(
            port,
            &["add", "a.svg", "b.svg", "--priority", "3", "--paper", "A3"],
        ),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let ids: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.iter().all(|id| id.len() == 12));

    // The pipeline takes both to READY; without --start they wait there for `start`.
    let v = crate::common::poll("both jobs READY", || {
        let out = run(&env, &at(port, &["queue", "--json", "--state", "READY"]));
        let v: Value = serde_json::from_str(&stdout(&out)).ok()?;
        (v["count"] == 2).then_some(v)
    });
    assert_eq!(v["jobs"][0]["paper"], "A3");
    let out = run(&env, &at(port, &["jobs"]));
    let table = stdout(&out);
    assert!(table.starts_with("ID"), "{table}");
    assert!(ids.iter().all(|id| table.contains(id.as_str())), "{table}");
    assert!(table.contains("a.svg") && table.contains("READY"));

    let out = run(&env, &at(port, &["job", &ids[0]]));
    let details = stdout(&out);
    assert!(
        details.contains("state     READY") && details.contains("history:"),
        "{details}"
    );
    assert!(
        details.contains("estimate") && details.contains("actual"),
        "{details}"
    );
    let v: Value =
        serde_json::from_str(&stdout(&run(&env, &at(port, &["job", &ids[0], "--json"])))).unwrap();
    assert_eq!(v["id"], ids[0].as_str());
    // A job is named by the start of its id, as short as makes it the only one.
    let common = ids[0]
        .chars()
        .zip(ids[1].chars())
        .take_while(|(a, b)| a == b)
        .count();
    let prefix = &ids[0][..=common];
    let v: Value =
        serde_json::from_str(&stdout(&run(&env, &at(port, &["job", prefix, "--json"])))).unwrap();
    assert_eq!(v["id"], ids[0].as_str(), "{prefix}");

    let out = run(&env, &at(port, &["status"]));
    let s = stdout(&out);
    assert!(
        s.contains("daemon   plotty") && s.contains("healthy"),
        "{s}"
    );
    assert!(
        s.contains("device   simulator (simulator) connected") && s.contains("0 active"),
        "{s}"
    );

    let out = run(&env, &at(port, &["pause", &ids[0]]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("the job must be PLOTTING"),
        "{}",
        stderr(&out)
    );
    let out = run(&env, &at(port, &["cancel", &ids[0]]));
    assert_eq!(stdout(&out), format!("{} ABORTED\n", ids[0]));
    let out = run(&env, &at(port, &["retry", &ids[0]]));
    let new_id = stdout(&out).trim().to_owned();
    assert_eq!(new_id.len(), 12, "{}", stderr(&out));
    assert_ne!(new_id, ids[0]);
    let out = run(&env, &at(port, &["delete", &ids[0]]));
    assert_eq!(stdout(&out), format!("deleted {}\n", ids[0]));
    let out = run(&env, &at(port, &["abort", &ids[0]]));
    assert!(stderr(&out).contains("no job with id"), "{}", stderr(&out));

    // The simulator is attached (device.type auto, no AxiDraw connected).
    for (action, said) in [
        ("pen-down", "simulator: pen down"),
        ("pen-up", "simulator: pen up"),
        ("toggle", "simulator: pen down"),
        ("toggle", "simulator: pen up"),
        ("version", "simulator: 3.0.3"),
        ("align", "simulator: align: pen up, motors off"),
        ("motors-off", "simulator: motors off"),
    ] {
        let out = run(&env, &at(port, &["device", action]));
        assert!(out.status.success(), "{action}: {}", stderr(&out));
        assert!(stdout(&out).starts_with(said), "{action}: {}", stdout(&out));
    }
    // With the motors off the carriage's place becomes home; then it walks, within the travel.
    let out = run(&env, &at(port, &["device", "home"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("motors were off"), "{}", stdout(&out));
    let out = run(&env, &at(port, &["device", "walk", "20", "-5"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("outside the"), "{}", stderr(&out));
    let out = run(&env, &at(port, &["device", "walk", "20", "5"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("walked to (20.0, 5.0)"),
        "{}",
        stdout(&out)
    );
    let out = run(&env, &at(port, &["device", "home"]));
    assert!(
        stdout(&out).contains("homed from (20.0, 5.0)"),
        "{}",
        stdout(&out)
    );

    // Without --port: the port comes from the daemon's daemon.json in the workspace.
    let ws = env.workspace().display().to_string();
    let out = run(&env, &["jobs".into(), "-w".into(), ws]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(&new_id));
}

#[test]
fn the_api_key_comes_from_the_config_the_option_or_the_environment() {
    let env = Env::new();
    let key = "0123456789abcdef0123456789abcdef";
    env.write_default_config(&format!(
        "websocket:\n  authenticate: true\n  api_key: \"{key}\"\n"
    ));
    let port = free_port();
    let _d = daemon(&env, port);
    // The same configuration as the daemon's: no option needed.
    let out = run(&env, &at(port, &["jobs"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let mut wrong = at(port, &["status"]);
    wrong.extend(["--api-key".into(), "nope".into()]);
    let out = run(&env, &wrong);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("wrong API key") && err.contains("PLOTTY_API_KEY"),
        "{err}"
    );
    let out = env
        .cmd()
        .args(at(port, &["status"]))
        .env("PLOTTY_API_KEY", "nope")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = env
        .cmd()
        .args(at(port, &["monitor", "--json"]))
        .env("PLOTTY_API_KEY", "nope")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "an unauthorised monitor does not retry"
    );
    assert!(stderr(&out).contains("wrong API key"), "{}", stderr(&out));
}

#[test]
fn monitor_json_prints_one_message_per_line_and_reconnects_after_a_restart() {
    let env = Env::new();
    std::fs::write(env.path("a.svg"), SVG).unwrap();
    let port = free_port();
    let mut d = daemon(&env, port);
    let mut monitor = env
        .cmd()
        .args(at(
            port,
            &["monitor", "--json", "--channels", "jobs,system"],
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel::<Value>();
    let lines = BufReader::new(monitor.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in lines.lines() {
            let Ok(line) = line else { break };
            let v: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not one JSON message per line ({e}): {line}"));
            if tx.send(v).is_err() {
                break;
            }
        }
    });
    let next = |ty: &str| -> Value {
        loop {
            let v = rx.recv_timeout(DEADLINE).expect("monitor output");
            if v["type"] == ty {
                return v;
            }
        }
    };
    next("hello");
    let sub = next("subscribed");
    assert_eq!(sub["channels"], serde_json::json!(["jobs", "system"]));
    next("system_status");
    let out = run(&env, &at(port, &["add", "a.svg"]));
    let id = stdout(&out).trim().to_owned();
    let change = next("job_state_change");
    assert_eq!(
        (change["job_id"].as_str(), change["to_state"].as_str()),
        (Some(id.as_str()), Some("NEW"))
    );
    assert_eq!(next("job_state_change")["to_state"], "QUEUED");
    // Analysed up to READY; without --start it waits there.
    loop {
        if next("job_state_change")["to_state"] == "READY" {
            break;
        }
    }

    // The daemon restarts on the same port: the monitor comes back by itself.
    d.signal(Signal::SIGTERM);
    assert!(d.wait_exit().success());
    let _d2 = daemon(&env, port);
    assert_eq!(next("hello")["type"], "hello");
    next("subscribed");
    let snap = next("job_state_change");
    assert_eq!(snap["job_id"], id.as_str());
    assert_eq!(snap["snapshot"], true);

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(monitor.id() as i32),
        Signal::SIGINT,
    )
    .unwrap();
    let status = crate::common::poll("the monitor to exit", || monitor.try_wait().unwrap());
    assert!(status.success(), "{status}");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut monitor.stderr.take().unwrap(), &mut err).unwrap();
    assert!(
        err.contains("lost") && err.contains("reconnecting"),
        "{err}"
    );
}

#[test]
fn the_daemon_keeps_accepting_at_a_low_open_files_limit() {
    let env = Env::new();
    env.write_default_config("database:\n  pool_size: 1\n");
    let port = free_port();
    // `ulimit -n` sets the soft and the hard limit, so the daemon cannot raise it.
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg("ulimit -n 48 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_plotty"))
        .args(["daemon", "-h", "127.0.0.1", "-p", &port.to_string(), "-w"])
        .arg(env.workspace())
        .current_dir(env.dir.path())
        .env("HOME", env.path("home"))
        .env("XDG_CONFIG_HOME", env.path("config"))
        .env("XDG_DATA_HOME", env.path("data"))
        .env_remove("PLOTTY_CONFIG")
        .env_remove("PLOTTY_API_KEY")
        .env_remove("NOTIFY_SOCKET");
    let mut d = env.spawn(c);
    d.wait_ready();
    // More connections than the daemon has descriptors: some accepts fail with EMFILE.
    let mut held = Vec::new();
    for _ in 0..100 {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
            held.push(s);
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    drop(held);
    // Once they are gone the daemon serves again: the accept loop did not end.
    let ok = crate::common::poll("the daemon to answer again", || {
        let out = run(&env, &at(port, &["status", "--json"]));
        out.status.success().then_some(out)
    });
    let v: Value = serde_json::from_str(&stdout(&ok)).unwrap();
    assert_eq!(v["status"], "healthy");
    assert!(crate::common::alive(d.pid()));
    let info = daemon_info(&env.workspace());
    assert_eq!(info.port, Some(port));
    assert!(
        d.stderr().contains("Too many open files"),
        "the test did not reach the limit:\n{}",
        d.stderr()
    );
    d.signal(Signal::SIGTERM);
    assert!(d.wait_exit().success(), "{}", d.stderr());
}

/// Strokes enough for a few seconds of plotting at the simulator's real pace.
fn lines_svg(n: u32) -> String {
    let paths: String = (0..n)
        .map(|i| {
            let y = 10 + 3 * i;
            format!(r#"<path d="M10 {y} H70" stroke="black" fill="none"/>"#)
        })
        .collect();
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="100mm" height="100mm" viewBox="0 0 100 100">{paths}</svg>"#
    )
}

/// `plotty job ID --json`, once it answers.
fn job_json(env: &Env, port: u16, id: &str) -> Option<Value> {
    let out = run(env, &at(port, &["job", id, "--json"]));
    out.status
        .success()
        .then(|| serde_json::from_str(&stdout(&out)).ok())
        .flatten()
}

#[test]
fn an_added_job_is_plotted_on_the_simulator_and_survives_a_crash() {
    let env = Env::new();
    env.write_default_config("device:\n  type: simulator\n");
    std::fs::write(env.path("a.svg"), SVG).unwrap();
    std::fs::write(env.path("long.svg"), lines_svg(12)).unwrap();
    let port = free_port();
    let mut d = daemon(&env, port);
    assert!(
        d.stderr().contains("device: the built-in simulator"),
        "{}",
        d.stderr()
    );

    let out = run(&env, &at(port, &["add", "a.svg", "--start"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let id = stdout(&out).trim().to_owned();
    let done = crate::common::poll("the job to complete", || {
        job_json(&env, port, &id).filter(|v| v["state"] == "COMPLETED")
    });
    let states: Vec<&str> = done["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["to_state"].as_str())
        .collect();
    for s in [
        "QUEUED",
        "ANALYZED",
        "OPTIMIZED",
        "READY",
        "ARMED",
        "PLOTTING",
    ] {
        assert!(states.contains(&s), "{s} missing: {states:?}");
    }

    // A crash (SIGKILL) while plotting: the next daemon has the job PAUSED (interrupted), and
    // `resume` finishes it from its recorded point.
    let out = run(&env, &at(port, &["add", "long.svg", "--start"]));
    let id = stdout(&out).trim().to_owned();
    crate::common::poll("a resume point", || {
        job_json(&env, port, &id)
            .filter(|v| v["state"] == "PLOTTING" && v["resume_point"]["stroke"].as_u64() > Some(1))
    });
    d.signal(Signal::SIGKILL);
    d.wait_exit();
    let _d = daemon(&env, port);
    let v = job_json(&env, port, &id).unwrap();
    assert_eq!(v["state"], "PAUSED", "{v}");
    assert_eq!(v["state_reason"], "interrupted", "{v}");
    // The daemon's simulator came back as a fresh board (motors off): where the carriage is is
    // unknown, so the resume moves nothing and says to home it first.
    let out = run(&env, &at(port, &["resume", &id]));
    assert!(
        !out.status.success(),
        "a resume on a fresh board must be refused"
    );
    assert!(
        stderr(&out).contains("plotty device home"),
        "{}",
        stderr(&out)
    );
    let v = job_json(&env, port, &id).unwrap();
    assert_eq!(v["state"], "PAUSED", "{v}");
    let out = run(&env, &at(port, &["device", "home"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&env, &at(port, &["resume", &id]));
    assert!(out.status.success(), "{}", stderr(&out));
    let done = crate::common::poll("the resumed job to complete", || {
        job_json(&env, port, &id).filter(|v| v["state"] == "COMPLETED")
    });
    assert!(done["resume_point"]["stroke"].as_u64() > Some(1), "{done}");
}

/// Polls `plotty job ID --json` until the pipeline is done with the job (READY or later).
fn prepared(env: &Env, port: u16, id: &str) -> Value {
    crate::common::poll("the job to be prepared", || {
        job_json(env, port, id).filter(|v| {
            !matches!(
                v["state"].as_str(),
                Some("NEW" | "QUEUED" | "ANALYZED" | "OPTIMIZED")
            )
        })
    })
}

#[test]
fn a_broken_svg_fails_its_job_with_the_reason_and_not_the_daemons_path() {
    let env = Env::new();
    env.write_default_config("device:\n  type: simulator\n");
    // An SVG by its start (the submission sniffs that) that does not parse.
    std::fs::write(
        env.path("broken.svg"),
        "<svg xmlns=\"http://www.w3.org/2000/svg\"><path d=",
    )
    .unwrap();
    let port = free_port();
    let _d = daemon(&env, port);
    let out = run(&env, &at(port, &["add", "broken.svg"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let id = stdout(&out).trim().to_owned();
    let failed = prepared(&env, port, &id);
    assert_eq!(failed["state"], "FAILED", "{failed}");
    let error = failed["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("broken SVG/XML"), "{error}");
    assert!(!error.contains("source.svg"), "{error}");
}

#[test]
fn after_a_crash_the_paused_job_keeps_the_plotter_until_it_is_aborted() {
    let env = Env::new();
    env.write_default_config("device:\n  type: simulator\n");
    std::fs::write(env.path("a.svg"), SVG).unwrap();
    std::fs::write(env.path("long.svg"), lines_svg(12)).unwrap();
    let port = free_port();
    let mut d = daemon(&env, port);
    let out = run(&env, &at(port, &["add", "long.svg", "--start"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let interrupted = stdout(&out).trim().to_owned();
    crate::common::poll("a resume point", || {
        job_json(&env, port, &interrupted)
            .filter(|v| v["state"] == "PLOTTING" && v["resume_point"]["stroke"].as_u64() > Some(1))
    });
    d.signal(Signal::SIGKILL);
    d.wait_exit();
    let _d = daemon(&env, port);
    let v = job_json(&env, port, &interrupted).unwrap();
    assert_eq!(
        (v["state"].as_str(), v["state_reason"].as_str()),
        (Some("PAUSED"), Some("interrupted")),
        "{v}"
    );

    // A job added with --start waits: the half-drawn sheet is still on the plotter.
    let out = run(&env, &at(port, &["add", "a.svg", "--start"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let next = stdout(&out).trim().to_owned();
    prepared(&env, port, &next);
    // `start` answers after the queue looked for a free plotter: a point where it has decided.
    let out = run(&env, &at(port, &["start", &next]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!("{next} READY (queued to start)\n"),
        "{}",
        stderr(&out)
    );
    let v = job_json(&env, port, &next).unwrap();
    assert_eq!(v["state"], "READY", "{v}");
    let table = stdout(&run(&env, &at(port, &["jobs"])));
    let line = table.lines().find(|l| l.starts_with(&next)).unwrap();
    assert!(line.contains("READY (queued to start)"), "{table}");
    let status = stdout(&run(&env, &at(port, &["status"])));
    assert!(
        status.contains(&format!("held by paused job {interrupted}")),
        "{status}"
    );

    // Aborting the paused job frees the plotter: the waiting job plots.
    let out = run(&env, &at(port, &["abort", &interrupted]));
    assert_eq!(
        stdout(&out),
        // The daemon plots on the simulator: the job never passes for a drawn one.
        format!("{interrupted} ABORTED (simulated)\n"),
        "{}",
        stderr(&out)
    );
    crate::common::poll("the waiting job to complete", || {
        job_json(&env, port, &next).filter(|v| v["state"] == "COMPLETED")
    });

    // A retry of the job that started by itself waits for `start`.
    let out = run(&env, &at(port, &["retry", &interrupted]));
    let retry = stdout(&out).trim().to_owned();
    assert_eq!(retry.len(), 12, "{}", stderr(&out));
    let v = prepared(&env, port, &retry);
    assert_eq!(
        (v["state"].as_str(), &v["start"]),
        (Some("READY"), &Value::Bool(false)),
        "{v}"
    );
    let table = stdout(&run(&env, &at(port, &["jobs"])));
    let line = table.lines().find(|l| l.starts_with(&retry)).unwrap();
    assert!(line.contains("READY (waiting for start)"), "{table}");
}

#[test]
fn a_job_added_without_start_is_started_with_start_not_resume() {
    let env = Env::new();
    env.write_default_config("device:\n  type: simulator\n");
    std::fs::write(env.path("a.svg"), SVG).unwrap();
    let port = free_port();
    let _d = daemon(&env, port);
    let out = run(&env, &at(port, &["add", "a.svg"]));
    let id = stdout(&out).trim().to_owned();
    let v = prepared(&env, port, &id);
    assert_eq!(v["state"], "READY", "{v}");
    let details = stdout(&run(&env, &at(port, &["job", &id])));
    assert!(
        details.contains("state     READY, waiting for start"),
        "{details}"
    );

    let out = run(&env, &at(port, &["resume", &id]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("plotty start {id}")),
        "{}",
        stderr(&out)
    );
    assert_eq!(job_json(&env, port, &id).unwrap()["state"], "READY");
    let out = run(&env, &at(port, &["start", &id]));
    assert!(out.status.success(), "{}", stderr(&out));
    crate::common::poll("the started job to complete", || {
        job_json(&env, port, &id).filter(|v| v["state"] == "COMPLETED")
    });
    let out = run(&env, &at(port, &["start", &id]));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("COMPLETED"), "{}", stderr(&out));
}

#[test]
fn a_prefix_two_job_ids_share_is_refused_with_both_named() {
    let env = Env::new();
    // 17 jobs of hexadecimal ids: two of them start with the same digit.
    let files: Vec<String> = (0..17)
        .map(|i| {
            let name = format!("j{i}.svg");
            std::fs::write(env.path(&name), SVG).unwrap();
            name
        })
        .collect();
    let port = free_port();
    let _d = daemon(&env, port);
    let mut args = vec!["add"];
    args.extend(files.iter().map(String::as_str));
    let out = run(&env, &at(port, &args));
    assert!(out.status.success(), "{}", stderr(&out));
    let ids: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    let shared = ids
        .iter()
        .map(|id| &id[..1])
        .find(|p| ids.iter().filter(|id| id.starts_with(*p)).count() >= 2)
        .unwrap();
    let out = run(&env, &at(port, &["cancel", shared]));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("give more of the id"), "{err}");
    for id in ids.iter().filter(|id| id.starts_with(shared)) {
        assert!(err.contains(id.as_str()), "{err}");
    }
    // Nothing was cancelled.
    let table = stdout(&run(&env, &at(port, &["jobs"])));
    assert!(!table.contains("CANCELLED"), "{table}");
    // An unknown id is still "not found".
    let out = run(&env, &at(port, &["job", "zzzz"]));
    assert!(stderr(&out).contains("zzzz"), "{}", stderr(&out));
}

#[test]
fn add_dash_reads_the_svg_from_standard_input() {
    use std::io::Write as _;
    let env = Env::new();
    let port = free_port();
    let _d = daemon(&env, port);
    let mut child = env
        .cmd()
        .args(at(port, &["add", "-"]))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(SVG.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let id = stdout(&out).trim().to_owned();
    let v = job_json(&env, port, &id).unwrap();
    assert_eq!(v["name"], "stdin.svg", "{v}");
    // Twice is refused before anything is sent.
    let out = run(&env, &at(port, &["add", "-", "-"]));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("once"), "{}", stderr(&out));
}

/// A drawing of an A4 sheet turned landscape (297 × 210 mm).
const A4_LANDSCAPE: &str = r#"<svg xmlns="http://www.w3.org/2000/svg" width="297mm" height="210mm" viewBox="0 0 297 210"><path d="M0 0 H297 V210 H0 Z" stroke="black" fill="none"/></svg>"#;

#[test]
fn add_with_a_paper_smaller_than_the_drawing_warns_at_submit_and_after_analysis() {
    let env = Env::new();
    let port = free_port();
    let _d = daemon(&env, port);
    env.write("a4.svg", A4_LANDSCAPE);
    let out = run(&env, &at(port, &["add", "a4.svg", "--paper", "A6"]));
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    // At submit, from the daemon's answer: the page the file declares against the paper.
    assert!(
        err.contains(
            "plotty: warning: a4.svg: the drawing's page is 297 × 210 mm, larger than \
                      the paper, A6 landscape (148 × 105 mm): A4 landscape fits"
        ),
        "{err}"
    );
    let id = stdout(&out).trim().to_owned();
    // The analysis checks again with the strokes and records it with the job.
    let analysed = crate::common::poll("the job's analysis", || {
        let v = job_json(&env, port, &id)?;
        v["events"].as_array()?.iter().find_map(|e| {
            let w = e["metadata"]["warnings"].as_array()?;
            (!w.is_empty()).then(|| w.clone())
        })
    });
    assert!(
        analysed[0]
            .as_str()
            .is_some_and(|w| w.contains("the drawing reaches 297 × 210 mm")
                && w.contains("A4 landscape fits")),
        "{analysed:?}"
    );
    // `plotty job` shows the paper as it lies and the analysis's warning.
    let out = run(&env, &at(port, &["job", &id]));
    let shown = stdout(&out);
    assert!(
        shown.contains("paper     A6 landscape (148 × 105 mm)\n"),
        "{shown}"
    );
    assert!(
        shown.contains("warning: the drawing reaches 297 × 210 mm"),
        "{shown}"
    );
    // A paper that holds it: nothing to say.
    let out = run(
        &env,
        &at(port, &["add", "a4.svg", "--paper", "A4 landscape"]),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), "", "{}", stderr(&out));
}

#[test]
fn add_takes_axicli_options_that_travel_with_the_job() {
    let env = Env::new();
    let svg = env.write("lines.svg", &lines_svg(4));
    let port = free_port();
    let _d = daemon(&env, port);
    let add = |extra: &[&str]| {
        let mut args = vec!["add", svg.to_str().unwrap()];
        args.extend_from_slice(extra);
        run(&env, &at(port, &args))
    };
    let estimate = |id: &str| {
        let v = prepared(&env, port, id);
        v["timing"]["estimate_post_s"]
            .as_f64()
            .unwrap_or_else(|| panic!("no estimate: {v:#}"))
    };
    let out = add(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let plain = estimate(stdout(&out).trim());
    let out = add(&[
        "--speed_pendown",
        "5",
        "--pen-pos-down",
        "20",
        "--model",
        "A3",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let id = stdout(&out).trim().to_owned();
    let slow = estimate(&id);
    assert!(slow > plain * 1.5, "{slow} vs {plain}");
    let v = job_json(&env, port, &id).unwrap();
    let options = &v["metadata"]["options"];
    assert_eq!(options["speed_pendown"], 5.0, "{v}");
    assert_eq!(options["pen_pos_down"], 20.0, "{v}");
    assert_eq!(options["model"], 2, "{v}");
    // Copies are jobs of their own, each with the options.
    let out = add(&[
        "--copies",
        "2",
        "--speed-pendown",
        "5",
        "--page_delay",
        "0.5",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ids: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    let v = job_json(&env, port, &ids[1]).unwrap();
    assert_eq!(v["metadata"]["options"]["page_delay"], 0.5, "{v}");
    let copy = estimate(&ids[0]);
    assert_eq!(estimate(&ids[1]), copy);
    // The lower pen-down position of the first (a longer way down) shows too.
    assert!(copy > plain * 1.5 && copy < slow, "{copy} vs {slow}");
    // Out of range: refused at submission by the config file's rule, and no job is created.
    let before = stdout(&run(&env, &at(port, &["jobs", "--json"])));
    for (args, want) in [
        (
            &["--speed-pendown", "500"][..],
            "--speed-pendown: 500 is out of range",
        ),
        (&["--copies", "0"], "--copies: 0 is out of range"),
        (&["--pen-rate-raise", "0.5"], "use a value from 1 to 200 %"),
        (&["--page-delay", "-1"], "--page-delay: -1 is out of range"),
    ] {
        let out = add(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
    }
    let out = add(&["--model", "Z9"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not an AxiDraw model"),
        "{}",
        stderr(&out)
    );
    let after = stdout(&run(&env, &at(port, &["jobs", "--json"])));
    let count = |s: &str| {
        serde_json::from_str::<Value>(s).unwrap()["jobs"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(count(&before), count(&after));
}

#[test]
fn add_layers_the_drawing_lacks_is_an_error_at_submit_listing_the_layers() {
    let env = Env::new();
    let svg = env.write(
        "three.svg",
        r#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape" width="50mm" height="50mm">
  <g inkscape:groupmode="layer" inkscape:label="1 outline"><path d="M1 1H9" stroke="black"/></g>
  <g inkscape:groupmode="layer" inkscape:label="2 hatch"><path d="M1 2H9" stroke="black"/></g>
  <g inkscape:groupmode="layer" inkscape:label="3 text"><path d="M1 3H9" stroke="black"/></g>
</svg>"#,
    );
    let port = free_port();
    let _d = daemon(&env, port);
    let out = run(
        &env,
        &at(port, &["add", svg.to_str().unwrap(), "--layers", "7"]),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("'7' names no layer")
            && err.contains(r#"1 "1 outline", 2 "2 hatch", 3 "3 text""#),
        "{err}"
    );
    assert!(
        stdout(&out).trim().is_empty(),
        "no job id: {}",
        stdout(&out)
    );
    let jobs: Value =
        serde_json::from_str(&stdout(&run(&env, &at(port, &["jobs", "--json"])))).unwrap();
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 0, "{jobs}");
    let out = run(
        &env,
        &at(port, &["add", svg.to_str().unwrap(), "--layers", "2-3"]),
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn the_device_status_on_the_stream_carries_the_position_while_plotting() {
    // Issue 11: the position was null from the start of a plot to its end, so a page could not
    // draw the pen over the preview.
    use tokio_tungstenite::tungstenite::{Message, connect};

    let env = Env::new();
    env.write_default_config("device:\n  type: simulator\n");
    std::fs::write(env.path("long.svg"), lines_svg(12)).unwrap();
    let port = free_port();
    let _d = daemon(&env, port);
    let (mut ws, _) = connect(format!("ws://127.0.0.1:{port}/ws")).unwrap();
    // A hung daemon fails the test instead of blocking it.
    match ws.get_mut() {
        tokio_tungstenite::tungstenite::stream::MaybeTlsStream::Plain(s) => {
            s.set_read_timeout(Some(DEADLINE)).unwrap();
        }
        _ => unreachable!("ws:// is plain TCP"),
    }
    ws.send(Message::text(
        r#"{"type": "subscribe", "channels": ["jobs", "devices"]}"#,
    ))
    .unwrap();
    let out = run(&env, &at(port, &["add", "long.svg", "--start"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let id = stdout(&out).trim().to_owned();
    let mut positions: Vec<(f64, f64)> = Vec::new();
    while positions.len() < 3 {
        let Message::Text(t) = ws.read().unwrap() else {
            continue;
        };
        let m: Value = serde_json::from_str(t.as_str()).unwrap();
        if m["type"] == "job_state_change" && m["job_id"] == id.as_str() {
            let to = m["to_state"].as_str().unwrap_or_default();
            assert!(
                !matches!(to, "COMPLETED" | "FAILED" | "ABORTED"),
                "the plot ended ({to}) with only {positions:?}"
            );
        }
        if m["type"] == "device_status" && m["current_job_id"] == id.as_str() {
            let p = &m["position"];
            if let (Some(x), Some(y)) = (p["x"].as_f64(), p["y"].as_f64())
                && positions.last() != Some(&(x, y))
            {
                positions.push((x, y));
            }
        }
    }
    // The strokes run from x = 10 to 70 mm at y = 10, 13, …: the carriage is among them.
    for (x, y) in &positions {
        assert!(
            (0.0..=80.0).contains(x) && (0.0..=60.0).contains(y),
            "{positions:?}"
        );
    }
    let out = run(&env, &at(port, &["abort", &id]));
    assert!(out.status.success(), "{}", stderr(&out));
}
