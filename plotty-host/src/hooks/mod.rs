//! Hooks: actions run when a job enters a state, configured per state in the `hooks` section.
//!
//! Every action gets the transition's values as environment variables: `PLOTTY_JOB_ID`,
//! `PLOTTY_JOB_NAME`, `PLOTTY_JOB_PATH`, `PLOTTY_STATE`, `PLOTTY_FROM_STATE`, `PLOTTY_REASON`,
//! `PLOTTY_ERROR`, `PLOTTY_WORKSPACE` ([`template::Var`]). No value is ever pasted into shell text.
//!
//! - `command: ["prog", "arg", "{job_name}"]`: the program run directly, no shell; `{job_id}`,
//!   `{job_name}`, `{job_path}`, `{state}`, `{from_state}`, `{reason}`, `{error}`, `{workspace}` in
//!   an argument are replaced by the raw value, each item alone, so every item stays exactly one
//!   argument ([`template::Argv`]). Timeout 30 s.
//! - `command: "…"`: run with `/bin/sh -c` exactly as written; it reads values as
//!   `"$PLOTTY_JOB_NAME"`. A `{variable}` placeholder in it is refused at config load with the
//!   command rewritten both ways ([`shell`]). Timeout 30 s.
//! - `script`: a path run directly, no shell, no arguments, the values in the environment.
//!   Timeout 60 s. plotty never changes its permissions.
//! - `webhook`: `POST` of `{"job_id", "event": "state_transition", "from_state", "to_state",
//!   "context"}` to an `http://` URL ([`webhook`]); a JSON body, never shell text. Timeout 10 s.
//!
//! Each action may set its own `timeout` (seconds). Hooks run after the transition is recorded,
//! in their own task ([`HookRunner::spawn`]), one action after another; a slow or failing hook
//! never delays a transition, a plot or a broadcast. Each action gives a [`HookResult`]; failures
//! also become [`Alert`]s.

pub mod exec;
#[cfg(test)]
mod injection_tests;
pub mod shell;
pub mod template;
pub mod webhook;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

use crate::events::{Alert, Severity};
use crate::job::JobState;
use crate::store::StateChange;
use shell::ShellCommand;
use template::{Argv, Values};
use webhook::WebhookUrl;

/// Default deadline of a `command` action.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// Default deadline of a `script` action.
pub const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);
/// Default deadline of a `webhook` action.
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// The shell that runs `command` strings.
pub const SHELL: &str = "/bin/sh";

/// What a hook does.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Action {
    /// A shell string run by `shell -c` as written; values only in the environment.
    Shell {
        /// The interpreter ([`SHELL`] unless changed with [`Hook::with_shell`]).
        shell: PathBuf,
        /// The checked string.
        command: ShellCommand,
    },
    /// A program and its arguments, each substituted alone, run without a shell.
    Exec(Argv),
    /// An executable file, run without a shell.
    Script(PathBuf),
    /// An `http://` URL to post to.
    Webhook(WebhookUrl),
}

/// Why a hook was refused: what is wrong and, when there is more to say, how to fix it.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("{message}")]
pub struct HookError {
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub fix: Option<String>,
}

impl From<String> for HookError {
    fn from(message: String) -> Self {
        Self { message, fix: None }
    }
}

/// One configured action with its deadline.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Hook {
    /// What it does.
    pub action: Action,
    /// When it is killed or abandoned.
    pub timeout: Duration,
}

/// The validated hooks of every state.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct HookSet {
    by_state: BTreeMap<JobState, Vec<Hook>>,
}

/// The job and transition a hook runs for.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct HookContext {
    /// The job.
    pub job_id: String,
    /// Its name.
    pub job_name: String,
    /// The state left (`None` for a new job).
    pub from_state: Option<JobState>,
    /// The state entered.
    pub state: JobState,
    /// Why.
    pub reason: String,
    /// The error, if any.
    pub error: Option<String>,
    /// The daemon's workspace.
    pub workspace: PathBuf,
}

/// The record of one action, as written to the journal (`hooks_executed.metadata.results`).
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct HookResult {
    /// `command`, `script` or `webhook`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The shell string, the list as run (JSON), the script path or the URL.
    pub target: String,
    /// Exit code 0 or HTTP 2xx, within the deadline.
    pub success: bool,
    /// Exit code of a command or script.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Signal that killed a command or script.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// HTTP status of a webhook.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// Start of stdout, or of the webhook's answer.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stdout: String,
    /// Start of stderr.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stderr: String,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
    /// What went wrong, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The results of one state's hooks for one transition.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct HooksReport {
    /// The job.
    pub job_id: String,
    /// The state left.
    pub from_state: Option<JobState>,
    /// The state whose hooks ran.
    pub state: JobState,
    /// One result per action, in order.
    pub results: Vec<HookResult>,
}

