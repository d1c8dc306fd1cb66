//! What a server process costs: CPU time and peak resident memory, read from `/proc`.
//!
//! CPU is `utime + stime + cutime + cstime` of `/proc/<pid>/stat`, so a fork child the server has
//! reaped (Valkey's atomic migration snapshots in one) counts too. Peak RSS is `VmHWM` of
//! `/proc/<pid>/status`; [`reset_peak`] sets it back to the current RSS (`clear_refs` = 5) so that
//! a case's peak is its own, not the data load's.

use serde::Serialize;

/// One reading of a process's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Sample {
    /// CPU seconds used so far (own and reaped children's, user and system).
    pub cpu_s: f64,
    /// Peak resident set since start or the last [`reset_peak`], bytes.
    pub peak_rss_bytes: u64,
    /// Resident set now, bytes.
    pub rss_bytes: u64,
}

/// What a process used between two samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Usage {
    /// CPU seconds used in between.
    pub cpu_s: f64,
    /// Peak resident set in between (since the peak was reset), bytes.
    pub peak_rss_bytes: u64,
    /// Resident set at the end minus at the start, bytes (negative: memory given back).
    pub rss_growth_bytes: i64,
}

/// Reads `pid`'s counters; `None` if the process is gone or `/proc` is unreadable.
pub fn sample(pid: u32) -> Option<Sample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14..=17 of stat (1-based) are 11..=14 here (0-based, after pid and comm).
    let ticks: u64 = fields
        .get(11..15)?
        .iter()
        .map(|f| f.parse::<u64>().unwrap_or(0))
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Some(Sample {
        cpu_s: ticks as f64 / hz,
        peak_rss_bytes: kb("VmHWM:") * 1024,
        rss_bytes: kb("VmRSS:") * 1024,
    })
}

/// Resets `pid`'s peak RSS to its current RSS; false if the kernel refused.
pub fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// The usage between `before` and `after`.
pub fn between(before: Sample, after: Sample) -> Usage {
    Usage {
        cpu_s: (after.cpu_s - before.cpu_s).max(0.0),
        peak_rss_bytes: after.peak_rss_bytes.max(after.rss_bytes),
        rss_growth_bytes: after.rss_bytes as i64 - before.rss_bytes as i64,
    }
}

/// CPU seconds this process's waited-for children used so far (e.g. `redis-cli`,
/// `redis-benchmark`), from `getrusage(RUSAGE_CHILDREN)`.
pub fn children_cpu_s() -> f64 {
    rusage_s(libc::RUSAGE_CHILDREN)
}

/// CPU seconds this process used so far, every thread.
pub fn self_cpu_s() -> f64 {
    rusage_s(libc::RUSAGE_SELF)
}

fn rusage_s(who: libc::c_int) -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we pass and reads nothing else.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(who, &mut ru) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_counters() {
        let me = std::process::id();
        let s = sample(me).expect("/proc/self is readable");
        assert!(s.rss_bytes > 0);
        assert!(s.peak_rss_bytes >= s.rss_bytes);
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1);
        let later = sample(me).unwrap();
        assert!(between(s, later).cpu_s >= 0.0);
        assert!(self_cpu_s() > 0.0);
        assert!(sample(u32::MAX).is_none());
    }
}
