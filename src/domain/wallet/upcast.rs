//! Old stored forms of wallet events, brought to the current one on load.
//!
//! The log is append-only, so an event keeps the version it was written
//! with; readers of the write side see only the current form. Each function
//! takes the stored payload (externally tagged: `{"MessageSigned":{…}}`) of
//! one old version and returns the next version's.

use serde_json::Value;

use super::events::SignatureKind;

/// `MessageSigned` v1 → v2: adds `kind`, which v1 readers derived from
/// `scheme`. A payload that is not a v1 `MessageSigned` with a scheme
/// walletd wrote comes back unchanged, so reading it fails loudly rather
/// than with a guessed kind.
pub fn message_signed_v1_to_v2(mut payload: Value) -> Value {
    let Some(body) = payload
        .get_mut("MessageSigned")
        .and_then(Value::as_object_mut)
    else {
        return payload;
    };
    let kind = body
        .get("scheme")
        .and_then(Value::as_str)
        .and_then(SignatureKind::of_scheme);
    if let (Some(kind), false) = (kind, body.contains_key("kind")) {
        body.insert("kind".into(), Value::String(kind.as_str().into()));
    }
    payload
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::wallet::WalletEvent;

    /// A `MessageSigned` event exactly as walletd wrote it before version 2.
    pub(crate) const STORED_V1: &str = r#"{"MessageSigned":{"wallet_id":"6f1c2e1a-8d3b-5b52-9a57-2f0d1c9e4b11","scheme":"eip1559","digest":"0x18ac3e7343f016890c510e93f935261169d9e3f565436429830faf0934f4f8e4","message_len":82,"signature":"0x454349e422f05297191ead13e21d3db520e5abef52055e4964b82fb213f593a1043a718774c572bd8a25adbeb1bfcd5c0256ae11cecf9f9c3f925d0e52beaf891b","requested_by":"apikey:3","at":"2026-11-02T09:14:07.312455Z","chain_id":11155111,"tx_nonce":42,"tx_to":"0x3535353535353535353535353535353535353535","tx_value":"10000000000000000","tx_hash":"0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060"}}"#;

    #[test]
    fn v1_gains_the_kind_its_scheme_implies() {
        for (scheme, kind) in [
            ("eip191", "message"),
            ("eip712", "typed_data"),
            ("eip1559", "transaction"),
            ("eip155", "transaction"),
        ] {
            let v1 = json!({"MessageSigned": {"scheme": scheme, "digest": "0x00"}});
            let v2 = message_signed_v1_to_v2(v1);
            assert_eq!(v2["MessageSigned"]["kind"], kind, "{scheme}");
            assert_eq!(v2["MessageSigned"]["scheme"], scheme, "scheme is kept");
        }
    }

    #[test]
    fn a_stored_v1_event_reads_as_the_current_type() {
        let stored: Value = serde_json::from_str(STORED_V1).unwrap();
        // Without the upcaster the current type refuses it (`kind` is required).
        assert!(serde_json::from_value::<WalletEvent>(stored.clone()).is_err());
        let event: WalletEvent = serde_json::from_value(message_signed_v1_to_v2(stored.clone()))
            .expect("v1 upcast reads");
        let WalletEvent::MessageSigned {
            kind,
            scheme,
            tx_nonce,
            message_len,
            ..
        } = &event
        else {
            panic!("{event:?}")
        };
        assert_eq!(*kind, SignatureKind::Transaction);
        assert_eq!(scheme, "eip1559");
        assert_eq!((*tx_nonce, *message_len), (Some(42), 82));
        // Written again it is v1 plus `kind`, nothing lost or renamed.
        let mut expected = stored;
        expected["MessageSigned"]["kind"] = json!("transaction");
        assert_eq!(serde_json::to_value(&event).unwrap(), expected);
    }

    #[test]
    fn what_is_not_a_readable_v1_is_left_alone() {
        for odd in [
            json!({"MessageSigned": {"scheme": "eip4844"}}),
            json!({"MessageSigned": {"digest": "0x00"}}),
            json!({"MessageSigned": "not an object"}),
            json!({"WalletDeleted": {"scheme": "eip191"}}),
            json!(null),
        ] {
            assert_eq!(message_signed_v1_to_v2(odd.clone()), odd);
        }
        // An explicit kind is never overwritten.
        let v = json!({"MessageSigned": {"scheme": "eip191", "kind": "message"}});
        assert_eq!(message_signed_v1_to_v2(v.clone()), v);
    }
}
