//! The web UI in a real browser: a `plotty daemon` on a loopback port with the simulator, and
//! Debian's headless `chromium` driven through `chromedriver` (WebDriver, with `fantoccini`).
//! Each test starts its own daemon, chromedriver and browser profile.
//!
//! Waiting is by polling the page with a deadline (what a browser test can do: the page changes
//! on its own as the stream arrives), never by sleeping a fixed time before a check.
//!
//! Without `chromium` and `chromedriver` (`apt-get install chromium chromium-driver`) the tests
//! say so on a `SKIP` line and pass; under `CI=true` that skip fails (`.ci/run` installs them).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use plotty_host::testing::{InCi, skip};
use serde_json::{Value, json};

use crate::common::{Env, Running, daemon, free_port, poll};

/// Longest any wait for the page may take.
const PAGE_DEADLINE: Duration = Duration::from_secs(60);

/// The browser binaries, or why there are none.
fn browser_binaries() -> Result<(PathBuf, PathBuf), String> {
    let find = |names: &[&str]| -> Option<PathBuf> {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
            .find(|p| p.is_file())
    };
    let chromium = find(&["chromium", "chromium-browser", "google-chrome"]);
    let driver = find(&["chromedriver"]);
    match (chromium, driver) {
        (Some(c), Some(d)) => Ok((c, d)),
        (c, d) => Err(format!(
            "no {} on PATH: install Debian's `chromium chromium-driver` to run the web UI tests",
            [("chromium", c.is_none()), ("chromedriver", d.is_none())]
                .iter()
                .filter(|(_, missing)| *missing)
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(" and ")
        )),
    }
}

