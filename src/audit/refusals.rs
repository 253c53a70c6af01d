//! Refusals are counted in memory and written in batches.
//!
//! Writing one durable row per refused request let anyone without a credential
//! turn requests into fsyncs, and on SQLite those queue behind the same lock as
//! real writes. Here a refusal costs a map update under a mutex on the request
//! path; the writer (`api::housekeeping`) drains the map every
//! [`FLUSH_EVERY`] and appends one row per (source address, subject, action,
//! status, reason) with its count, in one transaction.
//!
//! Memory is bounded: at most [`MAX_SOURCES`] distinct keys are kept per
//! window. Beyond that a refusal is counted under its action and status only
//! (source and reason dropped, reason [`OVERFLOW_REASON`]), so the total
//! stays exact while the number of keys cannot grow with the number of
//! source addresses.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use walletd_projections::Db;

use super::security_log::{Refusal, RefusalTally, SecurityLog};
use crate::domain::Timestamp;

/// How long refusals are counted before their tallies are written.
pub const FLUSH_EVERY: Duration = Duration::from_secs(5);

/// Distinct keys held per window.
pub const MAX_SOURCES: usize = 10_000;

/// The reason of a tally that counts refusals beyond [`MAX_SOURCES`].
pub const OVERFLOW_REASON: &str = "too_many_sources";

/// Client text kept in a tally (sample path, reason) is cut to this many
/// characters.
const MAX_TEXT_CHARS: usize = 200;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    client_addr: Option<String>,
    subject: Option<String>,
    role: Option<String>,
    auth_method: &'static str,
    action: &'static str,
    status: u16,
    reason: String,
}

struct Tally {
    count: u64,
    first_at: Timestamp,
    last_at: Timestamp,
    path: String,
    request_id: String,
}

pub struct RefusalRecorder {
    tallies: Mutex<HashMap<Key, Tally>>,
    max_sources: usize,
}

impl Default for RefusalRecorder {
    fn default() -> Self {
        Self::with_limit(MAX_SOURCES)
    }
}

impl RefusalRecorder {
    pub fn with_limit(max_sources: usize) -> Self {
        Self {
            tallies: Mutex::new(HashMap::new()),
            max_sources,
        }
    }

    /// Counts a refusal. Never waits for the database.
    pub fn record(&self, r: Refusal) {
        let at = Timestamp::now();
        let key = Key {
            client_addr: r.client_addr,
            subject: r.subject,
            role: r.role,
            auth_method: r.auth_method,
            action: r.action,
            status: r.status,
            reason: cut(r.reason),
        };
        let Ok(mut map) = self.tallies.lock() else {
            return;
        };
        let key = if map.len() >= self.max_sources && !map.contains_key(&key) {
            overflow_key(&key)
        } else {
            key
        };
        add(&mut map, key, 1, at, at, || (cut(r.path), r.request_id));
    }

    /// Takes every tally counted so far.
    pub fn drain(&self) -> Vec<RefusalTally> {
        let map = match self.tallies.lock() {
            Ok(mut map) => std::mem::take(&mut *map),
            Err(_) => return Vec::new(),
        };
        let mut out: Vec<RefusalTally> = map
            .into_iter()
            .map(|(k, t)| RefusalTally {
                subject: k.subject,
                role: k.role,
                auth_method: k.auth_method,
                action: k.action,
                status: k.status,
                reason: k.reason,
                client_addr: k.client_addr,
                count: t.count,
                first_at: t.first_at,
                last_at: t.last_at,
                path: t.path,
                request_id: t.request_id,
            })
            .collect();
        out.sort_by_key(|t| t.first_at);
        out
    }

    /// Puts tallies back that could not be written, within the same bound.
    fn restore(&self, tallies: Vec<RefusalTally>) {
        let Ok(mut map) = self.tallies.lock() else {
            return;
        };
        for t in tallies {
            let key = Key {
                client_addr: t.client_addr,
                subject: t.subject,
                role: t.role,
                auth_method: t.auth_method,
                action: t.action,
                status: t.status,
                reason: t.reason,
            };
            let key = if map.len() >= self.max_sources && !map.contains_key(&key) {
                overflow_key(&key)
            } else {
                key
            };
            add(&mut map, key, t.count, t.first_at, t.last_at, || {
                (t.path, t.request_id)
            });
        }
    }