/// Runs hooks in their own tasks; its hook set can be swapped on a config reload.
#[derive(Clone)]
pub struct HookRunner {
    hooks: Arc<RwLock<Arc<HookSet>>>,
    tracker: TaskTracker,
}

impl Hook {
    /// A `command` given as a string, run by [`SHELL`]; refused when it holds a `{variable}`
    /// placeholder, with the command rewritten both ways in the error's fix.
    pub fn command(text: &str, timeout: Option<Duration>) -> Result<Self, HookError> {
        let command = ShellCommand::parse(text).map_err(|e| HookError {
            message: e.message(),
            fix: Some(e.fix()),
        })?;
        Ok(Self {
            action: Action::Shell {
                shell: PathBuf::from(SHELL),
                command,
            },
            timeout: timeout.unwrap_or(COMMAND_TIMEOUT),
        })
    }

    /// A `command` given as a list: the program, then arguments with `{variable}` placeholders.
    pub fn command_argv(items: &[String], timeout: Option<Duration>) -> Result<Self, HookError> {
        let argv = Argv::parse(items).map_err(|e| e.to_string())?;
        Ok(Self {
            action: Action::Exec(argv),
            timeout: timeout.unwrap_or(COMMAND_TIMEOUT),
        })
    }

    /// The same hook with shell strings run by `shell` instead of [`SHELL`] (tests run each one
    /// under dash and bash); other actions are unchanged.
    pub fn with_shell(mut self, shell: &Path) -> Self {
        if let Action::Shell { shell: s, .. } = &mut self.action {
            *s = shell.to_path_buf();
        }
        self
    }

    /// A `script` action. `path` must be absolute, an existing regular file, and executable.
    pub fn script(path: &Path, timeout: Option<Duration>) -> Result<Self, HookError> {
        use std::os::unix::fs::PermissionsExt;
        let shown = path.display();
        if !path.is_absolute() {
            return Err(format!("script `{shown}` must be an absolute path").into());
        }
        let meta = std::fs::metadata(path).map_err(|e| format!("script `{shown}`: {e}"))?;
        if !meta.is_file() {
            return Err(format!("script `{shown}` is not a file").into());
        }
        if meta.permissions().mode() & 0o111 == 0 {
            return Err(format!(
                "script `{shown}` is not executable: `chmod +x {shown}` (plotty never changes its \
                 permissions), or use `command: [\"sh\", \"{shown}\"]` instead"
            )
            .into());
        }
        Ok(Self {
            action: Action::Script(path.to_path_buf()),
            timeout: timeout.unwrap_or(SCRIPT_TIMEOUT),
        })
    }

    /// A `webhook` action (`http://` only; see [`webhook`]).
    pub fn webhook(url: &str, timeout: Option<Duration>) -> Result<Self, HookError> {
        Ok(Self {
            action: Action::Webhook(WebhookUrl::parse(url)?),
            timeout: timeout.unwrap_or(WEBHOOK_TIMEOUT),
        })
    }

