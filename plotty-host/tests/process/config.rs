//! `plotty config init|show` and `plotty check config` with several problems, as a user runs
//! them (issue 12 items 2 and 6).

use std::fs;

use crate::common::{Env, output_within_deadline, stderr, stdout};

/// The example config shipped in the repository, which `config init` writes.
const EXAMPLE: &str = include_str!("../../../contrib/config/config.example.yaml");

#[test]
fn config_init_writes_the_example_where_the_daemon_looks_and_never_overwrites_silently() {
    let env = Env::new();
    let default = env.path("config/plotty/config.yaml");
    assert!(!default.parent().unwrap().exists());
    let o = env.run(&["config", "init"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    assert_eq!(fs::read_to_string(&default).unwrap(), EXAMPLE);
    assert!(
        out.starts_with(&format!(
            "wrote the example configuration to {}\n",
            default.display()
        )),
        "{out}"
    );
    assert!(out.contains("\n  plotty check config\n"), "{out}");
    // What it wrote is a valid configuration, found where the daemon looks.
    let o = env.run(&["check", "config", "-w", "ws"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(
        stdout(&o).contains(&format!(
            "{} (from the default location)",
            default.display()
        )),
        "{}",
        stdout(&o)
    );

    // An existing file is kept; the error names it and --force.
    fs::write(&default, "websocket:\n  port: 9000\n").unwrap();
    let o = env.run(&["config", "init"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains(&format!("{} already exists", default.display())) && err.contains("--force"),
        "{err}"
    );
    assert_eq!(
        fs::read_to_string(&default).unwrap(),
        "websocket:\n  port: 9000\n"
    );
    let o = env.run(&["config", "init", "--force"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(fs::read_to_string(&default).unwrap(), EXAMPLE);

    // A PATH, relative to the working directory, with the check command that reads it.
    let o = env.run(&["config", "init", "etc/plotty/my.yaml"]);
    let mine = env.path("etc/plotty/my.yaml");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(fs::read_to_string(&mine).unwrap(), EXAMPLE);
    assert!(
        stdout(&o).contains(&format!("plotty check config -c {}", mine.display())),
        "{}",
        stdout(&o)
    );
}

#[test]
fn config_show_gives_each_value_and_where_it_came_from() {
    let env = Env::new();
    let file = env.write_default_config(
        "# my plotter\nwebsocket:\n  port: 9000\n  api_key: key-in-the-file-0123\n",
    );
    let o = env
        .cmd()
        .args(["config", "show", "-w", "ws", "--log-level", "DEBUG"])
        .env("PLOTTY_API_KEY", "key-in-the-environment")
        .output()
        .unwrap();
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    let line = |key: &str| -> String {
        let l = out
            .lines()
            .find(|l| l.starts_with(&format!("{key}: ")))
            .unwrap_or_else(|| panic!("no {key} in\n{out}"));
        l.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    assert_eq!(
        line("websocket.port"),
        format!("websocket.port: 9000 # {}:3", file.display())
    );
    assert_eq!(
        line("websocket.api_key"),
        "websocket.api_key: ******** # env PLOTTY_API_KEY"
    );
    assert_eq!(
        line("workspace"),
        format!(
            "workspace: {} # command line --workspace",
            env.workspace().display()
        )
    );
    assert_eq!(line("device.type"), "device.type: auto # default");
    assert_eq!(
        line("logging.level"),
        "logging.level: debug # command line --log-level"
    );
    assert!(!out.contains("key-in-the"), "a key is shown:\n{out}");
    // Every key of the example config is there.
    for key in [
        "websocket.header_timeout",
        "device.port",
        "motion.pen_lift_s",
        "limits.max_file_mb",
    ] {
        line(key);
    }

    let o = env.run(&["config", "show", "--json", "-c"]);
    assert_eq!(o.status.code(), Some(2), "-c needs a file");
    let o = env.run(&["config", "show", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let port = v["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["key"] == "websocket.port")
        .unwrap();
    assert_eq!(
        (&port["value"], &port["origin"], &port["line"]),
        (&9000.into(), &"file".into(), &3.into())
    );
    assert_eq!(v["config_file"]["found"], true);
}

/// Issue 12 item 6: two misspelt keys and a bad value are three problems for `check config`,
/// and the daemon refuses to start with the same three.
#[test]
fn check_config_lists_every_misspelt_key_and_bad_value() {
    let env = Env::new();
    let file = env.write_default_config(
        "websocket:\n  prot: 9000\n  max_connections: 0\ndevice:\n  modle: 2\n",
    );
    let o = env.run(&["check", "config"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    let f = file.display();
    for want in [
        format!("PROBLEM websocket.prot: {f}:2:3: unknown key"),
        "fix: did you mean `port`?".to_owned(),
        format!("PROBLEM websocket.max_connections: {f}:3:3: is 0"),
        format!("PROBLEM device.modle: {f}:5:3: unknown key"),
        "fix: did you mean `model`?".to_owned(),
        "configuration: 3 problems to fix".to_owned(),
    ] {
        assert!(out.contains(&want), "missing `{want}` in:\n{out}");
    }

    let o = output_within_deadline(env.daemon(&[]));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("invalid configuration, 3 problems:"), "{err}");
    for key in [
        "websocket.prot",
        "websocket.max_connections",
        "device.modle",
    ] {
        assert!(err.contains(key), "{key} missing in:\n{err}");
    }
}