    /// Writes what has been counted; returns the number of refusals written.
    /// On failure the tallies are kept for the next attempt.
    pub async fn flush(&self, db: &Db) -> Result<u64, sqlx::Error> {
        let tallies = self.drain();
        if tallies.is_empty() {
            return Ok(0);
        }
        let refusals = tallies.iter().map(|t| t.count).sum();
        let overflowed: u64 = tallies
            .iter()
            .filter(|t| t.reason == OVERFLOW_REASON && t.client_addr.is_none())
            .map(|t| t.count)
            .sum();
        if overflowed > 0 {
            tracing::warn!(
                refusals = overflowed,
                max_sources = self.max_sources,
                "more refusal sources than can be told apart in one window; the rest were counted without source or reason"
            );
        }
        match SecurityLog::append(db, &tallies).await {
            Ok(()) => Ok(refusals),
            Err(e) => {
                self.restore(tallies);
                Err(e)
            }
        }
    }
}

fn add(
    map: &mut HashMap<Key, Tally>,
    key: Key,
    count: u64,
    first_at: Timestamp,
    last_at: Timestamp,
    sample: impl FnOnce() -> (String, String),
) {
    match map.get_mut(&key) {
        Some(t) => {
            t.count = t.count.saturating_add(count);
            t.first_at = t.first_at.min(first_at);
            t.last_at = t.last_at.max(last_at);
        }
        None => {
            let (path, request_id) = sample();
            map.insert(
                key,
                Tally {
                    count,
                    first_at,
                    last_at,
                    path,
                    request_id,
                },
            );
        }
    }
}

/// The coarse key a refusal falls back to when the map is full: the action,
/// status and method are few and fixed by the code, so these keys are few too.
fn overflow_key(k: &Key) -> Key {
    Key {
        client_addr: None,
        subject: None,
        role: None,
        auth_method: k.auth_method,
        action: k.action,
        status: k.status,
        reason: OVERFLOW_REASON.to_string(),
    }
}

fn cut(s: String) -> String {
    match s.char_indices().nth(MAX_TEXT_CHARS) {
        Some((end, _)) => s[..end].to_string(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(addr: &str, reason: &str) -> Refusal {
        Refusal {
            subject: None,
            role: None,
            auth_method: "jwt",
            action: "wallet.create",
            status: 401,
            reason: reason.into(),
            path: "/api/wallet/create".into(),
            request_id: "r".into(),
            client_addr: Some(addr.into()),
        }
    }

    #[test]
    fn same_source_and_reason_is_one_tally() {
        let r = RefusalRecorder::default();
        for _ in 0..1000 {
            r.record(refusal("10.0.0.1", "missing_token"));
        }
        r.record(refusal("10.0.0.1", "expired"));
        r.record(refusal("10.0.0.2", "expired"));
        let t = r.drain();
        assert_eq!(t.len(), 3);
        assert_eq!(t.iter().map(|t| t.count).sum::<u64>(), 1002);
        assert!(r.drain().is_empty(), "drained");
    }

    #[test]
    fn keys_are_bounded_and_overflow_is_counted() {
        let r = RefusalRecorder::with_limit(100);
        for i in 0..10_000 {
            r.record(refusal(
                &format!("10.0.{}.{}", i / 256, i % 256),
                "bad_signature",
            ));
        }
        let t = r.drain();
        assert_eq!(t.len(), 101, "100 sources and one overflow tally");
        assert_eq!(t.iter().map(|t| t.count).sum::<u64>(), 10_000);
        let overflow = t.iter().find(|t| t.reason == OVERFLOW_REASON).unwrap();
        assert_eq!(overflow.count, 9_900);
        assert_eq!(overflow.client_addr, None);
    }

    #[test]
    fn long_client_text_is_cut_on_a_character_boundary() {
        let r = RefusalRecorder::default();
        let mut x = refusal("10.0.0.1", &"€".repeat(500));
        x.path = "/".to_string() + &"é".repeat(500);
        r.record(x);
        let t = r.drain();
        assert_eq!(t[0].reason.chars().count(), MAX_TEXT_CHARS);
        assert_eq!(t[0].path.chars().count(), MAX_TEXT_CHARS);
    }
}
