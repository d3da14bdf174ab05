//! `plotty plot` as a user runs it: previews, estimates, simulated plots with their trace, and
//! bad inputs, each with one clear line and its exit code (2 configuration, 5 device, 6 input).

use std::fs;
use std::os::fd::AsFd;
use std::path::PathBuf;

use crate::common::{Env, stderr, stdout};

/// The repository's example drawings.
fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
}

const SQUARE: &str = r#"<svg xmlns="http://www.w3.org/2000/svg" width="50mm" height="50mm" viewBox="0 0 50 50">
  <path d="M10 10 H40 V40 H10 Z" stroke="black" fill="none"/>
  <circle cx="25" cy="25" r="8" stroke="black" fill="none"/>
</svg>"#;

/// Asserts a failure with `code` and a single `plotty: ` line on stderr containing `want`.
fn assert_one_line_error(o: &std::process::Output, code: i32, want: &str) {
    let err = stderr(o);
    assert_eq!(
        o.status.code(),
        Some(code),
        "stderr: {err}\nstdout: {}",
        stdout(o)
    );
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line expected:\n{err}");
    assert!(lines[0].starts_with("plotty: "), "{err}");
    assert!(lines[0].contains(want), "`{want}` missing in: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn preview_renders_svg_and_png_without_a_device() {
    let env = Env::new();
    let svg = env.write("square.svg", SQUARE);
    let o = env.run(&[
        "plot",
        svg.to_str().unwrap(),
        "--preview",
        env.path("p.svg").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("preview written to"), "{out}");
    assert!(!out.contains("device:"), "a preview needs no device: {out}");
    let text = fs::read_to_string(env.path("p.svg")).unwrap();
    assert!(
        text.contains("<svg") && text.contains("stroke-dasharray"),
        "{text}"
    );
    let o = env.run(&[
        "plot",
        svg.to_str().unwrap(),
        example("squares.svg").to_str().unwrap(),
        "--preview",
        env.path("previews").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(env.path("previews/square.svg").is_file());
    assert!(env.path("previews/squares.svg").is_file());
    let o = env.run(&[
        "plot",
        svg.to_str().unwrap(),
        "--preview",
        env.path("p.png").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(fs::read(env.path("p.png")).unwrap().starts_with(b"\x89PNG"));
}

/// `plotty plot square.svg ARGS…` in `env`.
fn plot_square(env: &Env, args: &[&str]) -> std::process::Output {
    let svg = env.write("square.svg", SQUARE);
    let mut all = vec!["plot", svg.to_str().unwrap()];
    all.extend_from_slice(args);
    env.run(&all)
}

#[test]
fn an_estimate_plans_only_even_on_the_simulator() {
    let env = Env::new();
    let o = plot_square(
        &env,
        &[
            "--estimate",
            "--device",
            "sim",
            "--render",
            env.path("out").to_str().unwrap(),
        ],
    );
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    assert!(out.contains("planned plot time"), "{out}");
    assert!(!out.contains("simulated plot time"), "{out}");
    assert!(!env.path("out").exists(), "it simulated and rendered");
    // Counts read as English: one layer, two strokes.
    assert!(out.contains("square.svg: 1 layer, 2 strokes,"), "{out}");
}

#[test]
fn verify_without_estimate_is_refused() {
    let env = Env::new();
    let o = plot_square(&env, &["--verify"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--estimate"), "{}", stderr(&o));
}

#[test]
fn estimate_with_verify_simulates_and_agrees_within_one_percent() {
    let env = Env::new();
    // Verified on the simulator even when the settings name a plotter.
    let o = plot_square(
        &env,
        &[
            "--estimate",
            "--verify",
            "--device",
            "/dev/ttyACM-none",
            "--render",
            env.path("out").to_str().unwrap(),
        ],
    );
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    assert!(out.contains("device: the built-in simulator"), "{out}");
    assert!(out.contains("planned plot time"), "{out}");
    let line = out
        .lines()
        .find(|l| l.contains("simulated plot time"))
        .unwrap_or_else(|| panic!("{out}"));
    let pct: f64 = line
        .split(" s), plan ")
        .nth(1)
        .and_then(|r| r.split('(').nth(1))
        .and_then(|r| r.split(" %").next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no difference in {line}"));
    assert!(pct.abs() < 1.0, "{line}");
    assert!(
        line.contains("largest deviation between plan and trace"),
        "{line}"
    );
    // What the simulated board saw: FIFO gaps and the highest step rate of each motor, which
    // a square drawn along the axes of the mixed-axis mechanism drives on both motors.
    let board = out
        .lines()
        .find(|l| l.contains("simulator: the motion queue"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(board.contains("mid-plot"), "{board}");
    let rates: Vec<f64> = board
        .split("steps/s")
        .filter_map(|part| part.rsplit(' ').nth(1)?.parse().ok())
        .collect();
    assert_eq!(rates.len(), 2, "{board}");
    assert!(rates.iter().all(|&r| r > 100.0 && r <= 25_000.0), "{board}");
    let trace = fs::read_to_string(env.path("out/square.svg")).unwrap();
    assert!(
        trace.contains("<polyline") || trace.contains("<path"),
        "{trace}"
    );
}

#[test]
fn auto_without_a_plotter_uses_the_simulator_and_says_so() {
    let env = Env::new();
    let svg = env.write("square.svg", SQUARE);
    let o = env.run(&["plot", svg.to_str().unwrap(), "--device", "auto"]);
    let out = stdout(&o);
    // This machine may have a real AxiDraw; then the test has nothing to check. A CI machine
    // has none, so there it is a failure.
    if out.contains("device: the AxiDraw") {
        plotty_host::testing::skip(
            "auto_without_a_plotter_uses_the_simulator_and_says_so",
            "an AxiDraw is plugged in: `auto` plotted on it",
            plotty_host::testing::InCi::Provides,
        );
        return;
    }
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    assert!(
        out.contains("no AxiDraw found by USB id 04D8:FD92"),
        "{out}"
    );
    assert!(out.contains("simulated plot time"), "{out}");
}

#[test]
fn bad_inputs_get_one_clear_line_and_exit_code_6() {
    let env = Env::new();
    let run = |file: &PathBuf, extra: &[&str]| {
        let mut args = vec!["plot", file.to_str().unwrap(), "--device", "sim"];
        args.extend_from_slice(extra);
        env.run(&args)
    };
    let text = env.write("notes.svg", "just some notes, not a drawing\n");
    assert_one_line_error(&run(&text, &[]), 6, "not an SVG");
    let broken = env.write(
        "broken.svg",
        "<svg xmlns='http://www.w3.org/2000/svg'><path d='M0 0",
    );
    assert_one_line_error(&run(&broken, &[]), 6, "broken SVG/XML");
    let empty = env.write(
        "empty.svg",
        "<svg xmlns='http://www.w3.org/2000/svg' width='10mm' height='10mm'><rect width='5' height='5' fill='red'/></svg>",
    );
    assert_one_line_error(&run(&empty, &[]), 6, "empty.svg");
    let absurd = env.write(
        "absurd.svg",
        "<svg xmlns='http://www.w3.org/2000/svg' width='10mm' height='10mm'><path d='M1e30 1e30 L2e30 2e30' stroke='black'/></svg>",
    );
    assert_one_line_error(&run(&absurd, &[]), 6, "absurd.svg");
    let huge = env.path("huge.svg");
    fs::File::create(&huge)
        .unwrap()
        .set_len(500_000_000)
        .unwrap();
    assert_one_line_error(&run(&huge, &[]), 6, "over the limit");
    let square = env.write("square.svg", SQUARE);
    assert_one_line_error(&run(&square, &["--layers", "9"]), 6, "names no layer");
    assert_one_line_error(&run(&env.path("missing.svg"), &[]), 6, "cannot read");
    let o = env.run(&["plot", square.to_str().unwrap(), "-c", "nope.yaml"]);
    assert_one_line_error(&o, 2, "does not exist");
}

#[test]
fn a_port_that_is_not_a_plotter_is_a_device_error() {
    let env = Env::new();
    let square = env.write("square.svg", SQUARE);
    // Not a serial port at all.
    let o = env.run(&["plot", square.to_str().unwrap(), "--device", "/dev/null"]);
    assert_one_line_error(&o, 5, "/dev/null");
    // A serial port where something else answers.
    let pty = nix::pty::openpty(None, None).unwrap();
    let mut termios = nix::sys::termios::tcgetattr(pty.slave.as_fd()).unwrap();
    nix::sys::termios::cfmakeraw(&mut termios);
    nix::sys::termios::tcsetattr(
        pty.slave.as_fd(),
        nix::sys::termios::SetArg::TCSANOW,
        &termios,
    )
    .unwrap();
    let name = nix::unistd::ttyname(pty.slave.as_fd()).unwrap();
    let master = pty.master;
    let answer = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        // Answer the first request with something that is not an EBB.
        if let Ok(n) = nix::unistd::read(&master, &mut buf)
            && n > 0
        {
            let _ = nix::unistd::write(&master, b"Hello from a modem\r\n");
        }
        // Keep the master open until the test is done with the port.
        std::thread::sleep(std::time::Duration::from_secs(2));
    });
    let o = env.run(&[
        "plot",
        square.to_str().unwrap(),
        "--device",
        name.to_str().unwrap(),
    ]);
    assert_one_line_error(&o, 5, "is not a plotter");
    assert!(stderr(&o).contains("Hello from a modem"), "{}", stderr(&o));
    answer.join().unwrap();
    drop(pty.slave);
}

#[test]
fn estimate_json_is_the_only_output_and_holds_every_file() {
    let env = Env::new();
    let a = env.write("a.svg", SQUARE);
    let b = env.write("b.svg", SQUARE);
    let o = env.run(&[
        "plot",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--estimate",
        "--json",
        "--device",
        "sim",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let files = v["files"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    let e = &files[0]["estimate"];
    assert!(files[0]["file"].as_str().unwrap().ends_with("a.svg"));
    assert!(e["total_s"].as_f64().unwrap() > 0.0, "{e}");
    // Two strokes: the square and the circle.
    assert_eq!(e["drops"], 2, "{e}");
    assert_eq!(e["layers"].as_array().unwrap().len(), 1);
    // --json is an estimate's.
    let o = env.run(&["plot", a.to_str().unwrap(), "--json"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn a_preview_named_with_a_format_plotty_cannot_write_is_an_error_not_a_directory() {
    let env = Env::new();
    let svg = env.write("square.svg", SQUARE);
    let out = env.path("out.jpg");
    let o = env.run(&[
        "plot",
        svg.to_str().unwrap(),
        "--preview",
        out.to_str().unwrap(),
    ]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains(".svg or .png"), "{}", stderr(&o));
    assert!(!out.exists(), "out.jpg was created");
    // A directory may have a dot in its name.
    std::fs::create_dir(env.path("v1.2")).unwrap();
    let o = env.run(&[
        "plot",
        svg.to_str().unwrap(),
        "--preview",
        env.path("v1.2").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(env.path("v1.2/square.svg").exists());
}

/// A drawing of an A4 sheet turned landscape: its strokes reach 297 × 210 mm.
const A4_LANDSCAPE: &str = r#"<svg xmlns="http://www.w3.org/2000/svg" width="297mm" height="210mm" viewBox="0 0 297 210">
  <path d="M0 0 H297 V210 H0 Z" stroke="black" fill="none"/>
</svg>"#;

#[test]
fn a_drawing_larger_than_the_paper_is_a_warning_naming_both_and_what_fits() {
    let env = Env::new();
    env.write_default_config("paper:\n  default_size: A6\n");
    let svg = env.write("a4.svg", A4_LANDSCAPE);
    let preview = env.path("p.svg");
    let o = env.run(&[
        "plot",
        svg.to_str().unwrap(),
        "--preview",
        preview.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("plotty: warning: ")
            && err.contains("the drawing reaches 297 × 210 mm, larger than the paper, A6")
            && err.contains("A4 landscape fits"),
        "{err}"
    );
    // The configured A4 (auto: landscape) holds it: no warning.
    env.write_default_config("paper:\n  default_size: A4\n");
    let o = env.run(&[
        "plot",
        svg.to_str().unwrap(),
        "--preview",
        preview.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("paper"), "{}", stderr(&o));
}

#[test]
fn plot_paper_overrides_the_config_for_this_run_and_a_bad_size_is_refused() {
    let env = Env::new();
    env.write_default_config("paper:\n  default_size: A4\n");
    let svg = env.write("a4.svg", A4_LANDSCAPE);
    let preview = env.path("p.svg");
    let plot = |paper: &str| {
        env.run(&[
            "plot",
            svg.to_str().unwrap(),
            "--preview",
            preview.to_str().unwrap(),
            "--paper",
            paper,
        ])
    };
    let o = plot("A6");
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("larger than the paper, A6") && err.contains("(--paper)"),
        "{err}"
    );
    // Portrait asked for explicitly: the landscape drawing does not fit an A4 that way round.
    let o = plot("A4 portrait");
    assert!(stderr(&o).contains("A4 landscape fits"), "{}", stderr(&o));
    let o = plot("A4 landscape");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("paper"), "{}", stderr(&o));
    let o = plot("B9000");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--paper: `B9000` is not a paper size"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn preview_size_and_legend_match_the_estimate() {
    let env = Env::new();
    let png = env.path("p.png");
    let o = plot_square(&env, &["--preview", png.to_str().unwrap(), "--size", "300"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let bytes = fs::read(&png).unwrap();
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let (w, h) = (be(&bytes[16..20]), be(&bytes[20..24]));
    assert_eq!(w.max(h), 300, "{w} × {h}");
    // Out of range: refused by the option itself.
    let o = plot_square(
        &env,
        &["--preview", png.to_str().unwrap(), "--size", "9000"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    // The SVG's legend carries the figures `--estimate --json` prints.
    let svg = env.path("p.svg");
    let o = plot_square(&env, &["--preview", svg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = fs::read_to_string(&svg).unwrap();
    let o = plot_square(&env, &["--estimate", "--json", "--device", "sim"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let e = &v["files"][0]["estimate"];
    let total = &text[text.find("class=\"legend-total\"").unwrap()..];
    let value = |name: &str| -> f64 {
        let key = format!("{name}=\"");
        let at = total.find(&key).unwrap() + key.len();
        total[at..at + total[at..].find('"').unwrap()]
            .parse()
            .unwrap()
    };
    assert_eq!(
        value("data-time-s"),
        e["total_s"].as_f64().unwrap(),
        "{text}"
    );
    assert_eq!(value("data-pen-down-mm"), e["drawn_mm"].as_f64().unwrap());
    assert_eq!(value("data-pen-up-mm"), e["travel_mm"].as_f64().unwrap());
    assert!(
        text.contains("class=\"start\"") && text.contains("class=\"end\""),
        "{text}"
    );
    assert!(text.contains("class=\"sheet\""), "{text}");
}

/// `plotty plot square.svg --estimate --json --device sim ARGS…`: the first file's estimate, or
/// the failed process.
fn estimate_json(env: &Env, args: &[&str]) -> Result<serde_json::Value, std::process::Output> {
    let mut all = vec!["--estimate", "--json", "--device", "sim"];
    all.extend_from_slice(args);
    let o = plot_square(env, &all);
    if o.status.code() != Some(0) {
        return Err(o);
    }
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    Ok(v["files"][0].clone())
}

#[test]
fn axicli_options_change_the_plan_for_this_run_only() {
    let env = Env::new();
    let total = |args: &[&str]| {
        let f = estimate_json(&env, args).unwrap_or_else(|o| panic!("{}", stderr(&o)));
        f["estimate"]["total_s"].as_f64().unwrap()
    };
    let base = total(&[]);
    // axicli's spellings, with `-` or `_`, and values the config file also takes.
    let slow = total(&["--speed-pendown", "5"]);
    assert!(slow > base * 1.5, "{slow} vs {base}");
    assert_eq!(total(&["--speed_pendown", "5"]), slow);
    assert!(total(&["--speed-penup", "10"]) > base);
    assert!(total(&["--accel", "5"]) > base);
    assert!(total(&["--pen-rate-lower", "5"]) > base, "slower pen drops");
    assert!(total(&["--pen_pos_down", "0", "--pen-pos-up", "100"]) > base);
    assert!(total(&["--pen-rate-raise", "200"]) < base);
    assert!(total(&["--const-speed"]) > base);
    // The configured value is the default: the same speed in the file gives the same plan.
    env.write_default_config("device:\n  speed_pendown: 5\n");
    assert_eq!(total(&[]), slow);
    assert!(total(&["--speed-pendown", "25"]) < slow, "the option wins");
    env.write_default_config("");
    // Copies: the total with the delays between them.
    let f = estimate_json(&env, &["--copies", "3", "--page-delay", "10"]).unwrap();
    assert_eq!(f["copies"], 3);
    let all = f["total_with_copies_s"].as_f64().unwrap();
    assert!((all - (3.0 * base + 20.0)).abs() < 1e-6, "{all} vs {base}");
    // Copies are plotted, but a verified estimate simulates the plan once.
    let o = plot_square(&env, &["--device", "sim", "--copies", "2"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o).matches("simulated plot time").count(),
        2,
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("copy 2 of 2"), "{}", stdout(&o));
    let o = plot_square(&env, &["--estimate", "--verify", "--copies", "2"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o).matches("simulated plot time").count(),
        1,
        "{}",
        stdout(&o)
    );
    // Other options are accepted and reported nowhere else.
    for args in [
        &["--model", "SE/A3"][..],
        &["--model", "2"],
        &["--reordering", "0"],
        &["--reordering", "4"],
        &["--random-start"],
        &["--auto-rotate"],
        &["--no_rotate"],
    ] {
        estimate_json(&env, args).unwrap_or_else(|o| panic!("{args:?}: {}", stderr(&o)));
    }
}

#[test]
fn axicli_options_out_of_range_are_refused_with_the_config_files_rule() {
    let env = Env::new();
    for (args, want) in [
        (
            &["--speed-pendown", "500"][..],
            "--speed-pendown: 500 is out of range (fix: use a value from 1 to 110 %)",
        ),
        (
            &["--pen-pos-up", "101"],
            "--pen-pos-up: 101 is out of range",
        ),
        (&["--accel", "0"], "--accel: 0 is out of range"),
        (&["--model", "9"], "`9` is not an AxiDraw model"),
        (&["--copies", "0"], "--copies: 0 is out of range"),
        (
            &["--reordering", "7"],
            "--reordering: 7 is not a reordering level",
        ),
    ] {
        let o = plot_square(&env, &[&["--estimate", "--device", "sim"], args].concat());
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"));
    }
    // --keep-order is --reordering 4: both is a contradiction clap names.
    let o = plot_square(&env, &["--estimate", "--keep-order", "--reordering", "2"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn auto_rotate_turns_a_portrait_page_onto_the_landscape_travel() {
    let env = Env::new();
    // A4 portrait, a line down the page's left edge from top to 250 mm: past the A4 model's
    // 218 mm of Y travel unless the page is turned.
    let svg = env.write(
        "portrait.svg",
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="210mm" height="297mm" viewBox="0 0 210 297">
  <path d="M10 10 V260" stroke="black" fill="none"/>
</svg>"#,
    );
    let drawn = |args: &[&str]| {
        let mut all = vec![
            "plot",
            svg.to_str().unwrap(),
            "--estimate",
            "--json",
            "--device",
            "sim",
        ];
        all.extend_from_slice(args);
        let o = env.run(&all);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        (
            v["files"][0]["estimate"]["drawn_mm"].as_f64().unwrap(),
            stderr(&o),
        )
    };
    let (clipped, warning) = drawn(&[]);
    assert!(clipped < 240.0, "{clipped}");
    assert!(warning.contains("travel"), "{warning}");
    let (turned, warning) = drawn(&["--auto-rotate"]);
    assert!((turned - 250.0).abs() < 0.01, "{turned}");
    assert!(!warning.contains("travel"), "{warning}");
    let (plain, _) = drawn(&["--auto-rotate", "--no-rotate"]);
    assert_eq!(plain, clipped, "the last one wins");
}
