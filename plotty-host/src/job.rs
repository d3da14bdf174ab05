//! The job lifecycle: states, the events that move a job between them, why they happened, and the
//! one function that decides every transition.
//!
//! ```text
//! NEW → QUEUED → ANALYZED → OPTIMIZED → READY → ARMED → PLOTTING ⇄ PAUSED → COMPLETED | ABORTED | FAILED
//! ```
//!
//! Every state that is not terminal may go to `ABORTED` (a user's decision) or `FAILED` (an error).
//! `ARMED` may fall back to `READY` when its device goes away before the plot starts, and a job
//! found `ARMED` or `PLOTTING` after a crash becomes `PAUSED` (reason `interrupted`) so that it
//! resumes from its recorded point instead of being lost. Retrying a `FAILED` or `ABORTED` job
//! creates a new job at `QUEUED`; the old one keeps its history (see [`can_retry`]).
//!
//! [`transition`] is a single exhaustive `match` without wildcard arms: adding a state or an event
//! does not compile until every pair has been decided.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A job's id: 1–64 ASCII letters, digits, `-` or `_`, so that it is safe as a directory name
/// (`<workspace>/jobs/<id>`) and in URLs. New ids are 12 random hex digits.
#[derive(Clone, PartialEq, Eq, Hash, Debug, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct JobId(String);

/// Where a job is in its lifecycle (the names are the wire and database spelling).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum JobState {
    /// Stored, not yet accepted into the queue.
    New,
    /// Accepted, waiting for analysis.
    Queued,
    /// Layers, strokes and the first estimate are known.
    Analyzed,
    /// Stroke order fixed; the final estimate is known.
    Optimized,
    /// Waiting for a device (queue order: priority, then submission).
    Ready,
    /// A device is assigned and set up (pen up, motors on, position known).
    Armed,
    /// Drawing.
    Plotting,
    /// Stopped with the pen up; waits for `resume`.
    Paused,
    /// Finished drawing (terminal).
    Completed,
    /// Stopped by a user (terminal).
    Aborted,
    /// Stopped by an error, recorded with the job (terminal).
    Failed,
}

/// What happened to a job; [`transition`] turns (state, event) into the next state.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobEvent {
    /// Accept a new job into the queue (`NEW → QUEUED`).
    Enqueue,
    /// Analysis finished (`QUEUED → ANALYZED`).
    Analyzed,
    /// Optimisation finished (`ANALYZED → OPTIMIZED`).
    Optimized,
    /// The job may be given to a device (`OPTIMIZED → READY`).
    Prepared,
    /// A device was assigned and set up (`READY → ARMED`).
    Arm,
    /// The assigned device went away before the plot started (`ARMED → READY`).
    Disarm,
    /// Drawing started (`ARMED → PLOTTING`).
    Start,
    /// Stop at a safe point with the pen up (`PLOTTING → PAUSED`): a user, a pen change, a device
    /// problem that can be fixed.
    Pause,
    /// Continue drawing (`PAUSED → PLOTTING`).
    Resume,
    /// The daemon found the job running when it started: it had crashed or lost power
    /// (`ARMED | PLOTTING → PAUSED`).
    Interrupt,
    /// The last stroke is drawn (`PLOTTING → COMPLETED`).
    Complete,
    /// A user stopped the job (any non-terminal state `→ ABORTED`).
    Abort,
    /// An error stopped the job (any non-terminal state `→ FAILED`).
    Fail,
}

/// Why a transition happened; recorded with it and handed to hooks as `{reason}`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// A client submitted the job.
    Submitted,
    /// The daemon moved the job along its pipeline (analysis, optimisation, scheduling).
    Pipeline,
    /// A user asked for it (pause, resume, abort, cancel).
    User,
    /// A layer needs another pen: paused at the layer boundary with the pen up and parked.
    PenChange,
    /// The daemon stopped while the job was running (crash, power cut, kill).
    Interrupted,
    /// The device reported a problem or stopped answering.
    DeviceError,
    /// Any other error (bad input, internal failure); the message is recorded with the job.
    Error,
    /// The daemon is shutting down.
    Shutdown,
    /// This job is a retry of a failed or aborted one.
    Retry,
    /// The plot reached its end.
    Finished,
}

