//! The reports of `plotty check config|database|device`: every thing checked, one line each, with
//! a fix for each problem. The checks themselves live next to what they check
//! ([`crate::settings::check`], [`crate::store::check`], [`crate::devices::check`]).

use std::fmt;
use std::io::{self, Write};

/// How one check came out.
#[derive(Clone, Copy, PartialEq, Eq, Debug, PartialOrd, Ord)]
pub enum Status {
    /// Fine.
    Ok,
    /// Works, but worth knowing (a fallback, a pending migration, an unused key).
    Warning,
    /// Needs fixing; the command exits non-zero.
    Problem,
}

/// One line of a report.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Item {
    /// How it came out.
    pub status: Status,
    /// What was checked ("config file", "schema version").
    pub what: String,
    /// What was found.
    pub detail: String,
    /// What to do about it (always present for problems).
    pub fix: Option<String>,
}

/// The outcome of one `plotty check` command.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Report {
    /// What was checked ("configuration", "database", "device").
    pub subject: String,
    /// Every check, in the order it ran.
    pub items: Vec<Item>,
}

impl Report {
    /// An empty report about `subject`.
    pub fn new(subject: impl Into<String>) -> Self {
        Self {
            subject: subject.into(),
            items: Vec::new(),
        }
    }

    /// Records a passed check.
    pub fn ok(&mut self, what: impl Into<String>, detail: impl Into<String>) {
        self.push(Status::Ok, what, detail, None);
    }

    /// Records a warning with advice.
    pub fn warn(
        &mut self,
        what: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.push(Status::Warning, what, detail, Some(fix.into()));
    }

    /// Records a problem with its fix.
    pub fn problem(
        &mut self,
        what: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.push(Status::Problem, what, detail, Some(fix.into()));
    }

    fn push(
        &mut self,
        status: Status,
        what: impl Into<String>,
        detail: impl Into<String>,
        fix: Option<String>,
    ) {
        self.items.push(Item {
            status,
            what: what.into(),
            detail: detail.into(),
            fix,
        });
    }

    /// True when nothing needs fixing (warnings are allowed).
    pub fn passed(&self) -> bool {
        self.items.iter().all(|i| i.status != Status::Problem)
    }

    /// Number of problems.
    pub fn problems(&self) -> usize {
        self.items
            .iter()
            .filter(|i| i.status == Status::Problem)
            .count()
    }

    /// Writes the report for a person: one line per check, the fix indented under it.
    pub fn write_to(&self, out: &mut dyn Write) -> io::Result<()> {
        for item in &self.items {
            writeln!(out, "{:<7} {}: {}", item.status, item.what, item.detail)?;
            if let Some(fix) = &item.fix {
                for (i, line) in fix.lines().enumerate() {
                    let lead = if i == 0 { "fix:" } else { "    " };
                    writeln!(out, "        {lead} {line}")?;
                }
            }
        }
        let problems = self.problems();
        if problems == 0 {
            writeln!(out, "{}: all is well", self.subject)
        } else {
            let s = if problems == 1 { "" } else { "s" };
            writeln!(out, "{}: {problems} problem{s} to fix", self.subject)
        }
    }
}

impl Report {
    /// The report as JSON: `subject`, `passed`, `problems` (count), and `items`, each with
    /// `status` (`ok`, `warning` or `problem`), `what`, `detail` and `fix` (null when none).
    pub fn to_json(&self) -> serde_json::Value {
        let items: Vec<serde_json::Value> = self
            .items
            .iter()
            .map(|i| {
                serde_json::json!({
                    "status": match i.status {
                        Status::Ok => "ok",
                        Status::Warning => "warning",
                        Status::Problem => "problem",
                    },
                    "what": i.what,
                    "detail": i.detail,
                    "fix": i.fix,
                })
            })
            .collect();
        let problems = self
            .items
            .iter()
            .filter(|i| i.status == Status::Problem)
            .count();
        serde_json::json!({
            "subject": self.subject,
            "passed": self.passed(),
            "problems": problems,
            "items": items,
        })
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Padded by the caller; plain words so the output greps well.
        f.pad(match self {
            Self::Ok => "ok",
            Self::Warning => "warning",
            Self::Problem => "PROBLEM",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_fixes_under_problems_and_a_verdict() {
        let mut r = Report::new("database");
        r.ok("file", "/w/plotty.db");
        r.warn("schema", "version 0 of 1", "the daemon migrates at start");
        assert!(r.passed());
        r.problem(
            "writable",
            "read-only",
            "chown plotty /w/plotty.db\nor run as its owner",
        );
        assert!(!r.passed());
        let mut out = Vec::new();
        r.write_to(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "ok      file: /w/plotty.db\n\
             warning schema: version 0 of 1\n        fix: the daemon migrates at start\n\
             PROBLEM writable: read-only\n        fix: chown plotty /w/plotty.db\n             or run as its owner\n\
             database: 1 problem to fix\n"
        );
    }
}
