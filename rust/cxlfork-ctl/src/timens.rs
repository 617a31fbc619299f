//! Clocks a clone can trust: CLOCK_MONOTONIC and CLOCK_BOOTTIME continue
//! from the checkpoint, as a fork child's do, on any host.
//!
//! Every host's monotonic clock starts at its own boot. A clone restored on
//! another host (or long after) would see its program's monotonic
//! deadlines and timestamps jump, forward or back. Like CRIU, the restorer
//! puts its clones in a time namespace whose offsets make the two clocks
//! read what the original's would read now: their value at the checkpoint
//! plus the real time elapsed since (hosts keep CLOCK_REALTIME in sync).
//! On the checkpoint's own host, soon after, the offsets are ~0 and no
//! namespace is made. A new time namespace needs CAP_SYS_ADMIN; without it
//! the clones keep this host's clocks, with a warning.

use anyhow::Result;
use cxlfork_abi::image::ProcImage;
use rustix::thread::UnshareFlags;
use rustix::time::{clock_gettime, ClockId};
use std::io::Write;

/// Offsets below this are noise: no namespace.
const SLACK_NS: i128 = 50_000_000;

fn ns(id: ClockId) -> i128 {
    let t = clock_gettime(id);
    i128::from(t.tv_sec) * 1_000_000_000 + i128::from(t.tv_nsec)
}

/// "secs nanosecs" as /proc/PID/timens_offsets wants it (nanosecs >= 0).
fn offset_line(name: &str, off: i128) -> String {
    format!("{name} {} {}\n", off.div_euclid(1_000_000_000), off.rem_euclid(1_000_000_000))
}

/// Puts this process's future children (the restorers) in a time
/// namespace where the clocks continue the checkpoint's. Returns the
/// monotonic offset applied, in ns (0: none needed, or not allowed).
pub(crate) fn continue_clocks(proc: &ProcImage) -> Result<i128> {
    let elapsed = (ns(ClockId::Realtime) - i128::from(proc.realtime_ns)).max(0);
    let mono = i128::from(proc.monotonic_ns) + elapsed - ns(ClockId::Monotonic);
    let boot = i128::from(proc.boottime_ns) + elapsed - ns(ClockId::Boottime);
    if mono.abs() < SLACK_NS && boot.abs() < SLACK_NS {
        return Ok(0);
    }
    // SAFETY: CLONE_NEWTIME changes only the namespace of children created
    // from now on; no other state of this process (or its threads) changes.
    if let Err(e) = unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWTIME) } {
        eprintln!(
            "cxlfork-ctl: warning: the clones' CLOCK_MONOTONIC will be {:+.3} s off the original's \
             (a time namespace to keep it needs CAP_SYS_ADMIN: {e})",
            -(mono as f64) / 1e9
        );
        return Ok(0);
    }
    let mut f = std::fs::OpenOptions::new().write(true).open("/proc/self/timens_offsets")?;
    f.write_all((offset_line("monotonic", mono) + &offset_line("boottime", boot)).as_bytes())?;
    Ok(mono)
}
