//! What the tree commits to for each event: a canonical encoding of the
//! event as stored, and its RFC 6962 leaf hash.
//!
//! The encoding is the JSON object
//! `{"aggregate_id", "aggregate_type", "event_type", "event_version",
//! "index", "metadata", "payload", "position", "sequence"}` with its keys
//! (at every depth) in byte order, no insignificant whitespace, strings as
//! serde_json writes them (RFC 8785 for walletd's values, which are strings,
//! integers, booleans and null). `index` is the event's place in the tree
//! (0, 1, 2, … in global order); `position` is its row in the store. An
//! auditor recomputes it from an export with any JSON library that sorts
//! keys; the leaf hash is SHA-256(0x00 ‖ encoding).

use serde_json::{json, Value};
use tlog_tiles::tlog::{record_hash, Hash};
use walletd_projections::StoredEvent;

/// The canonical bytes of `event` as leaf `index`.
pub fn encode(index: u64, event: &StoredEvent) -> Vec<u8> {
    // serde_json's maps are ordered by key (its `preserve_order` feature is
    // off), so `to_vec` writes every level sorted.
    let doc = json!({
        "aggregate_id": event.aggregate_id,
        "aggregate_type": event.aggregate_type,
        "event_type": event.event_type,
        "event_version": event.event_version,
        "index": index,
        "metadata": canonical(&event.metadata),
        "payload": canonical(&event.payload),
        "position": event.at.position,
        "sequence": event.sequence,
    });
    serde_json::to_vec(&doc).unwrap_or_default()
}

/// The leaf hash of `event` as leaf `index`.
pub fn hash(index: u64, event: &StoredEvent) -> Hash {
    record_hash(&encode(index, event))
}

/// A copy whose maps are sorted however the value was built.
fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), canonical(v)))
                .collect::<serde_json::Map<_, _>>(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use walletd_projections::LogPosition;

    fn event() -> StoredEvent {
        StoredEvent {
            at: LogPosition {
                tx_id: 9,
                position: 42,
            },
            aggregate_type: "wallet".into(),
            aggregate_id: "w-1".into(),
            sequence: 3,
            event_type: "WalletCreated".into(),
            event_version: "1.0".into(),
            payload: serde_json::from_str(r#"{"z":1,"a":{"y":"é","b":[true,null]}}"#).unwrap(),
            metadata: json!({"actor": "api-key:1"}),
        }
    }

    #[test]
    fn the_encoding_is_sorted_compact_json() {
        let bytes = encode(7, &event());
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            r#"{"aggregate_id":"w-1","aggregate_type":"wallet","event_type":"WalletCreated","event_version":"1.0","index":7,"metadata":{"actor":"api-key:1"},"payload":{"a":{"b":[true,null],"y":"é"},"z":1},"position":42,"sequence":3}"#
        );
    }

    #[test]
    fn the_leaf_hash_is_rfc6962() {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update([0u8]);
        h.update(encode(0, &event()));
        assert_eq!(hash(0, &event()).0, <[u8; 32]>::from(h.finalize()));
        // The index is part of the leaf: the same event elsewhere is another leaf.
        assert_ne!(hash(0, &event()), hash(1, &event()));
    }
}
