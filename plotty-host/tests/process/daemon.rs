//! `plotty daemon` as a process: start-up, port 0, PID file, workspace lock, signals, sd_notify,
//! `--daemonize`, `--nice`, `--user`/`--group`, refusal of a damaged database.

use std::fs;
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;

use nix::sys::signal::Signal;

use crate::common::{
    Env, alive, daemon_info, output_within_deadline, poll, proc_status, stderr, stdout,
};

#[test]
fn starts_on_a_free_port_and_stops_cleanly_on_sigterm() {
    let env = Env::new();
    let pid_file = env.path("run/plotty.pid");
    let mut d = env.spawn(env.daemon(&["--pid-file", "run/plotty.pid"]));
    d.wait_ready();
    let info = daemon_info(&env.workspace());
    assert_eq!(info.pid, d.pid());
    let port = info.port.unwrap();
    assert_ne!(port, 0);
    assert_eq!(
        info.address.as_deref(),
        Some(format!("127.0.0.1:{port}").as_str())
    );
    assert_eq!(
        fs::read_to_string(&pid_file).unwrap(),
        format!("{}\n", d.pid())
    );
    // The port is bound and listening.
    TcpStream::connect(("127.0.0.1", port)).unwrap();
    let log = d.stderr();
    for step in 1..=6 {
        assert!(
            log.contains(&format!("step {step}/6")),
            "step {step} missing:\n{log}"
        );
    }
    assert!(log.contains("api: serving http://127.0.0.1:"), "{log}");

    d.signal(Signal::SIGTERM);
    let status = d.wait_exit();
    assert_eq!(status.code(), Some(0), "{}", d.stderr());
    assert!(!pid_file.exists(), "PID file removed");
    assert!(
        !env.workspace().join("daemon.json").exists(),
        "daemon.json removed"
    );
    let log = d.stderr();
    let order = ["shutting down (SIGTERM)", "database closed", "stopped"];
    let positions: Vec<_> = order.iter().map(|s| log.find(s).unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{log}");
    // The log file has the same lines.
    let file = fs::read_to_string(env.workspace().join("logs/plotty.log")).unwrap();
    assert!(file.contains("step 6/6 hooks") && file.contains("stopped"));
}

#[test]
fn sigint_also_stops_cleanly() {
    let env = Env::new();
    let mut d = env.spawn(env.daemon(&[]));
    d.wait_ready();
    d.signal(Signal::SIGINT);
    assert_eq!(d.wait_exit().code(), Some(0));
}

#[test]
fn a_second_daemon_on_the_same_pid_file_is_refused_and_names_the_pid() {
    let env = Env::new();
    let mut first = env.spawn(env.daemon(&["--pid-file", "plotty.pid"]));
    first.wait_ready();
    let mut second = env.cmd();
    second.args([
        "daemon",
        "-h",
        "127.0.0.1",
        "-p",
        "0",
        "-w",
        "ws2",
        "--pid-file",
        "plotty.pid",
    ]);
    let o = second.output().unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "another plotty daemon (PID {}) is running with the PID file",
            first.pid()
        )),
        "{}",
        stderr(&o)
    );
    assert!(alive(first.pid()));
    first.signal(Signal::SIGTERM);
    assert_eq!(first.wait_exit().code(), Some(0));
}

#[test]
fn a_stale_pid_file_is_replaced() {
    let env = Env::new();
    let pid_file = env.path("plotty.pid");
    // A PID that cannot be running (above pid_max), left by a crash.
    fs::write(&pid_file, "99999999\n").unwrap();
    let mut d = env.spawn(env.daemon(&["--pid-file", "plotty.pid"]));
    d.wait_ready();
    assert_eq!(
        fs::read_to_string(&pid_file).unwrap(),
        format!("{}\n", d.pid())
    );
    assert!(
        d.stderr()
            .contains("replaced the PID file of process 99999999"),
        "{}",
        d.stderr()
    );
    d.signal(Signal::SIGTERM);
    assert_eq!(d.wait_exit().code(), Some(0));
    assert!(!pid_file.exists());
}

