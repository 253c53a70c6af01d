//! CPU time per request, from Linux's /proc: the walletd server named by
//! `--server-pid`, and every process on this host whose name is `postgres`
//! (the store, when it runs here; an idle cluster beside it adds next to
//! nothing). Clock ticks in /proc are always USER_HZ = 100 per second.

use std::sync::OnceLock;

static SERVER: OnceLock<u32> = OnceLock::new();

/// Seconds per /proc clock tick.
const TICK_SECS: f64 = 0.01;

/// Turns the measurement on for the rest of the run.
pub fn watch(server_pid: u32) {
    let _ = SERVER.set(server_pid);
}

#[derive(Clone, Copy)]
pub struct Sample {
    server: u64,
    postgres: u64,
}

/// CPU used so far, or `None` when not asked for (or not on Linux).
pub fn sample() -> Option<Sample> {
    let server = ticks(*SERVER.get()?)?;
    let mut postgres = 0;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let is_postgres = std::fs::read_to_string(entry.path().join("comm"))
            .is_ok_and(|c| c.trim_end() == "postgres");
        if is_postgres {
            postgres += ticks(pid).unwrap_or(0);
        }
    }
    Some(Sample { server, postgres })
}

/// Milliseconds of CPU per request between two samples: (walletd, PostgreSQL).
/// PostgreSQL backends that exit during the phase take their time with them,
/// so its figure is a floor (walletd's pools keep their connections).
pub fn per_request(
    before: Option<Sample>,
    after: Option<Sample>,
    requests: usize,
) -> Option<(f64, f64)> {
    let (b, a) = (before?, after?);
    let n = requests.max(1) as f64;
    let ms = |t: u64| t as f64 * TICK_SECS * 1000.0 / n;
    Some((
        ms(a.server.saturating_sub(b.server)),
        ms(a.postgres.saturating_sub(b.postgres)),
    ))
}

/// utime + stime of a process, in ticks.
fn ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The name in parentheses may hold spaces; fields count from after it.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace();
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}
