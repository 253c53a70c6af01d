//! The readiness checks that cost a round trip: the master keys against the
//! vault (a sealed canary) and the MPC cosigner over its channel.
//!
//! A load balancer polls `/readyz` every second or two, from every instance;
//! these run at most every [`CHECK_EVERY`] and one at a time, the polls in
//! between answering from the last result. What went wrong is logged (ids
//! and addresses, never a key), at most once per change; `/readyz` shows a
//! fixed phrase.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::app::App;
use crate::custody::canary::{self, VaultProblem};
use crate::custody::CustodyKind;

/// How long a result is reused.
pub const CHECK_EVERY: Duration = Duration::from_secs(5);

/// How long the cosigner may take to answer the probe before it counts as
/// unreachable.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// A failed check, as `/readyz` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The vault could not be read (the store check says more).
    VaultUnreadable,
    /// Keys in the vault are sealed under a master key this process lacks,
    /// or the canary does not open.
    MasterKey,
    /// The MPC cosigner does not answer, or does not accept the channel.
    Cosigner,
}

impl Problem {
    pub fn phrase(self) -> &'static str {
        match self {
            Problem::VaultUnreadable => "key vault unreadable",
            Problem::MasterKey => "master key does not open the vault",
            Problem::Cosigner => "MPC cosigner unreachable or refusing the channel",
        }
    }
}

#[derive(Default)]
pub struct DeepChecks {
    last: Mutex<Option<(Instant, Vec<Problem>)>>,
    /// What was last logged, so a lasting problem is one line, not one per check.
    logged: std::sync::Mutex<Vec<String>>,
    /// Cosigner probes in a row that ran out of time.
    slow_probes: AtomicU32,
}

impl DeepChecks {
    /// The problems found by the last check, checking again when it is
    /// older than [`CHECK_EVERY`].
    pub async fn problems(&self, app: &App) -> Vec<Problem> {
        let mut last = self.last.lock().await;
        if let Some((at, problems)) = &*last {
            if at.elapsed() < CHECK_EVERY {
                return problems.clone();
            }
        }
        let problems = self.check(app).await;
        *last = Some((Instant::now(), problems.clone()));
        problems
    }

    async fn check(&self, app: &App) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut details = Vec::new();
        if let Some(keys) = &app.master_keys {
            match canary::check(&app.vault, keys).await {
                Ok(()) => {}
                Err(VaultProblem::Store(e)) => {
                    problems.push(Problem::VaultUnreadable);
                    details.push(format!("reading the key vault: {e}"));
                }
                Err(e) => {
                    problems.push(Problem::MasterKey);
                    details.push(e.to_string());
                }
            }
        }
        if app.server_custody.kind() == CustodyKind::Mpc {
            let probe = tokio::time::timeout(PROBE_TIMEOUT, app.server_custody.probe()).await;
            let timed_out = probe.is_err();
            let failed = match probe {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e),
                // A cosigner busy with key generation may answer slowly
                // once; twice in a row it is not answering.
                Err(_) if self.slow_probes.fetch_add(1, Ordering::Relaxed) == 0 => None,
                Err(_) => Some(format!("no answer within {} s", PROBE_TIMEOUT.as_secs())),
            };
            if !timed_out {
                self.slow_probes.store(0, Ordering::Relaxed);
            }
            if let Some(e) = failed {
                problems.push(Problem::Cosigner);
                details.push(format!("MPC cosigner: {e}"));
            }
        }
        self.log_changes(details);
        problems
    }

    fn log_changes(&self, details: Vec<String>) {
        let Ok(mut logged) = self.logged.lock() else {
            return;
        };
        if *logged == details {
            return;
        }
        for detail in details.iter().filter(|d| !logged.contains(d)) {
            tracing::error!(problem = %detail, "not ready");
        }
        if details.is_empty() {
            tracing::info!("readiness checks pass again");
        }
        *logged = details;
    }
}