#[test]
fn a_second_daemon_on_the_same_workspace_is_refused() {
    let env = Env::new();
    let mut first = env.spawn(env.daemon(&[]));
    first.wait_ready();
    let o = output_within_deadline(env.daemon(&[]));
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "another plotty daemon (PID {}) is using the workspace",
            first.pid()
        )),
        "{}",
        stderr(&o)
    );
    first.signal(Signal::SIGTERM);
    assert_eq!(first.wait_exit().code(), Some(0));
}

#[test]
fn a_port_in_use_fails_with_exit_code_4_and_advice() {
    let env = Env::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let o = env
        .cmd()
        .args(["daemon", "-h", "127.0.0.1", "-p", &port, "-w", "ws"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4));
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "step 3/6 (listen): cannot listen on 127.0.0.1:{port}"
        )),
        "{err}"
    );
    assert!(err.contains("choose another --port"), "{err}");
    assert_eq!(
        err.matches("cannot listen").count(),
        1,
        "said once on stderr: {err}"
    );
    let log = fs::read_to_string(env.workspace().join("logs/plotty.log")).unwrap();
    assert!(
        log.contains("ERROR plotty::exit: step 3/6 (listen): cannot listen"),
        "and in the log: {log}"
    );
}

#[test]
fn a_damaged_or_newer_database_is_refused_and_kept() {
    let env = Env::new();
    fs::create_dir_all(env.workspace()).unwrap();
    let db = env.workspace().join("plotty.db");
    let garbage = b"SQLite format 2\0 but not really; ".repeat(200);
    fs::write(&db, &garbage).unwrap();
    let o = output_within_deadline(env.daemon(&[]));
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("step 2/6 (database)") && stderr(&o).contains(".broken"),
        "{}",
        stderr(&o)
    );
    assert_eq!(fs::read(&db).unwrap(), garbage);

    fs::remove_file(&db).unwrap();
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "PRAGMA application_id = 1347179609; PRAGMA user_version = 42; CREATE TABLE future(x);",
    )
    .unwrap();
    drop(conn);
    let before = fs::read(&db).unwrap();
    let o = output_within_deadline(env.daemon(&[]));
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("upgrade plotty"), "{}", stderr(&o));
    assert_eq!(fs::read(&db).unwrap(), before);
}