/// One browser at a time: a chromium per test in parallel (with their daemons, next to the other
/// process tests) starves a 2-core machine into timeouts.
static ONE_BROWSER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A headless chromium under its own chromedriver.
struct Browser {
    client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Browser {
    /// Starts chromedriver and a headless chromium of `width`×`height`; `None` (after a loud
    /// skip) when they are not installed.
    async fn start(test: &str, width: u32, height: u32) -> Option<Self> {
        let (chromium, chromedriver) = match browser_binaries() {
            Ok(b) => b,
            Err(why) => {
                skip(test, &why, InCi::Provides);
                return None;
            }
        };
        let turn = ONE_BROWSER_AT_A_TIME.lock().await;
        let port = free_port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        poll("chromedriver to listen", || {
            TcpStream::connect(("127.0.0.1", port)).ok()
        });
        let profile = tempfile::tempdir().unwrap();
        // Below 500 px a headless window is widened to 500: a phone is emulated instead.
        let phone = width < 500;
        let mut caps = json!({
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new",
                    // Tests run as root in CI, where chromium's sandbox cannot start.
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }
        });
        if phone {
            caps["goog:chromeOptions"]["mobileEmulation"] = json!({
                "deviceMetrics": { "width": width, "height": height, "pixelRatio": 2.0, "touch": true }
            });
        }
        let Value::Object(caps) = caps else {
            unreachable!("a JSON object literal")
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap();
        Some(Self {
            client,
            driver,
            _profile: profile,
            _turn: turn,
        })
    }

    /// Evaluates `js` (a function body; `return` gives the value) until it returns something
    /// other than `null`/`false`, and returns that; fails the test after [`PAGE_DEADLINE`].
    async fn until(&self, what: &str, js: &str) -> Value {
        let deadline = Instant::now() + PAGE_DEADLINE;
        let mut last = Value::Null;
        loop {
            match self.client.execute(js, vec![]).await {
                Ok(Value::Null | Value::Bool(false)) => {}
                Ok(v) => return v,
                Err(e) => last = json!(e.to_string()),
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what} (last error: {last}); page text:\n{}",
                self.text("body").await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The visible text of the first element matching `css` ("" when there is none).
    async fn text(&self, css: &str) -> String {
        match self.client.find(Locator::Css(css)).await {
            Ok(e) => e.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Waits for the element `css` to be shown, then clicks it.
    async fn click(&self, css: &str) {
        let js = format!(
            "const e = document.querySelector({css:?}); return !!e && e.getClientRects().length > 0 && !e.disabled;"
        );
        let deadline = Instant::now() + PAGE_DEADLINE;
        loop {
            self.until(&format!("{css} to be clickable"), &js).await;
            // The page may redraw the element between the check and the click (a job's buttons
            // are drawn again when the stream reports a change): then it is found again.
            let clicked = match self.client.find(Locator::Css(css)).await {
                Ok(e) => e.click().await.map(drop),
                Err(e) => Err(e),
            };
            match clicked {
                Ok(()) => return,
                Err(e) if Instant::now() < deadline && e.to_string().contains("stale element") => {}
                Err(e) => panic!("cannot click {css}: {e}"),
            }
        }
    }

    /// Waits until the text of `css` contains `want`; returns the text.
    async fn text_contains(&self, css: &str, want: &str) -> String {
        let js = format!(
            "const e = document.querySelector({css:?}); \
             return e && e.getClientRects().length > 0 && e.textContent.includes({want:?}) ? e.textContent : null;"
        );
        self.until(&format!("`{want}` in {css}"), &js)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The elements that stick out past the window's right edge (none on a phone-sized page).
    async fn wider_than_the_window(&self) -> Value {
        self.client
            .execute(
                "return [...document.querySelectorAll('body *')] \
                   .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 0.5) \
                   .map((e) => e.tagName + '#' + e.id + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right));",
                vec![],
            )
            .await
            .unwrap()
    }

    /// The number of points in the pen's trail over the preview.
    async fn trail_points(&self) -> u64 {
        self.client
            .execute(
                "const t = document.querySelector('#trail'); return t ? Number(t.dataset.points) : 0;",
                vec![],
            )
            .await
            .unwrap()
            .as_u64()
            .unwrap_or(0)
    }

    /// Waits until the trail has more than `than` points; returns the count.
    async fn trail_grows(&self, than: u64) -> u64 {
        let js = format!(
            "const t = document.querySelector('#trail'); \
             const n = t ? Number(t.dataset.points) : 0; return n > {than} ? n : null;"
        );
        self.until("the pen's trail to grow", &js)
            .await
            .as_u64()
            .unwrap_or(0)
    }

    /// Saves a screenshot as `<name>.png` in the directory `PLOTTY_UI_SCREENSHOTS` names, if
    /// set (how the README's screenshots are made: `PLOTTY_UI_SCREENSHOTS=docs/screenshots`).
    async fn screenshot(&self, name: &str) {
        if let Some(dir) = std::env::var_os("PLOTTY_UI_SCREENSHOTS") {
            let png = self.client.screenshot().await.unwrap();
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(Path::new(&dir).join(format!("{name}.png")), png).unwrap();
        }
    }

    async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A failed test still ends its chromedriver (chromium ends with it).
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// A daemon on the simulator, with `extra` config lines.
fn sim_daemon(env: &Env, extra: &str) -> (Running, u16) {
    env.write_default_config(&format!("device:\n  type: simulator\n{extra}"));
    let port = free_port();
    (daemon(env, port), port)
}

/// The repository's example drawing `name`, as an absolute path for the file picker.
fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
        .canonicalize()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_ui_uploads_an_example_and_plots_it_with_the_pen_trail() {
    let Some(b) = Browser::start(
        "web_ui_uploads_an_example_and_plots_it_with_the_pen_trail",
        1200,
        900,
    )
    .await
    else {
        return;
    };
    let env = Env::new();
    let (_d, port) = sim_daemon(&env, "");
    b.client
        .goto(&format!("http://127.0.0.1:{port}/"))
        .await
        .unwrap();
    b.text_contains("#conn", "connected").await;
    b.text_contains("#device", "simulator").await;

    // Upload through the file picker, not started.
    b.click("#nav-upload").await;
    let picker = b.client.find(Locator::Id("file-input")).await.unwrap();
    picker
        .send_keys(example("spirograph.svg").to_str().unwrap())
        .await
        .unwrap();
    b.text_contains("#upload-files", "spirograph.svg").await;
    b.client
        .find(Locator::Id("up-name"))
        .await
        .unwrap()
        .send_keys("from the browser")
        .await
        .unwrap();
    b.click("#up-submit").await;
    b.text_contains("#upload-results", "from the browser").await;
    // Analysed: its import has no warnings, and it waits READY for a start.
    b.text_contains("#upload-results", "imported without warnings")
        .await;
    b.click("#upload-results a").await;

    // The job page: the preview of the queued job, then Start behind the paper question.
    b.until(
        "the preview",
        "return document.querySelectorAll('#preview path, #preview polyline').length > 0;",
    )
    .await;
    b.text_contains("#job-state", "READY").await;
    b.click("#job-start").await;
    b.text_contains("#job-confirm", "paper").await;
    b.click("#confirm-start").await;
    b.text_contains("#job-state", "PLOTTING").await;

    // The pen's position comes with the progress: its trail grows over the preview.
    let first = b.trail_grows(1).await;
    let more = b.trail_grows(first).await;
    assert!(more > first);
    b.text_contains("#job-progress-text", "ETA").await;
    // The motor supply, read as the plot started.
    b.text_contains("#device-supply", "(enough)").await;
    b.trail_grows(more + 20).await;
    b.screenshot("job-plotting").await;

    b.click("#job-pause").await;
    b.text_contains("#job-state", "PAUSED").await;
    let reason = b.text_contains("#job-reason", "Paused (user)").await;
    assert!(reason.contains("Resume"), "{reason}");
    let paused_at = b.trail_points().await;

    b.click("#job-resume").await;
    b.text_contains("#job-state", "PLOTTING").await;
    b.trail_grows(paused_at).await;

    b.click("#job-abort").await;
    b.text_contains("#job-state", "ABORTED").await;
    b.text_contains("#job-reason", "Aborted").await;
    // ABORTED offers Retry and Delete, nothing that needs a running plot.
    b.until(
        "the ABORTED actions",
        "return !!document.querySelector('#job-retry') && !document.querySelector('#job-pause');",
    )
    .await;
    b.close().await;
}

/// Broken XML: the import's error must reach the uploader.
const BROKEN: &str = "<svg xmlns='http://www.w3.org/2000/svg'><g><path d='M0 0 L10 10'";
/// A fill plotty does not draw: a warning.
const FILLED: &str = "<svg xmlns='http://www.w3.org/2000/svg' width='50mm' height='50mm' viewBox='0 0 50 50'>\
    <rect x='5' y='5' width='10' height='10' fill='black'/><path d='M20 20 H40' stroke='black'/></svg>";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_ui_shows_a_broken_svgs_error_and_warnings_on_a_phone_sized_screen() {
    let Some(b) = Browser::start(
        "web_ui_shows_a_broken_svgs_error_and_warnings_on_a_phone_sized_screen",
        390,
        844,
    )
    .await
    else {
        return;
    };
    let env = Env::new();
    let (_d, port) = sim_daemon(&env, "");
    b.client
        .goto(&format!("http://127.0.0.1:{port}/#/upload"))
        .await
        .unwrap();
    b.text_contains("#conn", "connected").await;
    // Two files dropped at once (a drop event with the files, as a drag from the desktop
    // gives the page).
    let dropped = b
        .client
        .execute(
            "const dt = new DataTransfer(); \
             dt.items.add(new File([arguments[0]], 'broken.svg', {type: 'image/svg+xml'})); \
             dt.items.add(new File([arguments[1]], 'filled.svg', {type: 'image/svg+xml'})); \
             document.getElementById('drop').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true})); \
             return document.querySelectorAll('#upload-files li').length;",
            vec![json!(BROKEN), json!(FILLED)],
        )
        .await
        .unwrap();
    assert_eq!(dropped, json!(2));
    b.click("#up-submit").await;
    let error = b
        .text_contains("#upload-results .error", "broken SVG/XML")
        .await;
    assert!(error.contains("line 1"), "{error}");
    // The daemon's path of its copy means nothing to the uploader.
    assert!(error.starts_with("broken SVG/XML"), "{error}");
    b.text_contains("#upload-results", "could not be imported")
        .await;
    b.text_contains("#upload-results .warning", "fills are not drawn")
        .await;
    b.screenshot("upload-phone").await;

    // The phone-sized page does not scroll sideways.
    let wider = b.wider_than_the_window().await;
    assert_eq!(wider, json!([]), "wider than a phone's screen (390 px)");
    let width = b
        .client
        .execute("return window.innerWidth;", vec![])
        .await
        .unwrap();
    assert_eq!(width, json!(390), "not a phone-sized window");

    // The failed job's page says why, and offers Retry and Delete.
    b.click("#upload-results li[data-name='broken.svg'] a")
        .await;
    b.text_contains("#job-reason", "Failed (error)").await;
    b.text_contains("#job-reason", "broken SVG/XML").await;
    b.text_contains("#job-preview .error", "No preview").await;
    let wider = b.wider_than_the_window().await;
    assert_eq!(
        wider,
        json!([]),
        "the job page is wider than a phone's screen"
    );
    b.until(
        "Retry and Delete",
        "return !!document.querySelector('#job-retry') && !!document.querySelector('#job-delete');",
    )
    .await;
    // Retry makes a new job of the same file (it fails the same way) and shows it.
    let failed_url = b.client.current_url().await.unwrap();
    b.click("#job-retry").await;
    b.until(
        "the retried job's page",
        &format!("return location.href !== {:?};", failed_url.as_str()),
    )
    .await;
    b.text_contains("#job-reason", "broken SVG/XML").await;
    // Delete goes back to the list, where the job is gone.
    let retried = b
        .client
        .execute("return location.hash.split('/').pop();", vec![])
        .await
        .unwrap();
    let retried = retried.as_str().unwrap().to_owned();
    b.click("#job-delete").await;
    b.until("the job list", "return location.hash === '#/';")
        .await;
    b.until(
        "the deleted job to leave the list",
        &format!("return !document.querySelector('#jobs tr[data-job=\"{retried}\"]');"),
    )
    .await;
    // Cancel: the READY job (the one with the fill) leaves the queue from its page.
    b.until(
        "the READY job's page",
        "const row = [...document.querySelectorAll('#jobs tr')].find((r) => r.textContent.includes('filled.svg')); \
         if (!row) return null; row.querySelector('a').click(); return true;",
    )
    .await;
    b.text_contains("#job-state", "READY").await;
    b.until(
        "the preview",
        "return document.querySelectorAll('#preview path, #preview polyline').length > 0;",
    )
    .await;
    let wider = b.wider_than_the_window().await;
    assert_eq!(
        wider,
        json!([]),
        "the job page is wider than a phone's screen"
    );
    b.screenshot("job-phone").await;
    b.click("#job-cancel").await;
    b.text_contains("#job-state", "ABORTED").await;
    b.text_contains("#job-reason", "Aborted (user)").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_ui_asks_for_the_api_key_once_and_keeps_it_out_of_the_url() {
    let Some(b) = Browser::start(
        "web_ui_asks_for_the_api_key_once_and_keeps_it_out_of_the_url",
        1200,
        900,
    )
    .await
    else {
        return;
    };
    let env = Env::new();
    let key = "browser-key-0123456789";
    let (d, port) = sim_daemon(
        &env,
        &format!("websocket:\n  authenticate: true\n  api_key: \"{key}\"\n"),
    );
    let home = format!("http://127.0.0.1:{port}/");
    b.client.goto(&home).await.unwrap();
    // Asked at once: the page cannot list the jobs without the key.
    b.until(
        "the key dialog",
        "return document.getElementById('key-dialog').open;",
    )
    .await;
    b.screenshot("api-key").await;
    let input = b.client.find(Locator::Id("key-input")).await.unwrap();
    input.send_keys("wrong").await.unwrap();
    b.click("#key-submit").await;
    b.text_contains("#key-reason", "refused").await;
    let input = b.client.find(Locator::Id("key-input")).await.unwrap();
    input.send_keys(key).await.unwrap();
    b.click("#key-submit").await;
    // The WebSocket connects with it (it cannot send a header: the key goes as a subprotocol).
    b.text_contains("#conn", "connected").await;
    b.text_contains("#device", "simulator").await;

    // Kept for the session, never in the address; a reload does not ask again.
    let url = b.client.current_url().await.unwrap();
    assert!(!url.as_str().contains(key), "{url}");
    let stored = b
        .client
        .execute("return sessionStorage.getItem('plotty.apiKey');", vec![])
        .await
        .unwrap();
    assert_eq!(stored, json!(key));
    b.client.refresh().await.unwrap();
    b.text_contains("#conn", "connected").await;
    let open = b
        .client
        .execute("return document.getElementById('key-dialog').open;", vec![])
        .await
        .unwrap();
    assert_eq!(open, json!(false), "asked for the key again after a reload");
    // The device panel: home (a fresh simulator's motors are off: its place becomes home), then
    // a walk typed in, which a status update meanwhile (homing again) does not wipe.
    b.click("#device button[data-action=home]").await;
    b.text_contains("#flash", "home").await;
    for (id, mm) in [("walk-x", "12.5"), ("walk-y", "4")] {
        let input = b.client.find(Locator::Id(id)).await.unwrap();
        input.clear().await.unwrap();
        input.send_keys(mm).await.unwrap();
    }
    b.click("#device button[data-action=home]").await;
    b.text_contains("#flash", "homed from (0.0, 0.0)").await;
    b.click("#device form.walk button").await;
    let said = b.text_contains("#flash", "walk").await;
    assert!(
        said.contains("walked to (12.5, 4.0)"),
        "{said}\ndaemon:\n{}",
        d.stderr()
    );
    b.text_contains("#device-position", "12.5, 4.0 mm").await;
    // The key never shows in the daemon's log.
    let log = d.stderr();
    assert!(!log.contains(key), "{log}");
    b.close().await;
}

/// Two layers, the second behind a pen change (`!`) with a red pen.
const TWO_PENS: &str = r#"<svg xmlns="http://www.w3.org/2000/svg"
    xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape"
    width="100mm" height="100mm" viewBox="0 0 100 100">
  <g inkscape:groupmode="layer" inkscape:label="1 black"><path d="M10 10 H30" stroke="black" fill="none"/></g>
  <g inkscape:groupmode="layer" inkscape:label="!2 red"><path d="M50 50 H70" stroke="red" fill="none"/></g>
</svg>"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_ui_started_at_upload_prompts_for_the_next_pen_and_resumes() {
    let Some(b) = Browser::start(
        "web_ui_started_at_upload_prompts_for_the_next_pen_and_resumes",
        1200,
        900,
    )
    .await
    else {
        return;
    };
    let env = Env::new();
    let (_d, port) = sim_daemon(&env, "");
    b.client
        .goto(&format!("http://127.0.0.1:{port}/#/upload"))
        .await
        .unwrap();
    b.text_contains("#conn", "connected").await;
    b.client
        .execute(
            "const dt = new DataTransfer(); \
             dt.items.add(new File([arguments[0]], 'two pens.svg', {type: 'image/svg+xml'})); \
             document.getElementById('drop').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true}));",
            vec![json!(TWO_PENS)],
        )
        .await
        .unwrap();
    // "Start now": it plots without a Start on its page.
    b.click("#up-start").await;
    b.click("#up-submit").await;
    b.click("#upload-results li[data-job] a").await;
    b.text_contains("#job-state", "PAUSED").await;
    let prompt = b
        .text_contains("#job-reason", "put in the pen for layer 2")
        .await;
    assert!(
        prompt.contains("red") && prompt.contains("#ff0000") && prompt.contains("Resume"),
        "{prompt}"
    );
    // Its layers in plot order, the red one behind the pen change, with its colour.
    let rows = b
        .until(
            "the layers table",
            "const rows = [...document.querySelectorAll('#job-layers tr')];              return rows.length === 2 ? rows.map((r) => r.textContent + ' ' +                (r.querySelector('.swatch') || {style: {}}).style.background) : null;",
        )
        .await;
    let rows: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        rows[1].contains("pen change before") && rows[1].contains("rgb(255, 0, 0)"),
        "{rows:?}"
    );
    assert!(!rows[0].contains("pen change"), "{rows:?}");
    b.click("#job-resume").await;
    b.text_contains("#job-state", "COMPLETED").await;
    let reason_hidden = b
        .client
        .execute(
            "return document.getElementById('job-reason').hidden;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(reason_hidden, json!(true), "a completed job has no reason");

    // The history: finished jobs with when they ended and how long they took.
    b.click("#nav-queue").await;
    b.click("#filters [data-filter=finished]").await;
    b.text_contains("#jobs", "COMPLETED (simulated, nothing drawn)")
        .await;
    b.text_contains("#jobs td:nth-child(5)", "·").await;
    b.screenshot("history").await;
    // The search box and the state menu narrow the list.
    set_field(&b, "#job-state-filter", "FAILED").await;
    b.text_contains("#jobs", "no jobs here").await;
    set_field(&b, "#job-state-filter", "COMPLETED").await;
    b.text_contains("#jobs", "two pens.svg").await;
    let search = b.client.find(Locator::Id("job-search")).await.unwrap();
    search.send_keys("no such drawing").await.unwrap();
    b.text_contains("#jobs", "no jobs here").await;
    search.clear().await.unwrap();
    search.send_keys("TWO PENS").await.unwrap();
    b.text_contains("#jobs", "two pens.svg").await;
    set_field(&b, "#job-state-filter", "").await;
    b.click("#filters [data-filter=waiting]").await;
    b.text_contains("#jobs", "no jobs here").await;
    b.close().await;
}

/// Sets the value of the form field `css` (an `<input>` or a `<select>`) as a user would, with
/// the `change` event the page listens for.
async fn set_field(b: &Browser, css: &str, value: &str) {
    b.until(
        &format!("{css} to take `{value}`"),
        &format!(
            "const e = document.querySelector({css:?}); if (!e) return null; e.value = {value:?}; \
             e.dispatchEvent(new Event('change', {{bubbles: true}})); return e.value === {value:?};"
        ),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_ui_sets_plot_settings_from_a_preset_saved_in_the_daemon() {
    let Some(b) = Browser::start(
        "web_ui_sets_plot_settings_from_a_preset_saved_in_the_daemon",
        1200,
        900,
    )
    .await
    else {
        return;
    };
    let env = Env::new();
    // The config is the source of defaults: its values are the form's placeholders.
    let (_d, port) = sim_daemon(&env, "  pen_pos_down: 42\n  speed_pendown: 21\n");
    b.client
        .goto(&format!("http://127.0.0.1:{port}/#/upload"))
        .await
        .unwrap();
    b.text_contains("#conn", "connected").await;
    b.until(
        "the daemon's defaults as placeholders",
        "return document.getElementById('opt-pen_pos_down').placeholder === '42' && \
         document.getElementById('opt-speed_pendown').placeholder === '21';",
    )
    .await;
    b.text_contains("#opt-model", "daemon's (").await;

    // A value out of range is refused with the config rule's message; nothing is saved.
    set_field(&b, "#opt-pen_pos_down", "35").await;
    set_field(&b, "#opt-speed_pendown", "500").await;
    set_field(&b, "#opt-reordering", "4").await;
    set_field(&b, "#preset-name", "fine liner").await;
    b.click("#preset-save").await;
    let refused = b.text_contains("#preset-error", "out of range").await;
    assert!(refused.contains("speed-pendown"), "{refused}");
    set_field(&b, "#opt-speed_pendown", "20").await;
    b.click("#preset-save").await;
    b.until(
        "the saved preset in the menu",
        "return document.getElementById('preset-select').value === 'fine liner';",
    )
    .await;

    // Saved in the daemon: a fresh page (another browser, as far as the daemon knows) lists it
    // and fills the form from it.
    b.client.refresh().await.unwrap();
    b.text_contains("#conn", "connected").await;
    b.text_contains("#preset-select", "fine liner").await;
    set_field(&b, "#preset-select", "fine liner").await;
    let filled = b
        .until(
            "the preset's values in the form",
            "const v = (id) => document.getElementById(id).value; \
             return v('opt-pen_pos_down') === '35' ? [v('opt-speed_pendown'), v('opt-reordering'), v('opt-accel')] : null;",
        )
        .await;
    assert_eq!(filled, json!(["20", "4", ""]));

    // Uploaded with the preset's settings: the job keeps them and its page shows them.
    b.client
        .execute(
            "const dt = new DataTransfer(); \
             dt.items.add(new File([arguments[0]], 'settings.svg', {type: 'image/svg+xml'})); \
             document.getElementById('drop').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true}));",
            vec![json!(TWO_PENS)],
        )
        .await
        .unwrap();
    b.click("#up-submit").await;
    b.click("#upload-results li[data-job] a").await;
    let shown = b.text_contains("#job-options", "pen down 35%").await;
    assert!(
        shown.contains("pen-down speed 20%") && shown.contains("file order exactly"),
        "{shown}"
    );
    assert!(!shown.contains("acceleration"), "{shown}");
    b.screenshot("job-settings").await;

    // Deleted from the menu.
    b.click("#nav-upload").await;
    b.text_contains("#preset-select", "fine liner").await;
    set_field(&b, "#preset-select", "fine liner").await;
    b.screenshot("upload-settings").await;
    b.click("#preset-delete").await;
    b.until(
        "the preset to leave the menu",
        "return ![...document.querySelectorAll('#preset-select option')].some((o) => o.value === 'fine liner');",
    )
    .await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_ui_tries_a_pen_height() {
    let Some(b) = Browser::start("web_ui_tries_a_pen_height", 1200, 900).await else {
        return;
    };
    let env = Env::new();
    let (_d, port) = sim_daemon(&env, "");
    b.client
        .goto(&format!("http://127.0.0.1:{port}/"))
        .await
        .unwrap();
    b.text_contains("#conn", "connected").await;
    b.text_contains("#device", "simulator").await;

    // The pen to a trial height, down then up: the simulator's servo goes there (the
    // reference's scale: round(9855 + 179.76 × percent), 1/12 µs).
    set_field(&b, "#height-position", "down").await;
    set_field(&b, "#height-percent", "45").await;
    b.click("#height-try").await;
    b.text_contains("#flash", "pen down at the trial height 45%")
        .await;
    let servo =
        "return fetch('/api/devices').then((r) => r.json()).then((v) => v.devices[0].pen_servo);";
    assert_eq!(b.client.execute(servo, vec![]).await.unwrap(), json!(17944));
    set_field(&b, "#height-position", "up").await;
    set_field(&b, "#height-percent", "150").await;
    b.click("#height-try").await;
    let refused = b.text_contains("#flash", "out of range").await;
    assert!(refused.contains("pen-pos-up"), "{refused}");
    set_field(&b, "#height-percent", "80").await;
    b.click("#height-try").await;
    b.text_contains("#flash", "pen up at the trial height 80%")
        .await;
    assert_eq!(b.client.execute(servo, vec![]).await.unwrap(), json!(24236));
    // The motor supply, read while idle (no plot ran).
    b.text_contains("#device-supply", "(enough)").await;
    // The messages in the corner would hide the panel in the picture.
    b.client
        .execute(
            "document.getElementById('flash').replaceChildren();",
            vec![],
        )
        .await
        .unwrap();
    b.screenshot("device-panel").await;

    b.close().await;
}

/// Issue 11 item 5: on a phone-sized page, Walk did nothing after Home (motors off) and Pen up,
/// while the same requests over the API walk. The messages of the two actions (Home's is long)
/// stacked up in the corner over the Walk button and took the tap: a message must never take a
/// click from the page under it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_ui_walks_after_home_and_pen_up_on_a_phone() {
    let Some(b) = Browser::start("web_ui_walks_after_home_and_pen_up_on_a_phone", 390, 844).await
    else {
        return;
    };
    let env = Env::new();
    let (d, port) = sim_daemon(&env, "");
    b.client
        .goto(&format!("http://127.0.0.1:{port}/"))
        .await
        .unwrap();
    b.text_contains("#conn", "connected").await;
    b.text_contains("#device", "simulator").await;
    b.click("#device button[data-action=motors-off]").await;
    b.text_contains("#flash", "motors off").await;
    // Home (the motors were off: the carriage's place becomes home), pen up, then a walk.
    b.click("#device button[data-action=home]").await;
    b.text_contains("#flash", "motors were off").await;
    b.click("#device button[data-action=pen-up]").await;
    b.until(
        "the pen-up message",
        "return [...document.querySelectorAll('#flash div')].some((d) => d.textContent === 'pen up');",
    )
    .await;
    for (id, mm) in [("walk-x", "10"), ("walk-y", "5")] {
        let input = b.client.find(Locator::Id(id)).await.unwrap();
        input.clear().await.unwrap();
        input.send_keys(mm).await.unwrap();
    }
    b.click("#device form.walk button").await;
    let said = b.text_contains("#flash", "walk").await;
    assert!(
        said.contains("walked to (10.0, 5.0)"),
        "{said}\ndaemon:\n{}",
        d.stderr()
    );
    b.text_contains("#device-position", "10.0, 5.0 mm").await;
    // The device panel's new controls (pen height test) fit a phone's width.
    let wider = b.wider_than_the_window().await;
    assert_eq!(wider, json!([]), "wider than a phone's screen (390 px)");
    b.close().await;
}

/// A named `auto` plotter that finds an AxiDraw keeps its id: the "AxiDraw connected" alert
/// must not take its panel away (the UI used to delete the plotter named by the alert's
/// `previous_device_id`, always set, until the next heartbeat brought it back). The board is
/// a simulated EBB served on a pseudo-terminal, announced as `plotty-fw-sim serve` does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_ui_keeps_a_named_plotter_that_found_its_axidraw() {
    let Some(b) = Browser::start(
        "web_ui_keeps_a_named_plotter_that_found_its_axidraw",
        1200,
        900,
    )
    .await
    else {
        return;
    };
    let env = Env::new();
    let ports = env.path("ports");
    std::fs::create_dir_all(&ports).unwrap();
    // A heartbeat far away: only the switch's own messages reach the page.
    env.write_default_config(
        "devices:\n  - name: left\n    type: auto\nwebsocket:\n  heartbeat_interval: 600\n",
    );
    let port = free_port();
    let mut c = env.cmd();
    c.env(plotty_fw_sim::announce::PORTS_DIR_ENV, &ports)
        .args(["daemon", "-h", "127.0.0.1", "-p", &port.to_string(), "-w"])
        .arg(env.workspace());
    let mut d = env.spawn(c);
    d.wait_ready();
    b.client
        .goto(&format!("http://127.0.0.1:{port}/"))
        .await
        .unwrap();
    b.text_contains("#conn", "connected").await;
    b.text_contains("#device", "left").await;
    // The AxiDraw is plugged in: the next look (every 5 s) switches to it.
    let link = env.path("ttyACM0");
    let server = plotty_fw_sim::pty::PtyServer::open(Some(&link)).unwrap();
    let stop = server.stop_handle();
    let _card =
        plotty_fw_sim::announce::PortCard::publish(&ports, &link, server.path(), "").unwrap();
    let served = std::thread::spawn(move || {
        let mut board = plotty_fw_sim::board::Board::new(plotty_fw_sim::FirmwareVersion::V3_0_3);
        server
            .run(&mut board, plotty_fw_sim::runner::ClockMode::Realtime)
            .unwrap();
    });
    b.text_contains("#alerts", "AxiDraw connected").await;
    let panel = b.text("#device").await;
    assert!(
        panel.contains("left") && panel.contains("axidraw"),
        "{panel}\ndaemon:\n{}",
        d.stderr()
    );
    b.close().await;
    drop(d);
    stop.stop();
    let _ = served.join();
}
