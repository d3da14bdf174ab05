//! The daemon's own memory and CPU use for `system_status`, read from `/proc` (Linux). Elsewhere,
//! or if `/proc` cannot be read, the values are unknown (`null` on the wire), never made up.
//!
//! CPU use is the process's user + system time between two samples divided by the wall time and
//! the number of cores, so 1.0 means every core busy. Memory use is the resident set (`VmRSS`) as a
//! fraction of the machine's memory (`MemTotal`).

use std::time::Instant;

/// Clock ticks per second of `/proc/<pid>/stat` times (`USER_HZ`, 100 on every Linux since 2.6).
const TICKS_PER_SECOND: f64 = 100.0;

/// Remembers the last CPU reading.
pub(super) struct Sampler {
    last: Option<(Instant, f64)>,
    cores: f64,
    cpu: Option<f64>,
}

/// One reading.
#[derive(Clone, Copy, PartialEq, Debug, Default)]
pub(super) struct Usage {
    /// Resident memory / machine memory.
    pub(super) memory_usage: Option<f64>,
    /// Resident memory, bytes.
    pub(super) rss_bytes: Option<u64>,
    /// CPU time / (wall time × cores) since the previous sample.
    pub(super) cpu_usage: Option<f64>,
}

impl Sampler {
    /// A sampler with a first CPU reading taken now.
    pub(super) fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64);
        Self {
            last: cpu_seconds().map(|s| (Instant::now(), s)),
            cores,
            cpu: None,
        }
    }

    /// Reads memory now and CPU use since the last call (or keeps the last CPU figure when called
    /// again within a second, so many subscribers at once do not make it noisy).
    pub(super) fn sample(&mut self) -> Usage {
        let now = Instant::now();
        match (self.last, cpu_seconds()) {
            (Some((then, used)), Some(total)) => {
                let wall = now.saturating_duration_since(then).as_secs_f64();
                if wall >= 1.0 || self.cpu.is_none() && wall > 0.0 {
                    self.cpu = Some(cpu_fraction(total - used, wall, self.cores));
                    self.last = Some((now, total));
                }
            }
            (None, Some(total)) => self.last = Some((now, total)),
            (_, None) => self.cpu = None,
        }
        let rss = read("/proc/self/status").and_then(|s| kib_field(&s, "VmRSS:"));
        let total = read("/proc/meminfo").and_then(|s| kib_field(&s, "MemTotal:"));
        Usage {
            memory_usage: match (rss, total) {
                (Some(r), Some(t)) if t > 0 => Some((r as f64 / t as f64).clamp(0.0, 1.0)),
                _ => None,
            },
            rss_bytes: rss,
            cpu_usage: self.cpu,
        }
    }
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// User + system CPU seconds of this process so far.
fn cpu_seconds() -> Option<f64> {
    stat_cpu_seconds(&read("/proc/self/stat")?)
}

/// Fields 14 and 15 (utime, stime) of a `/proc/<pid>/stat` line. The command name (field 2) may
/// hold spaces and parentheses, so counting starts after the last `)`.
fn stat_cpu_seconds(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After `)`: field 3 (state) is index 0, so utime (14) is index 11.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SECOND)
}

/// A `Name:   1234 kB` line of `/proc/self/status` or `/proc/meminfo`, in bytes.
fn kib_field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    let kib: u64 = line[name.len()..].split_whitespace().next()?.parse().ok()?;
    Some(kib * 1024)
}

fn cpu_fraction(cpu_s: f64, wall_s: f64, cores: f64) -> f64 {
    if wall_s <= 0.0 || cores <= 0.0 {
        return 0.0;
    }
    (cpu_s / (wall_s * cores)).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_command_names() {
        let line = "42 (a) b) (c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 99 1 2";
        assert_eq!(stat_cpu_seconds(line), Some(3.0));
        assert_eq!(stat_cpu_seconds("garbage"), None);
        assert_eq!(stat_cpu_seconds("1 (x) S 1 2"), None);
    }

    #[test]
    fn kib_fields() {
        let status = "Name:\tplotty\nVmRSS:\t   12345 kB\nThreads:\t3\n";
        assert_eq!(kib_field(status, "VmRSS:"), Some(12345 * 1024));
        assert_eq!(kib_field(status, "VmSwap:"), None);
        assert_eq!(kib_field("VmRSS: x kB", "VmRSS:"), None);
    }

    #[test]
    fn fractions_stay_in_range() {
        assert_eq!(cpu_fraction(1.0, 1.0, 2.0), 0.5);
        assert_eq!(cpu_fraction(10.0, 1.0, 2.0), 1.0);
        assert_eq!(cpu_fraction(1.0, 0.0, 2.0), 0.0);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_process() {
        let mut s = Sampler::new();
        let u = s.sample();
        let rss = u.rss_bytes.unwrap();
        assert!(rss > 1 << 20, "{rss}");
        let m = u.memory_usage.unwrap();
        assert!(m > 0.0 && m < 1.0, "{m}");
    }
}