/// A transition that the lifecycle does not allow.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum TransitionError {
    /// The job already reached a final state.
    #[error(
        "the job is {state}, which is final: nothing can {event} it any more (retry creates a new job)"
    )]
    Terminal {
        /// The final state.
        state: JobState,
        /// The event that was refused.
        event: JobEvent,
    },
    /// The event does not apply in this state.
    #[error("cannot {event} a job that is {from}{}", hint(*event))]
    NotAllowed {
        /// The job's current state.
        from: JobState,
        /// The event that was refused.
        event: JobEvent,
    },
}

/// The next state of a job in `from` when `event` happens, or why that cannot happen.
///
/// This is the whole transition table; everything that changes a job's state goes through it.
pub fn transition(from: JobState, event: JobEvent) -> Result<JobState, TransitionError> {
    use JobEvent as E;
    use JobState as S;
    let not_allowed = Err(TransitionError::NotAllowed { from, event });
    match (from, event) {
        // Final states accept nothing.
        (
            S::Completed | S::Aborted | S::Failed,
            E::Enqueue
            | E::Analyzed
            | E::Optimized
            | E::Prepared
            | E::Arm
            | E::Disarm
            | E::Start
            | E::Pause
            | E::Resume
            | E::Interrupt
            | E::Complete
            | E::Abort
            | E::Fail,
        ) => Err(TransitionError::Terminal { state: from, event }),

        // A user may stop, and an error may end, any job that is still alive.
        (
            S::New
            | S::Queued
            | S::Analyzed
            | S::Optimized
            | S::Ready
            | S::Armed
            | S::Plotting
            | S::Paused,
            E::Abort,
        ) => Ok(S::Aborted),
        (
            S::New
            | S::Queued
            | S::Analyzed
            | S::Optimized
            | S::Ready
            | S::Armed
            | S::Plotting
            | S::Paused,
            E::Fail,
        ) => Ok(S::Failed),

        // The pipeline, one step at a time.
        (S::New, E::Enqueue) => Ok(S::Queued),
        (S::Queued, E::Analyzed) => Ok(S::Analyzed),
        (S::Analyzed, E::Optimized) => Ok(S::Optimized),
        (S::Optimized, E::Prepared) => Ok(S::Ready),
        (S::Ready, E::Arm) => Ok(S::Armed),
        (S::Armed, E::Disarm) => Ok(S::Ready),
        (S::Armed, E::Start) => Ok(S::Plotting),
        (S::Plotting, E::Pause) => Ok(S::Paused),
        (S::Paused, E::Resume) => Ok(S::Plotting),
        (S::Armed | S::Plotting, E::Interrupt) => Ok(S::Paused),
        (S::Plotting, E::Complete) => Ok(S::Completed),

        // Every other pipeline event in a state where it does not apply.
        (
            S::Queued | S::Analyzed | S::Optimized | S::Ready | S::Armed | S::Plotting | S::Paused,
            E::Enqueue,
        )
        | (
            S::New | S::Analyzed | S::Optimized | S::Ready | S::Armed | S::Plotting | S::Paused,
            E::Analyzed,
        )
        | (
            S::New | S::Queued | S::Optimized | S::Ready | S::Armed | S::Plotting | S::Paused,
            E::Optimized,
        )
        | (
            S::New | S::Queued | S::Analyzed | S::Ready | S::Armed | S::Plotting | S::Paused,
            E::Prepared,
        )
        | (
            S::New | S::Queued | S::Analyzed | S::Optimized | S::Armed | S::Plotting | S::Paused,
            E::Arm,
        )
        | (
            S::New | S::Queued | S::Analyzed | S::Optimized | S::Ready | S::Plotting | S::Paused,
            E::Disarm | E::Start,
        )
        | (
            S::New | S::Queued | S::Analyzed | S::Optimized | S::Ready | S::Armed | S::Paused,
            E::Pause | E::Complete,
        )
        | (
            S::New | S::Queued | S::Analyzed | S::Optimized | S::Ready | S::Armed | S::Plotting,
            E::Resume,
        )
        | (S::New | S::Queued | S::Analyzed | S::Optimized | S::Ready | S::Paused, E::Interrupt) => {
            not_allowed
        }
    }
}

/// Whether a job in `state` may be retried (as a new job; see the module doc).
pub fn can_retry(state: JobState) -> bool {
    matches!(state, JobState::Failed | JobState::Aborted)
}

