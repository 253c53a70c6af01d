//! Reading old event versions: every stored payload is brought to its
//! type's current version before it is deserialized, by the aggregate
//! loader (cqrs-es's `EventUpcaster`, registered per aggregate type) and by
//! anyone else on the write side who reads stored events
//! ([`current_form`]). The log itself is never rewritten.

use cqrs_es::persist::{EventUpcaster, SerializedEvent};
use serde_json::Value;

use crate::domain::wallet::{self, MESSAGE_SIGNED_VERSION};

/// One step from an old version of one event type to the next.
struct Step {
    aggregate_type: &'static str,
    event_type: &'static str,
    from: &'static str,
    to: &'static str,
    upcast: fn(Value) -> Value,
}

/// Every upcast walletd knows, oldest first within an event type.
const STEPS: &[Step] = &[Step {
    aggregate_type: "wallet",
    event_type: "MessageSigned",
    from: "1",
    to: MESSAGE_SIGNED_VERSION,
    upcast: wallet::upcast::message_signed_v1_to_v2,
}];

/// The payload of a stored event in its type's current version, and that
/// version. A version no step starts from is returned as it is.
pub fn current_form(
    aggregate_type: &str,
    event_type: &str,
    event_version: &str,
    payload: Value,
) -> (String, Value) {
    let mut version = event_version.to_string();
    let mut payload = payload;
    for step in STEPS {
        if step.aggregate_type == aggregate_type
            && step.event_type == event_type
            && step.from == version
        {
            payload = (step.upcast)(payload);
            version = step.to.to_string();
        }
    }
    (version, payload)
}

/// The (aggregate type, event type, version) of every old stored version
/// walletd still reads.
pub fn readable_old_versions() -> impl Iterator<Item = (&'static str, &'static str, &'static str)> {
    STEPS
        .iter()
        .map(|s| (s.aggregate_type, s.event_type, s.from))
}

/// cqrs-es's hook: the loader runs it on each stored event of the aggregate.
struct Upcaster {
    aggregate_type: &'static str,
}

impl EventUpcaster for Upcaster {
    fn can_upcast(&self, event_type: &str, event_version: &str) -> bool {
        STEPS.iter().any(|s| {
            s.aggregate_type == self.aggregate_type
                && s.event_type == event_type
                && s.from == event_version
        })
    }

    fn upcast(&self, event: SerializedEvent) -> SerializedEvent {
        let (event_version, payload) = current_form(
            &event.aggregate_type,
            &event.event_type,
            &event.event_version,
            event.payload,
        );
        SerializedEvent {
            event_version,
            payload,
            ..event
        }
    }
}

/// The upcasters of aggregate type `aggregate_type` (none for most).
pub(crate) fn upcasters(aggregate_type: &'static str) -> Vec<Box<dyn EventUpcaster>> {
    if STEPS.iter().any(|s| s.aggregate_type == aggregate_type) {
        vec![Box::new(Upcaster { aggregate_type })]
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn stored(version: &str, payload: Value) -> SerializedEvent {
        SerializedEvent::new(
            "w-1".into(),
            2,
            "wallet".into(),
            "MessageSigned".into(),
            version.into(),
            payload,
            json!({}),
        )
    }

    #[test]
    fn the_loader_upcasts_v1_message_signed_only() {
        let ups = upcasters("wallet");
        assert_eq!(ups.len(), 1);
        assert!(ups[0].can_upcast("MessageSigned", "1"));
        assert!(!ups[0].can_upcast("MessageSigned", "2"));
        assert!(!ups[0].can_upcast("WalletCreated", "1"));
        assert!(upcasters("user").is_empty() && upcasters("master_key").is_empty());

        let v1 = json!({"MessageSigned": {"scheme": "eip712", "digest": "0x00"}});
        let up = ups[0].upcast(stored("1", v1));
        assert_eq!(up.event_version, "2");
        assert_eq!(up.payload["MessageSigned"]["kind"], "typed_data");
        assert_eq!((up.aggregate_id.as_str(), up.sequence), ("w-1", 2));
    }

    #[test]
    fn current_versions_pass_through() {
        let v2 = json!({"MessageSigned": {"scheme": "eip191", "kind": "message"}});
        assert_eq!(
            current_form("wallet", "MessageSigned", "2", v2.clone()),
            ("2".to_string(), v2.clone())
        );
        // Another aggregate type's event of the same name is not touched.
        let other = json!({"MessageSigned": {"scheme": "eip191"}});
        assert_eq!(
            current_form("probe", "MessageSigned", "1", other.clone()),
            ("1".to_string(), other)
        );
    }
}
