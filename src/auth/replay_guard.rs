//! Replay protection for signed Sila requests. A request is accepted only if
//! its `created` lies inside the window, and each exact body, and each (app,
//! reference), only once while it could still pass that check. The nonces
//! live in the shared database, so every walletd process refuses the replay,
//! and their primary key settles races.
//!
//! Sila's signatures cover the body, not the endpoint, so a captured body
//! could be sent to another endpoint. Hence the exact body is used up by any
//! answer once the app is authenticated, a refusal included: a refused
//! `update_wallet` cannot be re-sent to `delete_wallet`. Its reference stays
//! free, so a corrected request (new bytes, new signatures) may reuse it.

use crate::domain::eth;
use crate::store::Nonce;

/// The once-only key of this exact body from `app`, valid until its
/// `created` can no longer pass the window check.
pub fn body_nonce(app: &str, body: &[u8], created: i64, now: i64, window: u64) -> Nonce {
    nonce(
        app,
        format!("body:{}", hex::encode(eth::keccak256(body))),
        created,
        now,
        window,
    )
}

/// Every once-only key an accepted request uses up: its exact body, and its
/// reference when it has one.
pub fn nonces_for(
    app: &str,
    reference: Option<&str>,
    body: &[u8],
    created: i64,
    now: i64,
    window: u64,
) -> Vec<Nonce> {
    let mut all = vec![body_nonce(app, body, created, now, window)];
    if let Some(r) = reference {
        all.push(nonce(app, format!("ref:{r}"), created, now, window));
    }
    all
}

fn nonce(app: &str, key: String, created: i64, now: i64, window: u64) -> Nonce {
    Nonce {
        scope: app.to_string(),
        key,
        now,
        expires_at: created.max(now) + window as i64,
    }
}
