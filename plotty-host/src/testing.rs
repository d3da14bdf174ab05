//! Helpers for the workspace's tests (this crate's, `plotty-host/tests/` and the root `tests/`):
//! a test that cannot do its work on this machine says so loudly instead of passing as a no-op.
//!
//! [`skip`] prints a `SKIP` line naming the test and the reason, appends it to the file named by
//! `PLOTTY_TEST_SKIPS` (CI prints the list and the count at the end of its run), and under
//! `CI=true` fails the test unless the reason is one CI is expected to have (e.g. not running as
//! root): CI provides everything else (fonts), so there a skip is a broken set-up.
//!
//! [`postgres`] starts a throwaway PostgreSQL cluster for the PostgreSQL job store's tests and
//! benchmarks.
//!
//! [`write_random_walk`] generates the big drawings of the memory measurements (never committed).

pub mod postgres;

use std::io::Write;

/// Whether CI may run without what the test needs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum InCi {
    /// Expected on a CI machine (e.g. tests run as an ordinary user): a skip, counted.
    MayLack,
    /// CI provides it (`.ci/run` installs it, or it cannot exist there): a failure.
    Provides,
}

/// Reports that `test` did not do its work because of `reason` (see the [module](self)); panics
/// under `CI=true` when `in_ci` is [`InCi::Provides`]. Call it and return from the test.
pub fn skip(test: &str, reason: &str, in_ci: InCi) {
    let line = format!("SKIP {test}: {reason}");
    eprintln!("{line}");
    if let Some(path) = std::env::var_os("PLOTTY_TEST_SKIPS")
        && let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    {
        // One short line per write: concurrent tests do not interleave within it.
        let _ = f.write_all(format!("{line}\n").as_bytes());
    }
    if let Err(e) = verdict(std::env::var("CI").is_ok_and(|v| v == "true"), in_ci) {
        panic!("{line}: {e}");
    }
}

/// Whether a skip is allowed: always outside CI; in CI only for what CI may lack.
fn verdict(ci: bool, in_ci: InCi) -> Result<(), &'static str> {
    match (ci, in_ci) {
        (true, InCi::Provides) => Err("CI=true provides this, so the skip is a failure"),
        _ => Ok(()),
    }
}

/// Writes a random walk of `segments` line segments on an A4 page (1,000 segments a polyline,
/// seeded, so the same every time) to `path`: the huge drawing of the memory measurements.
///
/// # Errors
/// The file cannot be written.
pub fn write_random_walk(path: &std::path::Path, segments: usize) -> std::io::Result<()> {
    let mut rng = fastrand::Rng::with_seed(10);
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(
        f,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"297mm\" height=\"210mm\" \
         viewBox=\"0 0 297 210\"><g fill=\"none\" stroke=\"black\" stroke-width=\"0.3\">"
    )?;
    let (mut x, mut y) = (148.0f64, 105.0f64);
    let mut left = segments;
    while left > 0 {
        let n = left.min(1000);
        write!(f, "<polyline points=\"")?;
        for _ in 0..=n {
            x = (x + rng.f64() * 2.0 - 1.0).clamp(10.0, 287.0);
            y = (y + rng.f64() * 2.0 - 1.0).clamp(10.0, 200.0);
            write!(f, "{x:.2},{y:.2} ")?;
        }
        writeln!(f, "\"/>")?;
        left -= n;
    }
    writeln!(f, "</g></svg>")?;
    f.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skip_fails_in_ci_only_for_what_ci_provides() {
        assert!(verdict(true, InCi::Provides).is_err());
        assert!(verdict(true, InCi::MayLack).is_ok());
        assert!(verdict(false, InCi::Provides).is_ok());
        assert!(verdict(false, InCi::MayLack).is_ok());
    }
}