/// A hint appended to a refused transition, naming the state the event needs.
fn hint(event: JobEvent) -> &'static str {
    match event {
        JobEvent::Enqueue => " (only NEW jobs are enqueued)",
        JobEvent::Analyzed => " (analysis applies to QUEUED jobs)",
        JobEvent::Optimized => " (optimisation applies to ANALYZED jobs)",
        JobEvent::Prepared => " (only OPTIMIZED jobs become READY)",
        JobEvent::Arm => " (only READY jobs are given a device)",
        JobEvent::Disarm | JobEvent::Start => " (the job must be ARMED)",
        JobEvent::Pause | JobEvent::Complete => " (the job must be PLOTTING)",
        JobEvent::Resume => " (only PAUSED jobs resume)",
        JobEvent::Interrupt => " (only ARMED or PLOTTING jobs are interrupted)",
        JobEvent::Abort | JobEvent::Fail => "",
    }
}

impl JobId {
    /// Longest accepted id.
    pub const MAX_LEN: usize = 64;

    /// A fresh random id (48 bits, 12 hex digits).
    pub fn generate() -> Self {
        Self(format!("{:012x}", fastrand::u64(..1 << 48)))
    }

    /// Checks an id that came from outside (a URL, a message, a file name).
    pub fn parse(s: &str) -> Result<Self, InvalidJobId> {
        let ok = !s.is_empty()
            && s.len() <= Self::MAX_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidJobId(s.chars().take(80).collect()))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl JobState {
    /// Every state, in lifecycle order.
    pub const ALL: [Self; 11] = [
        Self::New,
        Self::Queued,
        Self::Analyzed,
        Self::Optimized,
        Self::Ready,
        Self::Armed,
        Self::Plotting,
        Self::Paused,
        Self::Completed,
        Self::Aborted,
        Self::Failed,
    ];

    /// The wire and database spelling (`"PLOTTING"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::New => "NEW",
            Self::Queued => "QUEUED",
            Self::Analyzed => "ANALYZED",
            Self::Optimized => "OPTIMIZED",
            Self::Ready => "READY",
            Self::Armed => "ARMED",
            Self::Plotting => "PLOTTING",
            Self::Paused => "PAUSED",
            Self::Completed => "COMPLETED",
            Self::Aborted => "ABORTED",
            Self::Failed => "FAILED",
        }
    }

    /// True for `COMPLETED`, `ABORTED` and `FAILED`.
    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Aborted | Self::Failed)
    }

    /// True while a device is assigned to the job (`ARMED`, `PLOTTING`, `PAUSED`).
    pub const fn holds_device(self) -> bool {
        matches!(self, Self::Armed | Self::Plotting | Self::Paused)
    }
}

impl JobEvent {
    /// Every event.
    pub const ALL: [Self; 13] = [
        Self::Enqueue,
        Self::Analyzed,
        Self::Optimized,
        Self::Prepared,
        Self::Arm,
        Self::Disarm,
        Self::Start,
        Self::Pause,
        Self::Resume,
        Self::Interrupt,
        Self::Complete,
        Self::Abort,
        Self::Fail,
    ];

    /// A verb for messages ("cannot pause a job that is READY").
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Enqueue => "enqueue",
            Self::Analyzed => "mark analysed",
            Self::Optimized => "mark optimised",
            Self::Prepared => "mark ready",
            Self::Arm => "arm",
            Self::Disarm => "disarm",
            Self::Start => "start",
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Interrupt => "interrupt",
            Self::Complete => "complete",
            Self::Abort => "abort",
            Self::Fail => "fail",
        }
    }
}

impl Reason {
    /// Every reason.
    pub const ALL: [Self; 10] = [
        Self::Submitted,
        Self::Pipeline,
        Self::User,
        Self::PenChange,
        Self::Interrupted,
        Self::DeviceError,
        Self::Error,
        Self::Shutdown,
        Self::Retry,
        Self::Finished,
    ];

    /// The wire spelling (`"pen_change"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Submitted => "submitted",
            Self::Pipeline => "pipeline",
            Self::User => "user",
            Self::PenChange => "pen_change",
            Self::Interrupted => "interrupted",
            Self::DeviceError => "device_error",
            Self::Error => "error",
            Self::Shutdown => "shutdown",
            Self::Retry => "retry",
            Self::Finished => "finished",
        }
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for JobId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for JobId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobState {
    type Err = UnknownName;

    /// Parses a state name, ignoring case (`"plotting"`, `"PLOTTING"`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownName(s.to_owned()))
    }
}

impl fmt::Display for JobEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Reason {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownName(s.to_owned()))
    }
}

/// A job id that is empty, too long or has characters other than letters, digits, `-`, `_`.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("`{0}` is not a job id (1-64 letters, digits, `-` or `_`)")]
pub struct InvalidJobId(pub String);

