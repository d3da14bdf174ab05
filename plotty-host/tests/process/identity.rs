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