    /// `command`, `script` or `webhook`.
    pub fn kind(&self) -> &'static str {
        match self.action {
            Action::Shell { .. } | Action::Exec(_) => "command",
            Action::Script(_) => "script",
            Action::Webhook(_) => "webhook",
        }
    }

    /// The command (a string, or a list as JSON), script path or URL as configured.
    pub fn target(&self) -> String {
        match &self.action {
            Action::Shell { command, .. } => command.source().to_owned(),
            Action::Exec(argv) => argv.to_string(),
            Action::Script(p) => p.display().to_string(),
            Action::Webhook(u) => u.as_str().to_owned(),
        }
    }

    /// Runs the action for `ctx` and records how it went. Never fails: problems are in the result.
    pub async fn run(&self, ctx: &HookContext) -> HookResult {
        let values = ctx.values();
        let started = Instant::now();
        let mut result = HookResult {
            kind: self.kind(),
            target: self.target(),
            success: false,
            exit_code: None,
            signal: None,
            http_status: None,
            stdout: String::new(),
            stderr: String::new(),
            duration_ms: 0,
            error: None,
        };
        match &self.action {
            Action::Shell { shell, command } => {
                let r = exec::run(
                    shell,
                    &["-c", command.source()],
                    &values,
                    &ctx.workspace,
                    self.timeout,
                )
                .await;
                self.process_result(&mut result, r);
            }
            Action::Exec(argv) => {
                let line = argv.render(&values);
                // The list as run, JSON-encoded: unambiguous, and never shell text to paste.
                result.target = template::json_list(&line);
                let r = match line.split_first() {
                    Some((program, args)) => {
                        exec::run(
                            Path::new(program),
                            args,
                            &values,
                            &ctx.workspace,
                            self.timeout,
                        )
                        .await
                    }
                    None => Err(std::io::Error::other("empty command")),
                };
                self.process_result(&mut result, r);
            }
            Action::Script(path) => {
                let no_args: [&str; 0] = [];
                let r = exec::run(path, &no_args, &values, &ctx.workspace, self.timeout).await;
                self.process_result(&mut result, r);
            }
            Action::Webhook(url) => {
                let body = ctx.webhook_body().to_string();
                match webhook::post(url, body.as_bytes(), self.timeout).await {
                    Ok(resp) => {
                        result.http_status = Some(resp.status);
                        result.stdout = resp.body_excerpt;
                        result.success = (200..300).contains(&resp.status);
                        if !result.success {
                            result.error =
                                Some(format!("the server answered HTTP {}", resp.status));
                        }
                    }
                    Err(e) => result.error = Some(e),
                }
            }
        }
        result.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        result
    }

    fn process_result(&self, result: &mut HookResult, r: std::io::Result<exec::ProcessOutcome>) {
        match r {
            Ok(o) => {
                result.exit_code = o.exit_code;
                result.signal = o.signal;
                result.stdout = o.stdout;
                result.stderr = o.stderr;
                result.success = o.exit_code == Some(0) && !o.timed_out;
                result.error = if o.timed_out {
                    Some(format!(
                        "timed out after {} s and was killed",
                        self.timeout.as_secs_f64()
                    ))
                } else if let Some(code) = o.exit_code.filter(|c| *c != 0) {
                    Some(format!("exited with code {code}"))
                } else {
                    o.signal.map(|s| format!("killed by signal {s}"))
                };
            }
            Err(e) => result.error = Some(format!("cannot start: {e}")),
        }
    }
}

impl HookSet {
    /// A set from hooks per state.
    pub fn new(by_state: BTreeMap<JobState, Vec<Hook>>) -> Self {
        let by_state = by_state
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .collect();
        Self { by_state }
    }

    /// The hooks of `state` (empty when none).
    pub fn for_state(&self, state: JobState) -> &[Hook] {
        self.by_state.get(&state).map_or(&[], Vec::as_slice)
    }

    /// Number of actions over all states.
    pub fn len(&self) -> usize {
        self.by_state.values().map(Vec::len).sum()
    }

    /// True when no state has hooks.
    pub fn is_empty(&self) -> bool {
        self.by_state.is_empty()
    }

    /// States with hooks and their actions.
    pub fn iter(&self) -> impl Iterator<Item = (JobState, &[Hook])> {
        self.by_state.iter().map(|(s, v)| (*s, v.as_slice()))
    }
}

impl HookContext {
    /// The context of a recorded state change.
    pub fn from_change(change: &StateChange, workspace: &Path) -> Self {
        Self {
            job_id: change.job_id.to_string(),
            job_name: change.job_name.clone(),
            from_state: change.from,
            state: change.to,
            reason: change.reason.to_string(),
            error: change.error.clone(),
            workspace: workspace.to_path_buf(),
        }
    }

    /// A made-up job entering `state`, for trying hooks out (`POST /api/hooks/test`).
    pub fn sample(state: JobState, workspace: &Path) -> Self {
        let failed = state == JobState::Failed;
        Self {
            job_id: "hooktest0000".into(),
            job_name: "hook test (sample job)".into(),
            from_state: None,
            state,
            reason: if failed { "error" } else { "user" }.into(),
            error: failed.then(|| "sample error for a hook test".into()),
            workspace: workspace.to_path_buf(),
        }
    }

    /// `<workspace>/jobs/<id>`.
    pub fn job_path(&self) -> PathBuf {
        self.workspace.join("jobs").join(&self.job_id)
    }