/// A state or reason name that is not one of ours.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("unknown name `{0}`")]
pub struct UnknownName(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    use JobEvent as E;
    use JobState as S;

    /// The allowed transitions, written out independently of `transition` (from jobs.md).
    fn expected(from: S, event: E) -> Option<S> {
        let table: &[(S, E, S)] = &[
            (S::New, E::Enqueue, S::Queued),
            (S::Queued, E::Analyzed, S::Analyzed),
            (S::Analyzed, E::Optimized, S::Optimized),
            (S::Optimized, E::Prepared, S::Ready),
            (S::Ready, E::Arm, S::Armed),
            (S::Armed, E::Disarm, S::Ready),
            (S::Armed, E::Start, S::Plotting),
            (S::Armed, E::Interrupt, S::Paused),
            (S::Plotting, E::Pause, S::Paused),
            (S::Plotting, E::Interrupt, S::Paused),
            (S::Plotting, E::Complete, S::Completed),
            (S::Paused, E::Resume, S::Plotting),
        ];
        if let Some(&(_, _, to)) = table.iter().find(|(f, e, _)| *f == from && *e == event) {
            return Some(to);
        }
        match (from.is_terminal(), event) {
            (false, E::Abort) => Some(S::Aborted),
            (false, E::Fail) => Some(S::Failed),
            _ => None,
        }
    }

    #[test]
    fn every_state_event_pair_matches_the_table() {
        let mut allowed = 0;
        for from in S::ALL {
            for event in E::ALL {
                let got = transition(from, event);
                match (expected(from, event), got) {
                    (Some(want), Ok(to)) => {
                        assert_eq!(to, want, "{from} + {event}");
                        allowed += 1;
                    }
                    (None, Err(TransitionError::Terminal { state, .. })) => {
                        assert!(from.is_terminal(), "{from} + {event}: terminal error");
                        assert_eq!(state, from);
                    }
                    (None, Err(TransitionError::NotAllowed { from: f, event: e })) => {
                        assert!(!from.is_terminal(), "{from} + {event}");
                        assert_eq!((f, e), (from, event));
                    }
                    (want, got) => panic!("{from} + {event}: expected {want:?}, got {got:?}"),
                }
            }
        }
        // 12 pipeline edges + abort and fail from each of the 8 live states.
        assert_eq!(allowed, 12 + 2 * 8);
    }

    #[test]
    fn happy_path_reaches_completed() {
        let path = [
            (E::Enqueue, S::Queued),
            (E::Analyzed, S::Analyzed),
            (E::Optimized, S::Optimized),
            (E::Prepared, S::Ready),
            (E::Arm, S::Armed),
            (E::Start, S::Plotting),
            (E::Pause, S::Paused),
            (E::Resume, S::Plotting),
            (E::Complete, S::Completed),
        ];
        let mut state = S::New;
        for (event, want) in path {
            state = transition(state, event).unwrap();
            assert_eq!(state, want);
        }
        assert!(state.is_terminal());
    }

    #[test]
    fn retry_only_from_failed_or_aborted() {
        for s in S::ALL {
            assert_eq!(can_retry(s), matches!(s, S::Failed | S::Aborted), "{s}");
        }
    }

    #[test]
    fn names_round_trip() {
        for s in S::ALL {
            assert_eq!(s.as_str().parse::<S>().unwrap(), s);
            assert_eq!(s.as_str().to_lowercase().parse::<S>().unwrap(), s);
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
        }
        for r in Reason::ALL {
            assert_eq!(r.as_str().parse::<Reason>().unwrap(), r);
            assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{r}\""));
        }
        assert!("RUNNING".parse::<S>().is_err());
    }

    #[test]
    fn job_ids_are_safe_path_components() {
        let id = JobId::generate();
        assert_eq!(id.as_str().len(), 12);
        assert_eq!(JobId::parse(id.as_str()).unwrap(), id);
        for bad in ["", "..", "a/b", "a b", "x;rm", &"a".repeat(65), "é"] {
            assert!(JobId::parse(bad).is_err(), "{bad:?}");
        }
        assert!(JobId::parse("job-1_A").is_ok());
        assert!(serde_json::from_str::<JobId>("\"../x\"").is_err());
    }

    #[test]
    fn errors_say_what_to_do() {
        let e = transition(S::Ready, E::Pause).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot pause a job that is READY (the job must be PLOTTING)"
        );
        let e = transition(S::Completed, E::Abort).unwrap_err();
        assert!(e.to_string().contains("final"), "{e}");
    }
}
