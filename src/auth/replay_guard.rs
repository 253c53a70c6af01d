//! Replay protection for signed Sila requests. A request is accepted only if
//! its `created` lies inside the window, and each (app, reference) — or, with
//! no reference, each exact body — only once while it could still pass that
//! check. The nonce lives in the shared database, so every walletd process
//! refuses the replay, and its primary key settles races.

use crate::custody::eth;
use crate::store::Nonce;

/// The once-only key of a request from `app`, valid until its `created` can no
/// longer pass the window check.
pub fn nonce_for(
    app: &str,
    reference: Option<&str>,
    body: &[u8],
    created: i64,
    now: i64,
    window: u64,
) -> Nonce {
    let key = match reference {
        Some(r) => format!("ref:{r}"),
        None => format!("body:{}", hex::encode(eth::keccak256(body))),
    };
    Nonce {
        scope: app.to_string(),
        key,
        now,
        expires_at: created.max(now) + window as i64,
    }
}