/// Every file under `dir` with its contents, sorted (missing: empty).
fn snapshot(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.push((p.clone(), Vec::new()));
                todo.push(p);
            } else {
                out.push((p.clone(), fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn an_empty_or_missing_database_next_to_job_journals_is_refused_and_nothing_is_touched() {
    let env = Env::new();
    let ws = env.workspace();
    let jobs = ws.join("jobs");
    for id in ["0123456789ab", "ba9876543210"] {
        fs::create_dir_all(jobs.join(id)).unwrap();
        fs::write(jobs.join(id).join("source.svg"), "<svg/>").unwrap();
        fs::write(
            jobs.join(id).join("journal.jsonl"),
            format!(
                "{{\"type\":\"state_change\",\"job_id\":\"{id}\",\"timestamp\":\"2026-01-01T00:00:00.000Z\",\"from_state\":null,\"to_state\":\"NEW\",\"reason\":\"submitted\",\"metadata\":{{}}}}\n"
            ),
        )
        .unwrap();
    }
    let db = ws.join("plotty.db");
    let before = snapshot(&jobs);

    // Truncated to 0 bytes.
    fs::write(&db, b"").unwrap();
    let o = output_within_deadline(env.daemon(&[]));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("step 2/6 (database)"), "{err}");
    assert!(
        err.contains(&format!(
            "the database {} is empty (0 bytes) but {} holds 2 jobs' journals",
            db.display(),
            jobs.display()
        )),
        "{err}"
    );
    assert!(err.contains("restore it from a backup"), "{err}");
    assert!(
        err.contains(&format!("mv {0} {0}.old", jobs.display())),
        "{err}"
    );
    assert_eq!(fs::read(&db).unwrap(), b"");
    for side in ["plotty.db-wal", "plotty.db-shm"] {
        assert!(!ws.join(side).exists(), "{side} was created");
    }
    assert_eq!(snapshot(&jobs), before);

    // `plotty check database` says the same.
    let o = env.run(&["check", "database", "-w", "ws"]);
    assert_eq!(o.status.code(), Some(3), "{}", stdout(&o));
    assert!(stdout(&o).contains("is empty (0 bytes)"), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("restore it from a backup"),
        "{}",
        stdout(&o)
    );
    assert_eq!(fs::read(&db).unwrap(), b"");

    // Missing altogether.
    fs::remove_file(&db).unwrap();
    let o = output_within_deadline(env.daemon(&[]));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains(&format!(
            "the database {} does not exist but {} holds 2 jobs' journals",
            db.display(),
            jobs.display()
        )),
        "{err}"
    );
    assert!(err.contains("restore it from a backup"), "{err}");
    assert!(!db.exists(), "the database was created");
    assert_eq!(snapshot(&jobs), before);
    let o = env.run(&["check", "database", "-w", "ws"]);
    assert_eq!(o.status.code(), Some(3), "{}", stdout(&o));
    assert!(stdout(&o).contains("does not exist but"), "{}", stdout(&o));

    // With the jobs moved aside, as the message says, the daemon starts with an empty queue.
    fs::rename(&jobs, ws.join("jobs.old")).unwrap();
    let mut d = env.spawn(env.daemon(&[]));
    d.wait_ready();
    assert!(db.exists());
    d.signal(Signal::SIGTERM);
    assert_eq!(d.wait_exit().code(), Some(0), "{}", d.stderr());
}

#[test]
fn sighup_reloads_and_a_broken_config_keeps_the_old_one() {
    let env = Env::new();
    let config = env.write_default_config("logging:\n  level: info\n");
    let mut d = env.spawn(env.daemon(&[]));
    d.wait_ready();
    fs::write(&config, "hooks:\n  QUEUED:\n    - command: echo queued\n").unwrap();
    d.signal(Signal::SIGHUP);
    poll("the reload", || {
        d.stderr().contains("configuration reloaded").then_some(())
    });
    fs::write(&config, "websocket:\n  prot: 1\n").unwrap();
    d.signal(Signal::SIGHUP);
    poll("the refused reload", || {
        d.stderr()
            .contains("reloading the configuration failed; keeping the current one")
            .then_some(())
    });
    assert!(
        d.stderr().contains("websocket.prot: unknown key"),
        "{}",
        d.stderr()
    );
    assert!(alive(d.pid()));
    d.signal(Signal::SIGTERM);
    assert_eq!(d.wait_exit().code(), Some(0));
}

#[test]
fn sd_notify_ready_and_stopping_are_sent_to_notify_socket() {
    let env = Env::new();
    let sock_path = env.path("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let mut cmd = env.daemon(&[]);
    cmd.env("NOTIFY_SOCKET", &sock_path);
    let mut d = env.spawn(cmd);
    let mut buf = [0u8; 512];
    sock.set_read_timeout(Some(crate::common::DEADLINE))
        .unwrap();
    let n = sock.recv(&mut buf).unwrap();
    let ready = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(ready.starts_with("READY=1\n"), "{ready}");
    assert!(ready.contains(&format!("MAINPID={}", d.pid())), "{ready}");
    d.wait_ready();
    d.signal(Signal::SIGTERM);
    let n = sock.recv(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("STOPPING=1"));
    assert_eq!(d.wait_exit().code(), Some(0));
}

#[test]
fn daemonize_returns_once_listening_and_prints_the_real_pid() {
    let env = Env::new();
    let o = env
        .daemon(&["--daemonize", "--pid-file", "plotty.pid"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let pid: u32 = out
        .strip_prefix("plotty daemon started: PID ")
        .and_then(|r| r.split(',').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected output: {out}"));
    // When the parent returned, the daemon was already listening.
    let info = plotty_host::daemon::state_file::StateFile::read(&env.workspace()).unwrap();
    assert_eq!(info.pid, pid);
    assert!(
        out.contains(&format!("listening on 127.0.0.1:{}", info.port.unwrap())),
        "{out}"
    );
    TcpStream::connect(("127.0.0.1", info.port.unwrap())).unwrap();
    assert_eq!(
        fs::read_to_string(env.path("plotty.pid")).unwrap(),
        format!("{pid}\n")
    );
    assert!(alive(pid));
    // Detached: another session than ours, not its leader (double fork), no terminal.
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit(") ").next().unwrap().split(' ').collect();
    let (session, tty): (i32, i32) = (fields[3].parse().unwrap(), fields[4].parse().unwrap());
    assert_ne!(session, nix::unistd::getsid(None).unwrap().as_raw());
    assert_ne!(session, pid as i32, "not a session leader");
    assert_eq!(tty, 0, "no controlling terminal");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGTERM).unwrap();
    poll("the daemon to exit", || (!alive(pid)).then_some(()));
    assert!(!env.path("plotty.pid").exists());
    let log = fs::read_to_string(env.workspace().join("logs/plotty.log")).unwrap();
    assert!(log.contains("stopped"), "{log}");
}

#[test]
fn daemonize_reports_a_start_up_failure_with_its_exit_code() {
    let env = Env::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let o = env
        .cmd()
        .args(["daemon", "-d", "-h", "127.0.0.1", "-p", &port, "-w", "ws"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("the daemon did not start: step 3/6 (listen)"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn nice_sets_the_priority_of_every_thread() {
    let env = Env::new();
    let mut d = env.spawn(env.daemon(&["--nice", "7"]));
    d.wait_ready();
    let tasks = fs::read_dir(format!("/proc/{}/task", d.pid())).unwrap();
    let mut n = 0;
    for t in tasks {
        let stat = fs::read_to_string(t.unwrap().path().join("stat")).unwrap();
        // Field 19 is the nice value; fields after the `)` of the command name start at 3.
        let nice: i32 = stat
            .rsplit(") ")
            .next()
            .unwrap()
            .split(' ')
            .nth(16)
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(nice, 7);
        n += 1;
    }
    assert!(n > 1, "the runtime has threads");
    d.signal(Signal::SIGTERM);
    assert_eq!(d.wait_exit().code(), Some(0));
}

#[test]
fn user_and_group_drop_privileges_after_binding() {
    if !nix::unistd::geteuid().is_root() {
        // CI may well run as an ordinary user; the refusal without root is tested separately
        // (`user_and_group_are_refused_when_not_root`).
        plotty_host::testing::skip(
            "user_and_group_drop_privileges_after_binding",
            "needs root to switch to nobody:nogroup",
            plotty_host::testing::InCi::MayLack,
        );
        return;
    }
    let env = Env::new();
    let mut d = env.spawn(env.daemon(&[
        "--user",
        "nobody",
        "--group",
        "nogroup",
        "--pid-file",
        "run/p.pid",
    ]));
    d.wait_ready();
    let uid = proc_status(d.pid(), "Uid");
    let gid = proc_status(d.pid(), "Gid");
    assert_eq!(
        uid.split_whitespace().collect::<Vec<_>>(),
        ["65534"; 4],
        "{uid}"
    );
    assert_eq!(
        gid.split_whitespace().collect::<Vec<_>>(),
        ["65534"; 4],
        "{gid}"
    );
    assert_eq!(proc_status(d.pid(), "Groups"), "65534");
    assert!(
        d.stderr().contains("privileges dropped to nobody:nogroup"),
        "{}",
        d.stderr()
    );
    // The files it created were handed over, so it can still write them.
    use std::os::unix::fs::MetadataExt;
    for p in ["plotty.db", "logs/plotty.log", "jobs", "daemon.json"] {
        assert_eq!(
            fs::metadata(env.workspace().join(p)).unwrap().uid(),
            65534,
            "{p}"
        );
    }
    d.signal(Signal::SIGTERM);
    assert_eq!(d.wait_exit().code(), Some(0), "{}", d.stderr());
}

#[test]
fn user_and_group_are_refused_when_not_root() {
    let env = Env::new();
    let mut cmd = env.daemon(&["--user", "root"]);
    if nix::unistd::geteuid().is_root() {
        // Run plotty itself as nobody.
        cmd.uid(65534).gid(65534);
    }
    let o = cmd.output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("--user: switching to another user or group needs root"),
        "{err}"
    );
    assert!(err.contains("User= and Group="), "{err}");
}