    /// The template and environment values.
    pub fn values(&self) -> Values {
        Values {
            job_id: self.job_id.clone(),
            job_name: self.job_name.clone(),
            job_path: self.job_path().display().to_string(),
            state: self.state.to_string(),
            from_state: self.from_state.map(|s| s.to_string()).unwrap_or_default(),
            reason: self.reason.clone(),
            error: self.error.clone().unwrap_or_default(),
            workspace: self.workspace.display().to_string(),
        }
    }

    /// The JSON posted by webhooks.
    pub fn webhook_body(&self) -> Value {
        let v = self.values();
        json!({
            "job_id": self.job_id,
            "event": "state_transition",
            "from_state": self.from_state.map(JobState::as_str),
            "to_state": self.state.as_str(),
            "context": {
                "job_id": v.job_id,
                "job_name": v.job_name,
                "job_path": v.job_path,
                "state": v.state,
                "from_state": v.from_state,
                "reason": v.reason,
                "error": v.error,
                "workspace": v.workspace,
            },
        })
    }
}

impl HooksReport {
    /// True when every action succeeded.
    pub fn all_succeeded(&self) -> bool {
        self.results.iter().all(|r| r.success)
    }

    /// The results as JSON (journal metadata).
    pub fn results_json(&self) -> Value {
        serde_json::to_value(&self.results).unwrap_or(Value::Null)
    }

    /// One warning alert per failed action.
    pub fn alerts(&self) -> Vec<Alert> {
        self.results
            .iter()
            .filter(|r| !r.success)
            .map(|r| Alert {
                severity: Severity::Warning,
                title: "Hook failed".into(),
                message: format!(
                    "{} hook for job {} entering {} failed: {}",
                    r.kind,
                    self.job_id,
                    self.state,
                    r.error.as_deref().unwrap_or("unknown error")
                ),
                source: "hooks".into(),
                metadata: json!({
                    "job_id": self.job_id,
                    "state": self.state.as_str(),
                    "result": r,
                }),
            })
            .collect()
    }
}

/// Runs `hooks` one after another for `ctx`.
pub async fn run_all(hooks: &[Hook], ctx: &HookContext) -> HooksReport {
    let mut results = Vec::with_capacity(hooks.len());
    for hook in hooks {
        results.push(hook.run(ctx).await);
    }
    HooksReport {
        job_id: ctx.job_id.clone(),
        from_state: ctx.from_state,
        state: ctx.state,
        results,
    }
}

impl HookRunner {
    /// A runner for `hooks` whose tasks are tracked by `tracker` (shutdown waits for them).
    pub fn new(hooks: HookSet, tracker: TaskTracker) -> Self {
        Self {
            hooks: Arc::new(RwLock::new(Arc::new(hooks))),
            tracker,
        }
    }

    /// The tracker its tasks run on.
    pub fn tracker(&self) -> &TaskTracker {
        &self.tracker
    }

