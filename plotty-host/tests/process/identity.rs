//! Boards chosen by who they are (issue 15): two simulated EBBs served on pseudo-terminals by
//! this test process (as `plotty-fw-sim serve` does, port cards included), listed with
//! `plotty device list`, one named with `plotty device name` (`ST`), then chosen by that
//! nickname by `plotty check device` and by the daemon, whatever its port. A pty has no USB
//! identity: the cards give one board a USB serial number (its nickname at power-on, as a real
//! EBB reports), and nicknames come from `QT`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread;

use nix::sys::signal::Signal;
use plotty_fw_sim::FirmwareVersion;
use plotty_fw_sim::announce::{PORTS_DIR_ENV, PortCard};
use plotty_fw_sim::board::Board;
use plotty_fw_sim::pty::{PtyServer, StopHandle};
use plotty_fw_sim::runner::ClockMode;
use serde_json::Value;

use crate::common::{Env, free_port, poll, stderr, stdout};

/// A board served on a pty (with `nickname` in its flash at power-on, if any) and its port
/// card in `ports` (in `slot`: one card per board); serves until `stop`.
fn serve(
    ports: &Path,
    slot: u32,
    nickname: Option<&str>,
    stop: &StopHandle,
) -> (PathBuf, PortCard) {
    let server = PtyServer::open_with_stop(None, stop.clone()).unwrap();
    let path = server.path().to_path_buf();
    let mut board = Board::new(FirmwareVersion::V3_0_3);
    if let Some(n) = nickname {
        board.firmware_mut().set_nickname(n).unwrap();
    }
    let card = PortCard::publish_slot(ports, slot, &path, &path, nickname.unwrap_or("")).unwrap();
    thread::spawn(move || server.run(&mut board, ClockMode::Realtime).unwrap());
    (path, card)
}

fn plotty(env: &Env, ports: &Path, args: &[&str]) -> Output {
    let mut c: Command = env.cmd();
    c.env(PORTS_DIR_ENV, ports).args(args);
    c.output().unwrap()
}

fn listing(env: &Env, ports: &Path) -> Vec<Value> {
    let out = plotty(env, ports, &["device", "list", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    v["boards"].as_array().unwrap().clone()
}

fn board<'a>(boards: &'a [Value], port: &Path) -> &'a Value {
    let port = port.display().to_string();
    boards
        .iter()
        .find(|b| b["port"] == port.as_str())
        .unwrap_or_else(|| panic!("{port} not in {boards:?}"))
}

