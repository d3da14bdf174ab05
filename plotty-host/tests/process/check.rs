//! `plotty check config|database|device` as a user runs them: output, fixes and exit codes.

use std::process::Stdio;

use crate::common::{Env, stderr, stdout};

#[test]
fn check_config_with_defaults_passes() {
    let env = Env::new();
    let o = env.run(&["check", "config", "-w", "ws"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    assert!(
        out.contains("does not exist; using the built-in defaults"),
        "{out}"
    );
    assert!(
        out.contains(&format!("workspace: {}", env.workspace().display())),
        "{out}"
    );
    assert!(out.ends_with("configuration: all is well\n"), "{out}");
}

#[test]
fn check_config_names_file_line_key_and_fix_for_every_problem() {
    let env = Env::new();
    let file = env.write_default_config(
        "websocket:\n  authenticate: true\n  max_connections: 0\ndevice:\n  model: 8\nhooks:\n  FAILED:\n    - command: [notify-send, \"{job_data}\"]\n    - command: notify-send plotty {job_name}\n",
    );
    let o = env.run(&["check", "config"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    let f = file.display();
    for want in [
        format!("PROBLEM websocket.authenticate: {f}:2:3: is true but there is no API key"),
        "fix: set websocket.api_key in the file or the PLOTTY_API_KEY environment variable".into(),
        format!("PROBLEM websocket.max_connections: {f}:3:3: is 0"),
        format!("PROBLEM device.model: {f}:5:3: 8 is not an AxiDraw model number"),
        format!("PROBLEM hooks.FAILED[0].command: {f}:8:7: unknown variable `{{job_data}}`"),
        format!(
            "PROBLEM hooks.FAILED[1].command: {f}:9:7: `{{job_name}}` in a shell string: plotty no \
             longer pastes values into shell text"
        ),
        "command: 'notify-send plotty \"$PLOTTY_JOB_NAME\"'".into(),
        r#"command: ["notify-send", "plotty", "{job_name}"]"#.into(),
        "configuration: 5 problems to fix".into(),
    ] {
        assert!(out.contains(&want), "missing `{want}` in:\n{out}");
    }
}

#[test]
fn missing_explicit_config_is_an_error_but_a_missing_default_is_not() {
    let env = Env::new();
    let o = env.run(&["check", "config", "-c", "nope.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stdout(&o).contains("nope.yaml (from --config) does not exist"),
        "{}",
        stdout(&o)
    );
    let o = env
        .cmd()
        .args(["check", "config"])
        .env("PLOTTY_CONFIG", "gone.yaml")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stdout(&o).contains("(from PLOTTY_CONFIG)"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn environment_overrides_the_file_and_the_command_line_overrides_both() {
    let env = Env::new();
    env.write_default_config("workspace: from-file\n");
    let o = env.run(&["check", "config"]);
    assert!(stdout(&o).contains(&format!(
        "workspace: {}",
        env.path("config/plotty/from-file").display()
    )));
    let o = env
        .cmd()
        .args(["check", "config"])
        .env("PLOTTY_WORKSPACE", "from-env")
        .output()
        .unwrap();
    assert!(
        stdout(&o).contains(&format!("workspace: {}", env.path("from-env").display())),
        "{}",
        stdout(&o)
    );
    let o = env
        .cmd()
        .args(["check", "config", "-w", "from-cli"])
        .env("PLOTTY_WORKSPACE", "from-env")
        .output()
        .unwrap();
    assert!(stdout(&o).contains(&format!("workspace: {}", env.path("from-cli").display())));
}

#[test]
fn the_daemon_refuses_a_bad_config_with_exit_code_2_and_the_location() {
    let env = Env::new();
    let file = env.write(
        "studio.yaml",
        "websocket:\n  port: 8766\n  authentication: true\n",
    );
    let o = env.run(&["daemon", "-c", "studio.yaml", "-w", "ws"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.starts_with(&format!(
            "plotty: step 1/6 (configuration): invalid configuration: {}:3:3: websocket.authentication: unknown key (fix: did you mean `authenticate`?",
            file.display()
        )),
        "{err}"
    );
    assert!(!env.workspace().exists(), "nothing was created");
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    let env = Env::new();
    let o = env.run(&["daemon", "--nice", "40"]);
    assert_eq!(o.status.code(), Some(2));
    let o = env.run(&["daemon", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("-h, --host <ADDRESS>"));
}

#[test]
fn a_closed_stdout_is_not_an_error() {
    let env = Env::new();
    // A pipe whose reading end is already closed: every write fails with EPIPE.
    let (read, write) = nix::unistd::pipe().unwrap();
    drop(read);
    let o = env
        .cmd()
        .args(["check", "config", "-w", "ws"])
        .stdout(Stdio::from(write))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stderr(&o), "");
}

#[test]
fn check_database_reports_missing_healthy_garbage_and_newer_files() {
    let env = Env::new();
    let o = env.run(&["check", "database", "-w", "ws"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("does not exist yet; the daemon creates it"),
        "{}",
        stdout(&o)
    );
    assert!(!env.workspace().join("plotty.db").exists());

    std::fs::create_dir_all(env.workspace()).unwrap();
    let db = env.workspace().join("plotty.db");
    std::fs::write(
        &db,
        "not a database, just text long enough to have a header......",
    )
    .unwrap();
    let o = env.run(&["check", "database", "-w", "ws"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stdout(&o).contains("will not overwrite it"),
        "{}",
        stdout(&o)
    );

    std::fs::remove_file(&db).unwrap();
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "PRAGMA application_id = 1347179609; PRAGMA user_version = 42; CREATE TABLE x(y);",
    )
    .unwrap();
    drop(conn);
    let o = env.run(&["check", "database", "-w", "ws"]);
    assert_eq!(o.status.code(), Some(3));
    // The newest migration this build knows: the highest number of migrations/NNNN_*.sql (numbers
    // may have gaps).
    let known = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations"))
        .unwrap()
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".sql")?.get(..4)?.parse::<u32>().ok()
        })
        .max()
        .unwrap();
    assert!(
        stdout(&o).contains(&format!(
            "schema version 42; this build knows up to {known}"
        )),
        "{}",
        stdout(&o)
    );
}

#[test]
fn check_device_for_the_simulator_and_a_missing_port() {
    let env = Env::new();
    env.write_default_config("device:\n  type: simulator\n");
    let o = env.run(&["check", "device", "-w", "ws"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    env.write_default_config("device:\n  type: axidraw\n  port: /dev/ttyPLOTTYNONE\n");
    let o = env.run(&["check", "device", "-w", "ws"]);
    assert_eq!(o.status.code(), Some(5));
    assert!(
        stdout(&o).contains("/dev/ttyPLOTTYNONE does not exist"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn check_device_asks_a_board_on_a_serial_port_for_its_version() {
    use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
    use std::io::{Read, Write};

    let env = Env::new();
    let pty = nix::pty::openpty(None, None).unwrap();
    let mut t = tcgetattr(&pty.slave).unwrap();
    cfmakeraw(&mut t);
    tcsetattr(&pty.slave, SetArg::TCSANOW, &t).unwrap();
    let path = nix::unistd::ttyname(&pty.slave).unwrap();
    env.write_default_config(&format!(
        "device:\n  type: axidraw\n  port: {}\n",
        path.display()
    ));
    // A minimal stand-in for the board: answers `V` with the EBB's version string.
    let mut master = std::fs::File::from(pty.master);
    let board = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut b = [0u8; 64];
        while !got.ends_with(b"\r") {
            let n = master.read(&mut b).unwrap();
            got.extend_from_slice(&b[..n]);
        }
        master
            .write_all(b"EBBv13_and_above EB Firmware Version 3.0.3\r\n")
            .unwrap();
        (got, master)
    });
    let o = env.run(&["check", "device", "-w", "ws"]);
    let (got, _master) = board.join().unwrap();
    assert_eq!(got, b"V\r");
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("EBB firmware 3.0.3"), "{}", stdout(&o));
    drop(pty.slave);
}

#[test]
fn check_json_gives_every_item_with_its_status_and_fix() {
    let env = Env::new();
    env.write_default_config("websocket:\n  max_connections: 0\n");
    let o = env.run(&["check", "config", "--json"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["subject"], "configuration");
    assert_eq!(v["passed"], false);
    assert_eq!(v["problems"], 1);
    let problem = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["status"] == "problem")
        .unwrap();
    assert_eq!(problem["what"], "websocket.max_connections");
    assert!(problem["fix"].is_string(), "{problem}");
    // And a passing check.
    let env = Env::new();
    let o = env.run(&["check", "config", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["passed"], true);
}