    /// The current hook set.
    pub fn hooks(&self) -> Arc<HookSet> {
        match self.hooks.read() {
            Ok(g) => Arc::clone(&g),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Replaces the hook set (config reload); running hooks finish with the old one.
    pub fn replace(&self, hooks: HookSet) {
        let new = Arc::new(hooks);
        match self.hooks.write() {
            Ok(mut g) => *g = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
    }

    /// Starts the hooks of `ctx.state` in their own task; `None` when the state has none.
    pub fn spawn(&self, ctx: HookContext) -> Option<JoinHandle<HooksReport>> {
        let set = self.hooks();
        if set.for_state(ctx.state).is_empty() {
            return None;
        }
        Some(
            self.tracker
                .spawn(async move { run_all(set.for_state(ctx.state), &ctx).await }),
        )
    }

    /// Runs the hooks of `state` against a sample job now (`POST /api/hooks/test`).
    pub async fn test(&self, state: JobState, workspace: &Path) -> HooksReport {
        let set = self.hooks();
        run_all(set.for_state(state), &HookContext::sample(state, workspace)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(dir: &Path, name: &str) -> HookContext {
        HookContext {
            job_id: "j1".into(),
            job_name: name.into(),
            from_state: Some(JobState::Plotting),
            state: JobState::Completed,
            reason: "finished".into(),
            error: None,
            workspace: dir.to_path_buf(),
        }
    }

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[tokio::test]
    async fn a_list_runs_without_a_shell_and_records_what_ran() {
        let dir = tempfile::tempdir().unwrap();
        let hook =
            Hook::command_argv(&list(&["printf", "%s|%s", "{job_name}", "{state}"]), None).unwrap();
        assert_eq!(
            hook.target(),
            r#"["printf", "%s|%s", "{job_name}", "{state}"]"#
        );
        let r = hook.run(&ctx(dir.path(), "a b; $(c)")).await;
        assert!(r.success, "{r:?}");
        assert_eq!(r.stdout, "a b; $(c)|COMPLETED");
        assert_eq!(r.target, r#"["printf", "%s|%s", "a b; $(c)", "COMPLETED"]"#);
        let r = Hook::command_argv(&list(&["/nonexistent/program"]), None)
            .unwrap()
            .run(&ctx(dir.path(), "n"))
            .await;
        assert!(!r.success && r.error.unwrap().starts_with("cannot start"));
    }

    #[tokio::test]
    async fn a_shell_string_runs_as_written_with_the_values_in_its_environment() {
        let dir = tempfile::tempdir().unwrap();
        let hook = Hook::command(
            "printf '%s|%s' \"$PLOTTY_JOB_NAME\" \"$PLOTTY_REASON\"",
            None,
        )
        .unwrap();
        let r = hook.run(&ctx(dir.path(), "it's")).await;
        assert!(r.success, "{r:?}");
        assert_eq!(r.stdout, "it's|finished");
        assert_eq!(r.target, hook.target(), "no value pasted into the string");
        let e = Hook::command("echo {job_name}", None).unwrap_err();
        assert!(e.fix.unwrap().contains("\"$PLOTTY_JOB_NAME\""));
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_command_is_killed_at_its_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let hook = Hook::command("sleep 600", Some(Duration::from_secs(2))).unwrap();
        let r = hook.run(&ctx(dir.path(), "n")).await;
        assert!(!r.success);
        assert_eq!(r.signal, Some(9));
        assert!(r.error.unwrap().contains("timed out after 2 s"));
    }

    #[tokio::test]
    async fn scripts_get_the_variables_as_environment_and_no_shell() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("hook.sh");
        std::fs::write(&script, "#!/bin/sh\nprintf '%s|%s|%s' \"$PLOTTY_JOB_NAME\" \"$PLOTTY_STATE\" \"$PLOTTY_FROM_STATE\"\n").unwrap();
        let err = Hook::script(&script, None).unwrap_err().message;
        assert!(err.contains("chmod +x"), "{err}");
        assert_eq!(
            std::fs::metadata(&script).unwrap().permissions().mode() & 0o777,
            0o644,
            "never chmodded"
        );
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let hook = Hook::script(&script, None).unwrap();
        let r = hook.run(&ctx(dir.path(), "a b; c")).await;
        assert!(r.success, "{r:?}");
        assert_eq!(r.stdout, "a b; c|COMPLETED|PLOTTING");
        assert!(Hook::script(Path::new("relative.sh"), None).is_err());
        assert!(Hook::script(&dir.path().join("missing"), None).is_err());
    }

    #[tokio::test]
    async fn failures_become_alerts_and_reports_serialize() {
        let dir = tempfile::tempdir().unwrap();
        let hooks = vec![
            Hook::command("exit 0", None).unwrap(),
            Hook::command("echo oops >&2; exit 7", None).unwrap(),
        ];
        let report = run_all(&hooks, &ctx(dir.path(), "n")).await;
        assert!(!report.all_succeeded());
        let alerts = report.alerts();
        assert_eq!(alerts.len(), 1);
        assert!(
            alerts[0].message.contains("exited with code 7"),
            "{}",
            alerts[0].message
        );
        let json = report.results_json();
        assert_eq!(json[1]["exit_code"], 7);
        assert_eq!(json[1]["stderr"], "oops\n");
        assert_eq!(json[0]["type"], "command");
    }

    #[tokio::test]
    async fn runner_skips_states_without_hooks_and_tests_with_a_sample() {
        let dir = tempfile::tempdir().unwrap();
        let mut map = BTreeMap::new();
        map.insert(
            JobState::Failed,
            vec![Hook::command_argv(&list(&["echo", "{error}"]), None).unwrap()],
        );
        let runner = HookRunner::new(HookSet::new(map), TaskTracker::new());
        let c = ctx(dir.path(), "n");
        assert!(runner.spawn(c.clone()).is_none());
        let report = runner.test(JobState::Failed, dir.path()).await;
        assert_eq!(report.results[0].stdout, "sample error for a hook test\n");
        let failed = HookContext {
            state: JobState::Failed,
            ..c
        };
        let report = runner.spawn(failed).unwrap().await.unwrap();
        assert!(report.all_succeeded());
    }
}