#[test]
fn a_board_named_with_st_is_chosen_by_its_nickname_whatever_its_port() {
    let env = Env::new();
    let ports = env.path("ports");
    let stop = StopHandle::new().unwrap();
    let (a, _card_a) = serve(&ports, 1, None, &stop);
    let (b, _card_b) = serve(&ports, 2, Some("right"), &stop);

    // Both listed, each with what it answered.
    let boards = listing(&env, &ports);
    assert_eq!(boards.len(), 2, "{boards:?}");
    let (la, lb) = (board(&boards, &a), board(&boards, &b));
    assert_eq!(
        (&la["nickname"], &la["serial"], &la["firmware_version"]),
        (&Value::from(""), &Value::Null, &Value::from("3.0.3"))
    );
    assert_eq!(
        (&lb["nickname"], &lb["serial"]),
        (&Value::from("right"), &Value::from("right"))
    );

    // `name` needs to know which board when there are two, and refuses a name too long.
    let out = plotty(&env, &ports, &["device", "name", "left"]);
    assert_eq!(out.status.code(), Some(5), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("2 AxiDraws are connected"),
        "{}",
        stderr(&out)
    );
    let out = plotty(
        &env,
        &ports,
        &[
            "device",
            "name",
            "x".repeat(17).as_str(),
            "--port",
            a.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    // Name board A; QT reads the name back at once (its USB serial follows after a restart).
    let out = plotty(
        &env,
        &ports,
        &["device", "name", "left", "--port", a.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("nickname \"left\" (it had none)"),
        "{}",
        stdout(&out)
    );
    let boards = listing(&env, &ports);
    assert_eq!(board(&boards, &a)["nickname"], "left");
    assert_eq!(board(&boards, &b)["nickname"], "right");

    // The check finds board A by its nickname and says who answered.
    env.write_default_config("device:\n  type: axidraw\n  nickname: left\n");
    let out = plotty(&env, &ports, &["check", "device"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(text.contains(&format!("{} opened", a.display())), "{text}");
    assert!(text.contains("nickname \"left\", no USB serial"), "{text}");

    // The daemon drives board A, not the other one.
    let port = free_port();
    let mut d = {
        let mut c = env.cmd();
        c.env(PORTS_DIR_ENV, &ports)
            .args(["daemon", "-h", "127.0.0.1", "-p", &port.to_string(), "-w"])
            .arg(env.workspace());
        let mut d = env.spawn(c);
        d.wait_ready();
        d
    };
    let out = env
        .cmd()
        .args([
            "device",
            "version",
            "--json",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["devices"][0]["device_id"], a.display().to_string(), "{v}");
    d.signal(Signal::SIGTERM);
    assert!(d.wait_exit().success(), "{}", d.stderr());

    // A name no board has, and a name two boards have, are errors naming what was found.
    env.write_default_config("device:\n  type: auto\n  nickname: middle\n");
    let out = plotty(&env, &ports, &["check", "device"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(5), "{text}");
    assert!(
        text.contains("no AxiDraw has nickname \"middle\""),
        "{text}"
    );
    assert!(
        text.contains("nickname \"left\"") && text.contains("nickname \"right\""),
        "{text}"
    );
    let out = plotty(
        &env,
        &ports,
        &["device", "name", "right", "--nickname", "left"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    env.write_default_config("device:\n  type: axidraw\n  nickname: right\n");
    let out = plotty(&env, &ports, &["check", "device"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(5), "{text}");
    assert!(
        text.contains("2 AxiDraws have nickname \"right\""),
        "{text}"
    );
    // The daemon refuses to start rather than guess.
    let mut c = env.cmd();
    c.env(PORTS_DIR_ENV, &ports)
        .args(["daemon", "-h", "127.0.0.1", "-p", "0", "-w"])
        .arg(env.workspace());
    let out = crate::common::output_within_deadline(c);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("2 AxiDraws have nickname \"right\""),
        "{}",
        stderr(&out)
    );
    stop.stop();
}

/// A board plugged in where the configured one was (here: another board behind the same
/// link) is never driven: the device says which board it found instead.
#[test]
fn a_board_plugged_where_the_configured_one_was_is_not_driven() {
    let env = Env::new();
    let ports = env.path("ports");
    let link = env.path("ebb");
    let serve_at = |nickname: &str| {
        let stop = StopHandle::new().unwrap();
        let server = PtyServer::open_with_stop(Some(&link), stop.clone()).unwrap();
        let mut board = Board::new(FirmwareVersion::V3_0_3);
        board.firmware_mut().set_nickname(nickname).unwrap();
        let card = PortCard::publish(&ports, &link, server.path(), nickname).unwrap();
        let served = thread::spawn(move || {
            server.run(&mut board, ClockMode::Realtime).unwrap();
        });
        (stop, served, card)
    };
    let (stop_left, served_left, card_left) = serve_at("left");
    env.write_default_config("device:\n  type: axidraw\n  nickname: left\n");
    let port = free_port();
    let mut c = env.cmd();
    c.env(PORTS_DIR_ENV, &ports)
        .args(["daemon", "-h", "127.0.0.1", "-p", &port.to_string(), "-w"])
        .arg(env.workspace());
    let mut d = env.spawn(c);
    d.wait_ready();
    let device = || {
        let out = env
            .cmd()
            .args(["device", "version", "--json", "--host", "127.0.0.1"])
            .args(["--port", &port.to_string()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
        v["devices"][0].clone()
    };
    assert_eq!(device()["device_id"], link.display().to_string());
    // Unplugged; another board comes up on the same device path.
    stop_left.stop();
    served_left.join().unwrap();
    drop(card_left);
    let (stop_other, served_other, _card) = serve_at("other");
    let status = poll("the device to refuse the other board", || {
        let d = device();
        d["error_message"]
            .as_str()
            .is_some_and(|m| m.contains("not the one configured"))
            .then_some(d)
    });
    let message = status["error_message"].as_str().unwrap();
    assert!(message.contains("nickname \"other\""), "{message}");
    assert_ne!(status["status"], "connected", "{status}");
    d.signal(Signal::SIGTERM);
    assert!(d.wait_exit().success(), "{}", d.stderr());
    stop_other.stop();
    served_other.join().unwrap();
}

/// A board served on a pty linked at `link`, with `nickname` in its flash and its port card in
/// `ports`, recording what it draws (paced to the wall clock, so a plot takes its time); serves
/// until its stop handle (returned) is used.
fn traced_board(
    ports: &Path,
    link: &Path,
    nickname: &str,
) -> (
    StopHandle,
    thread::JoinHandle<plotty_fw_sim::trace::Trace>,
    PortCard,
) {
    let server = PtyServer::open(Some(link)).unwrap();
    let stop = server.stop_handle();
    let card = PortCard::publish(ports, link, server.path(), nickname).unwrap();
    let nickname = nickname.to_owned();
    let served = thread::spawn(move || {
        let observer =
            plotty_fw_sim::SimObserver::new(plotty_fw_sim::trace::TraceConfig::default());
        let mut board = Board::with_observer(FirmwareVersion::V3_0_3, observer);
        board.firmware_mut().set_nickname(&nickname).unwrap();
        server.run(&mut board, ClockMode::Realtime).unwrap();
        board.into_observer().trace.finish()
    });
    (stop, served, card)
}

/// The lines of the job the board's move interrupts: 40 mm each, 5 mm apart.
const LINES: [[(f64, f64); 2]; 8] = {
    let mut lines = [[(0.0, 0.0); 2]; 8];
    let mut i = 0;
    while i < 8 {
        let y = 20.0 + 5.0 * i as f64;
        lines[i] = [(20.0, y), (60.0, y)];
        i += 1;
    }
    lines
};

/// A bumped USB cable: the board chosen by its nickname vanishes from its port mid-plot and
/// comes back on another one while the daemon runs. The job is left PAUSED as before; the
/// device follows the board (same device id, the new port in its status), is `connected`
/// again, and the resumed job plots the rest on the board at its new port.
#[test]
fn a_board_that_comes_back_on_another_port_is_followed_and_plots_there() {
    let env = Env::new();
    let ports = env.path("ports");
    let (link_a, link_b) = (env.path("ttyACM0"), env.path("ttyACM1"));
    let (stop_a, served_a, card_a) = traced_board(&ports, &link_a, "left");
    env.write_default_config("device:\n  type: axidraw\n  nickname: left\n");
    let port = free_port();
    let mut c = env.cmd();
    c.env(PORTS_DIR_ENV, &ports)
        .args(["daemon", "-h", "127.0.0.1", "-p", &port.to_string(), "-w"])
        .arg(env.workspace());
    let mut d = env.spawn(c);
    d.wait_ready();
    let client = |args: &[&str]| {
        env.cmd()
            .args(args)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .output()
            .unwrap()
    };
    let device = || {
        let out = client(&["device", "version", "--json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
        v["devices"][0].clone()
    };
    let job_state = |job: &str| {
        let out = client(&["job", job, "--json"]);
        serde_json::from_str::<Value>(&stdout(&out))
            .ok()
            .map(|v| v["state"].as_str().unwrap_or_default().to_owned())
    };
    let id = link_a.display().to_string();
    let first = device();
    assert_eq!(first["device_id"], id.as_str(), "{first}");
    assert_eq!(first["port"], id.as_str(), "{first}");

    // A job plots; the cable is bumped mid-plot: the pty and its link go.
    std::fs::write(env.path("lines.svg"), crate::farm::svg(&LINES)).unwrap();
    let out = client(&["add", env.path("lines.svg").to_str().unwrap(), "--start"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let job = stdout(&out).trim().to_owned();
    poll("the job to plot", || {
        (job_state(&job).as_deref() == Some("PLOTTING")).then_some(())
    });
    stop_a.stop();
    let trace_a = served_a.join().unwrap();
    drop(card_a);
    poll("the interrupted job to be PAUSED", || {
        (job_state(&job).as_deref() == Some("PAUSED")).then_some(())
    });
    // The board comes back on another port.
    let (stop_b, served_b, _card_b) = traced_board(&ports, &link_b, "left");
    let back = poll("the device to follow its board", || {
        let d = device();
        (d["status"] == "connected" && d["port"] == link_b.display().to_string().as_str())
            .then_some(d)
    });
    assert_eq!(back["device_id"], id.as_str(), "the id stays: {back}");
    assert!(
        d.stderr().contains("moved to another port"),
        "logged: {}",
        d.stderr()
    );

    // The resumed job plots the rest on the board at its new port.
    let out = client(&["resume", &job]);
    assert!(out.status.success(), "{}", stderr(&out));
    poll("the job to complete", || {
        (job_state(&job).as_deref() == Some("COMPLETED")).then_some(())
    });
    d.signal(Signal::SIGTERM);
    assert!(d.wait_exit().success(), "{}", d.stderr());
    stop_b.stop();
    let trace_b = served_b.join().unwrap();
    let on_lines = |trace: &plotty_fw_sim::trace::Trace| {
        trace.strokes.iter().flatten().all(|p| {
            LINES
                .iter()
                .any(|[a, b]| crate::farm::to_segment((p.x, p.y), *a, *b) < 0.1)
        })
    };
    assert!(
        !trace_b.strokes.is_empty(),
        "the rest is drawn at the new port"
    );
    assert!(on_lines(&trace_a) && on_lines(&trace_b));
    // Together the two boards drew every line.
    for [a, b] in LINES {
        let covered = trace_a
            .strokes
            .iter()
            .chain(&trace_b.strokes)
            .flatten()
            .any(|p| crate::farm::to_segment((p.x, p.y), a, b) < 0.1);
        assert!(covered, "line {a:?}–{b:?} not drawn");
    }
}
