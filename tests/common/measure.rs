//! Runs of the real binary, measured: wall time, and the child's peak
//! resident set from the `rusage` that `wait4` returns when it reaps it
//! (`ru_maxrss`, so no tool or package is needed). A run past its time limit,
//! or past a resident set, is killed rather than left to hang or to take the
//! machine's memory.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Output};
use std::time::{Duration, Instant};

use super::Captured;

pub struct Measured {
    pub out: Output,
    pub took: Duration,
    /// `ru_maxrss`: an upper bound. Linux starts a child's figure at the
    /// resident set of the process it was spawned from (exec takes the old
    /// memory's high-water mark), so the test process's own size is a floor;
    /// `run_measured` resets that high-water mark (clear_refs 5) before each
    /// spawn so that the floor is its current size, not its peak.
    pub peak_rss_kib: u64,
    /// VmHWM of the live child, sampled every few ms: its own peak, but a
    /// lower bound (a rise in its last milliseconds may be missed).
    pub sampled_hwm_kib: u64,
}

impl Measured {
    pub fn code(&self) -> Option<i32> {
        self.out.status.code()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
}

impl std::fmt::Display for Measured {
    /// "exit 2 in 5 ms, peak RSS ≤ 10.1 MiB (sampled 3.2 MiB)"
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?} in {:.0} ms, peak RSS <= {:.1} MiB (sampled VmHWM {:.1} MiB)",
            self.code(),
            self.took.as_secs_f64() * 1e3,
            self.peak_rss_kib as f64 / 1024.0,
            self.sampled_hwm_kib as f64 / 1024.0
        )
    }
}

/// Like `run_within`, and also reads the child's peak resident set from the
/// `rusage` that `wait4` returns when it reaps it (Linux: KiB). The child is
/// killed, and the test fails, past `limit` or past `kill_rss_kib` resident.
pub fn run_measured(cmd: &mut Command, limit: Duration, kill_rss_kib: u64) -> Measured {
    try_run_measured(cmd, limit, kill_rss_kib).unwrap_or_else(|killed| panic!("{killed}"))
}

/// `run_measured`, with a kill (past `limit` or `kill_rss_kib`) as an error.
pub fn try_run_measured(cmd: &mut Command, limit: Duration, kill_rss_kib: u64) -> Result<Measured, String> {
    // Best effort (Linux 4.0+): the child's ru_maxrss starts from this
    // process's high-water mark; make that its current size.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let mut run = Captured::spawn(cmd);
    let pid = run.child.id() as libc::pid_t;
    let mut sampled = 0;
    let start = Instant::now();
    // The child is reaped here, by `wait4`, not by `Child::wait`.
    let reap = |flags: libc::c_int| -> Option<(ExitStatus, u64)> {
        let mut status: libc::c_int = 0;
        // SAFETY: plain out-parameters; `pid` is our own unreaped child.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let got = unsafe { libc::wait4(pid, &mut status, flags, &mut usage) };
        assert!(got >= 0, "wait4: {}", std::io::Error::last_os_error());
        (got == pid).then(|| (ExitStatus::from_raw(status), usage.ru_maxrss as u64))
    };
    let (status, peak) = loop {
        if let Some(done) = reap(libc::WNOHANG) {
            break done;
        }
        let rss = proc_status_kib(run.child.id(), "VmRSS:").unwrap_or(0);
        sampled = sampled.max(proc_status_kib(run.child.id(), "VmHWM:").unwrap_or(0));
        if start.elapsed() > limit || rss > kill_rss_kib {
            let _ = run.child.kill();
            let (_, peak) = reap(0).expect("reap the killed child");
            return Err(format!(
                "{cmd:?}: killed after {:.0} ms (bound {limit:?}), resident {} MiB, peak {} MiB",
                start.elapsed().as_secs_f64() * 1e3,
                rss >> 10,
                peak >> 10
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let took = start.elapsed();
    Ok(Measured { out: run.output(status), took, peak_rss_kib: peak, sampled_hwm_kib: sampled })
}

/// A field in kB of /proc/PID/status; none once the process is gone.
pub fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix(field)).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
