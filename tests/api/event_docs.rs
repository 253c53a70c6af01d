//! `docs/events.md` is the stored event schema's contract: this fails when an
//! aggregate type, event type, version or payload field exists that the
//! document does not list, when it lists one that does not exist, or when one
//! of its JSON examples no longer reads as the current types.
//!
//! Every event variant has a sample below with every optional field set
//! (struct literals: a new field does not compile until it is given; no
//! `None` allowed). The matches in `*_type` have no wildcard, so a new
//! variant does not compile until it is named here, and
//! `samples_cover_every_variant` checks against serde's own list of
//! variants that it also has a sample.

use std::collections::{BTreeMap, BTreeSet};

use cqrs_es::DomainEvent;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use walletd::domain::account::{AccountEvent, Memo, MovementId, Reference, ReturnReason};
use walletd::domain::client_app::AppEvent;
use walletd::domain::key::{CustodyKind, KeyFreezeReason};
use walletd::domain::master_key::{MasterKeyEvent, MasterKeyId, MasterKeyScope};
use walletd::domain::money::{Amount, Asset, AssetCode};
use walletd::domain::user::UserEvent;
use walletd::domain::wallet::{SignatureKind, WalletEvent, WalletKind};
use walletd::domain::{
    Address, Handle, Nickname, RecoverableSignature, Timestamp, UserId, WalletId,
};
use walletd::store::upcast::{current_form, readable_old_versions};
use walletd::store::CommandMeta;

const DOC: &str = include_str!("../../docs/events.md");

fn at(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap()
}

fn address(hex: &str) -> Address {
    Address::parse(hex).unwrap()
}

fn signature(hex: &str) -> RecoverableSignature {
    RecoverableSignature::parse_hex(hex).unwrap()
}

fn wallet_id() -> WalletId {
    WalletId::parse("0b6c5d8e-3f2a-5c71-9e4d-8a1b2c3d4e5f").unwrap()
}

fn user_id() -> UserId {
    UserId::parse("user_123").unwrap()
}

fn handle() -> Handle {
    Handle::parse("alice.example").unwrap()
}

const ADDRESS: &str = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed";
const SIGNATURE: &str = "0x9242685bf161793cc25603c231bc2f568eb630ea16aa137d2664ac80388256084f8ae3bd7535248d0bd448298cc2e2071e56992d0774dc340c368ae950852ada1c";

// Samples begin: no optional field below is left unset (checked by
// `samples_set_every_optional_field`), so each sample shows every field.

/// One of each wallet event, every optional field set.
fn wallet_samples() -> Vec<WalletEvent> {
    vec![
        WalletEvent::WalletCreated {
            wallet_id: wallet_id(),
            user_id: user_id(),
            kind: WalletKind::Server,
            custody: CustodyKind::Mpc,
            key_id: "mpc-3f9a1c2e-7b44-4d0e-9a51-2c8e6f1d0b73".into(),
            address: address(ADDRESS),
            public_key: format!("0x04{}", "1f".repeat(64)),
            label: Some("treasury".into()),
            created_at: at("2026-12-01T10:00:00.000000Z"),
        },
        WalletEvent::WalletRegistered {
            wallet_id: WalletId::for_address(&address(ADDRESS)),
            user_id: UserId::for_handle(&handle()),
            address: address(ADDRESS),
            nickname: Some("savings".into()),
            ownership_proof: Some(signature(SIGNATURE)),
            registered_at: at("2026-12-01T10:00:00.000000Z"),
        },
        WalletEvent::DefaultWalletSet {
            wallet_id: wallet_id(),
            user_id: user_id(),
            at: at("2026-12-01T10:05:00.000000Z"),
        },
        WalletEvent::MessageSigned {
            wallet_id: wallet_id(),
            kind: SignatureKind::Transaction,
            scheme: "eip1559".into(),
            digest: format!("0x{}", "c2".repeat(32)),
            message_len: 82,
            signature: signature(SIGNATURE),
            requested_by: "apikey:3".into(),
            at: at("2026-12-01T10:06:00.000000Z"),
            chain_id: Some(11155111),
            primary_type: Some("Permit".into()),
            domain_name: Some("USD Coin".into()),
            verifying_contract: Some(address("0x1c7d4b196cb0c7b01d743fbc6116a902379c7238")),
            tx_nonce: Some(42),
            tx_to: Some(address("0x3535353535353535353535353535353535353535")),
            tx_value: Some("10000000000000000".into()),
            tx_hash: Some(format!("0x{}", "5c".repeat(32))),
        },
        WalletEvent::WhitelistQueued {
            wallet_id: wallet_id(),
            queued_at: at("2026-12-01T10:00:00.000000Z"),
            eligible_at: at("2026-12-01T10:05:00.000000Z"),
        },
        WalletEvent::WalletWhitelisted {
            wallet_id: wallet_id(),
            at: at("2026-12-01T10:05:00.200000Z"),
        },
        WalletEvent::WalletDeleted {
            wallet_id: wallet_id(),
            user_id: user_id(),
            address: address(ADDRESS),
            at: at("2026-12-02T08:00:00.000000Z"),
        },
        WalletEvent::WalletKeyFrozen {
            wallet_id: wallet_id(),
            key_id: "mpc-3f9a1c2e-7b44-4d0e-9a51-2c8e6f1d0b73".into(),
            reason: KeyFreezeReason::PeerBanned,
            at: at("2026-12-01T10:07:00.000000Z"),
        },
    ]
}

fn wallet_type(e: &WalletEvent) -> &'static str {
    match e {
        WalletEvent::WalletCreated { .. } => "WalletCreated",
        WalletEvent::WalletRegistered { .. } => "WalletRegistered",
        WalletEvent::DefaultWalletSet { .. } => "DefaultWalletSet",
        WalletEvent::MessageSigned { .. } => "MessageSigned",
        WalletEvent::WhitelistQueued { .. } => "WhitelistQueued",
        WalletEvent::WalletWhitelisted { .. } => "WalletWhitelisted",
        WalletEvent::WalletDeleted { .. } => "WalletDeleted",
        WalletEvent::WalletKeyFrozen { .. } => "WalletKeyFrozen",
    }
}

fn user_samples() -> Vec<UserEvent> {
    let nickname = Nickname::parse("savings").unwrap();
    vec![
        UserEvent::UserRegistered {
            handle: handle(),
            user_id: UserId::for_handle(&handle()),
            app: Handle::parse("acme.app").unwrap(),
            registered_at: at("2026-12-01T09:00:00.000000Z"),
        },
        UserEvent::WalletAttached {
            handle: handle(),
            wallet_id: WalletId::for_address(&address(ADDRESS)),
            address: address(ADDRESS),
            nickname: nickname.clone(),
            default: true,
            statements_enabled: false,
            at: at("2026-12-01T09:00:00.000000Z"),
        },
        UserEvent::WalletUpdated {
            handle: handle(),
            wallet_id: WalletId::for_address(&address(ADDRESS)),
            nickname: Some(nickname),
            default: Some(true),
            statements_enabled: Some(true),
            at: at("2026-12-01T09:30:00.000000Z"),
        },
        UserEvent::WalletDetached {
            handle: handle(),
            wallet_id: WalletId::for_address(&address(ADDRESS)),
            address: address(ADDRESS),
            at: at("2026-12-02T08:00:00.000000Z"),
        },
        UserEvent::KycRequested {
            handle: handle(),
            verification_id: uuid::Uuid::parse_str("7d3e2f10-4b5a-4c6d-8e9f-0a1b2c3d4e5f").unwrap(),
            at: at("2026-12-01T09:01:00.000000Z"),
        },
        UserEvent::KycPassed {
            handle: handle(),
            at: at("2026-12-01T09:02:00.000000Z"),
        },
        UserEvent::KycFailed {
            handle: handle(),
            at: at("2026-12-01T09:02:00.000000Z"),
        },
    ]
}

fn user_type(e: &UserEvent) -> &'static str {
    match e {
        UserEvent::UserRegistered { .. } => "UserRegistered",
        UserEvent::WalletAttached { .. } => "WalletAttached",
        UserEvent::WalletUpdated { .. } => "WalletUpdated",
        UserEvent::WalletDetached { .. } => "WalletDetached",
        UserEvent::KycRequested { .. } => "KycRequested",
        UserEvent::KycPassed { .. } => "KycPassed",
        UserEvent::KycFailed { .. } => "KycFailed",
    }
}

fn app_samples() -> Vec<AppEvent> {
    let app = Handle::parse("acme.app").unwrap();
    vec![
        AppEvent::AppRegistered {
            handle: app.clone(),
            address: address(ADDRESS),
            registered_at: at("2026-12-01T08:00:00.000000Z"),
        },
        AppEvent::AppAddressAdded {
            handle: app.clone(),
            address: address("0x3535353535353535353535353535353535353535"),
            at: at("2026-12-01T08:30:00.000000Z"),
        },
        AppEvent::AppAddressRemoved {
            handle: app,
            address: address(ADDRESS),
            at: at("2026-12-01T08:31:00.000000Z"),
        },
    ]
}

fn app_type(e: &AppEvent) -> &'static str {
    match e {
        AppEvent::AppRegistered { .. } => "AppRegistered",
        AppEvent::AppAddressAdded { .. } => "AppAddressAdded",
        AppEvent::AppAddressRemoved { .. } => "AppAddressRemoved",
    }
}

fn master_key_samples() -> Vec<MasterKeyEvent> {
    vec![MasterKeyEvent::MasterKeyRotated {
        scope: MasterKeyScope::Walletd,
        from_key_id: MasterKeyId::parse("3c1f0a9e5b7d2e44").unwrap(),
        to_key_id: MasterKeyId::parse("a81e6c0d94f2b357").unwrap(),
        rewrapped: 1204,
        at: at("2026-12-03T02:00:00.000000Z"),
    }]
}

fn master_key_type(e: &MasterKeyEvent) -> &'static str {
    match e {
        MasterKeyEvent::MasterKeyRotated { .. } => "MasterKeyRotated",
    }
}

fn account_samples() -> Vec<AccountEvent> {
    let usd = Asset::new(AssetCode::parse("USD").unwrap(), 2).unwrap();
    let movement = MovementId::parse("0d9e8f7a-6b5c-4d3e-8f2a-1b0c9d8e7f6a").unwrap();
    let source = WalletId::for_address(&address(ADDRESS));
    vec![
        AccountEvent::FundsIssued {
            wallet_id: source,
            movement_id: MovementId::parse("6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f").unwrap(),
            asset: Asset::sila(),
            amount: Amount::from_minor(10_000),
            funding_reference: Reference::parse("ach-2026-12-01-0042").unwrap(),
            requested_by: "sila:acme.app/alice.example".into(),
            at: at("2026-12-01T10:00:00.000000Z"),
        },
        AccountEvent::TransferDebited {
            wallet_id: source,
            movement_id: movement,
            asset: usd.clone(),
            amount: Amount::from_minor(1234),
            to_wallet: wallet_id(),
            memo: Some(Memo::parse("rent, December").unwrap()),
            requested_by: "jwt:alice".into(),
            at: at("2026-12-01T10:01:00.000000Z"),
        },
        AccountEvent::TransferCredited {
            wallet_id: wallet_id(),
            movement_id: movement,
            asset: usd.clone(),
            amount: Amount::from_minor(1234),
            from_wallet: source,
            at: at("2026-12-01T10:01:00.150000Z"),
        },
        AccountEvent::TransferReturned {
            wallet_id: source,
            movement_id: movement,
            asset: usd.clone(),
            amount: Amount::from_minor(1234),
            to_wallet: wallet_id(),
            reason: ReturnReason::DestinationFrozen,
            at: at("2026-12-01T10:01:00.150000Z"),
        },
        AccountEvent::TransferSettled {
            wallet_id: source,
            movement_id: movement,
            asset: usd,
            amount: Amount::from_minor(1234),
            to_wallet: wallet_id(),
            at: at("2026-12-01T10:01:00.300000Z"),
        },
        AccountEvent::FundsRedeemed {
            wallet_id: source,
            movement_id: MovementId::parse("3c2b1a0f-9e8d-4c7b-a6f5-e4d3c2b1a0f9").unwrap(),
            asset: Asset::sila(),
            amount: Amount::from_minor(2500),
            destination_reference: Reference::parse("payout-7781").unwrap(),
            requested_by: "sila:acme.app/alice.example".into(),
            at: at("2026-12-01T11:00:00.000000Z"),
        },
    ]
}

fn account_type(e: &AccountEvent) -> &'static str {
    match e {
        AccountEvent::FundsIssued { .. } => "FundsIssued",
        AccountEvent::TransferDebited { .. } => "TransferDebited",
        AccountEvent::TransferCredited { .. } => "TransferCredited",
        AccountEvent::TransferReturned { .. } => "TransferReturned",
        AccountEvent::TransferSettled { .. } => "TransferSettled",
        AccountEvent::FundsRedeemed { .. } => "FundsRedeemed",
    }
}

// Samples end.

/// Values of the closed vocabularies events carry, each of which the
/// document must name (exhaustive matches: a new value does not compile
/// until it is listed here).
fn vocabularies() -> Vec<&'static str> {
    let kind = |k: SignatureKind| match k {
        SignatureKind::Message | SignatureKind::TypedData | SignatureKind::Transaction => {
            k.as_str()
        }
    };
    let reason = |r: KeyFreezeReason| match r {
        KeyFreezeReason::PeerBanned | KeyFreezeReason::ShareFrozen => r.as_str(),
    };
    let scope = |s: MasterKeyScope| match s {
        MasterKeyScope::Walletd | MasterKeyScope::Cosigner => s.as_str(),
    };
    let wallet_kind = |k: WalletKind| match k {
        WalletKind::Server | WalletKind::Custodial | WalletKind::External => k.as_str(),
    };
    let custody = |c: CustodyKind| match c {
        CustodyKind::Local | CustodyKind::Mpc => c.as_str(),
    };
    let return_reason = |r: ReturnReason| match r {
        ReturnReason::DestinationDeleted
        | ReturnReason::DestinationFrozen
        | ReturnReason::DestinationNotWhitelisted
        | ReturnReason::DestinationRefused => r.as_str(),
    };
    vec![
        kind(SignatureKind::Message),
        kind(SignatureKind::TypedData),
        kind(SignatureKind::Transaction),
        reason(KeyFreezeReason::PeerBanned),
        reason(KeyFreezeReason::ShareFrozen),
        scope(MasterKeyScope::Walletd),
        scope(MasterKeyScope::Cosigner),
        wallet_kind(WalletKind::Server),
        wallet_kind(WalletKind::Custodial),
        wallet_kind(WalletKind::External),
        custody(CustodyKind::Local),
        custody(CustodyKind::Mpc),
        return_reason(ReturnReason::DestinationDeleted),
        return_reason(ReturnReason::DestinationFrozen),
        return_reason(ReturnReason::DestinationNotWhitelisted),
        return_reason(ReturnReason::DestinationRefused),
    ]
}

/// A sample as stored: (aggregate type, event type, version, payload).
struct Stored {
    aggregate: &'static str,
    event_type: String,
    version: String,
    payload: Value,
}

fn stored<E: DomainEvent>(aggregate: &'static str, events: Vec<E>) -> Vec<Stored> {
    events
        .into_iter()
        .map(|e| Stored {
            aggregate,
            event_type: e.event_type(),
            version: e.event_version(),
            payload: serde_json::to_value(&e).unwrap(),
        })
        .collect()
}

fn all_samples() -> Vec<Stored> {
    let mut out = stored("wallet", wallet_samples());
    out.extend(stored("user", user_samples()));
    out.extend(stored("app", app_samples()));
    out.extend(stored("master_key", master_key_samples()));
    out.extend(stored("account", account_samples()));
    out
}

/// (aggregate type, event type, version).
type EventKey = (String, String, String);

/// One `### \`Type\` vN` section of the document.
#[derive(Debug, Default)]
struct Section {
    aggregate: String,
    fields: BTreeSet<String>,
    examples: Vec<Value>,
}

/// The document's sections by (aggregate, event type, version), and the
/// keys its metadata table lists.
fn parse_doc() -> (BTreeMap<EventKey, Section>, BTreeSet<String>) {
    let mut sections: BTreeMap<EventKey, Section> = BTreeMap::new();
    let mut metadata = BTreeSet::new();
    let mut aggregate = String::new();
    let mut current: Option<EventKey> = None;
    let mut in_metadata = false;
    let mut json: Option<String> = None;
    for line in DOC.lines() {
        if let Some(buf) = &mut json {
            if line.trim_start().starts_with("```") {
                if let Some(key) = &current {
                    let value: Value = serde_json::from_str(buf)
                        .unwrap_or_else(|e| panic!("example of {key:?} is not JSON: {e}"));
                    sections.get_mut(key).unwrap().examples.push(value);
                }
                json = None;
            } else {
                buf.push_str(line);
                buf.push('\n');
            }
            continue;
        }
        if line.trim_start().starts_with("```json") {
            json = Some(String::new());
            continue;
        }
        if let Some(rest) = line.strip_prefix("## ") {
            current = None;
            in_metadata = rest.trim() == "Metadata";
            aggregate = rest
                .strip_prefix("Aggregate `")
                .and_then(|r| r.split('`').next())
                .unwrap_or_default()
                .to_string();
            continue;
        }
        if let Some(rest) = line.strip_prefix("### `") {
            let (event_type, tail) = rest.split_once('`').expect("### `Type` vN");
            let version = tail
                .trim()
                .strip_prefix('v')
                .and_then(|v| v.split_whitespace().next())
                .unwrap_or_else(|| panic!("heading of {event_type} names no version: {line}"));
            assert!(
                !aggregate.is_empty(),
                "{event_type} is outside an aggregate"
            );
            let key = (
                aggregate.clone(),
                event_type.to_string(),
                version.to_string(),
            );
            assert!(!sections.contains_key(&key), "{key:?} documented twice");
            sections.insert(
                key.clone(),
                Section {
                    aggregate: aggregate.clone(),
                    ..Section::default()
                },
            );
            current = Some(key);
            continue;
        }
        if let Some(rest) = line.strip_prefix("| `") {
            let name = rest.split('`').next().unwrap().to_string();
            if let Some(key) = &current {
                sections.get_mut(key).unwrap().fields.insert(name);
            } else if in_metadata {
                metadata.insert(name);
            }
        }
    }
    (sections, metadata)
}

/// The body's field names (the object inside the type tag), with the keys
/// of nested objects as `parent.child`.
fn field_names(payload: &Value) -> BTreeSet<String> {
    fn walk(prefix: &str, v: &Value, out: &mut BTreeSet<String>) {
        if let Value::Object(m) = v {
            for (k, v) in m {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                walk(&name, v, out);
                out.insert(name);
            }
        }
    }
    let mut out = BTreeSet::new();
    let body = payload
        .as_object()
        .and_then(|m| m.values().next())
        .unwrap_or(&Value::Null);
    walk("", body, &mut out);
    out
}

/// The example, read as the aggregate's current event type (after the
/// upcasters) and written back: it must come out as the upcast example.
fn round_trip<E: Serialize + DeserializeOwned>(
    aggregate: &str,
    event_type: &str,
    version: &str,
    example: &Value,
) -> Result<(), String> {
    let (_, current) = current_form(aggregate, event_type, version, example.clone());
    let event: E = serde_json::from_value(current.clone()).map_err(|e| e.to_string())?;
    let again = serde_json::to_value(&event).map_err(|e| e.to_string())?;
    if again != current {
        return Err(format!("reads back as {again}"));
    }
    Ok(())
}

#[test]
fn every_event_type_version_and_field_is_documented() {
    let (sections, _) = parse_doc();
    let mut missing = Vec::new();
    for s in all_samples() {
        let key = (
            s.aggregate.to_string(),
            s.event_type.clone(),
            s.version.clone(),
        );
        let Some(section) = sections.get(&key) else {
            missing.push(format!(
                "{} `{}` v{} has no section",
                s.aggregate, s.event_type, s.version
            ));
            continue;
        };
        let fields = field_names(&s.payload);
        let tag = s.payload.as_object().and_then(|m| m.keys().next().cloned());
        assert_eq!(
            tag.as_deref(),
            Some(s.event_type.as_str()),
            "externally tagged"
        );
        for f in fields.difference(&section.fields) {
            missing.push(format!(
                "`{}` v{}: field `{f}` is not listed",
                s.event_type, s.version
            ));
        }
        for f in section.fields.difference(&fields) {
            missing.push(format!(
                "`{}` v{}: lists `{f}`, which the event does not have (or its sample leaves unset)",
                s.event_type, s.version
            ));
        }
    }
    assert!(
        missing.is_empty(),
        "docs/events.md is out of date:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_documented_version_exists_or_is_upcast() {
    let (sections, _) = parse_doc();
    let current: BTreeSet<EventKey> = all_samples()
        .into_iter()
        .map(|s| (s.aggregate.to_string(), s.event_type, s.version))
        .collect();
    let old: BTreeSet<EventKey> = readable_old_versions()
        .map(|(a, t, v)| (a.to_string(), t.to_string(), v.to_string()))
        .collect();
    for key in sections.keys() {
        assert!(
            current.contains(key) || old.contains(key),
            "docs/events.md documents {key:?}, which walletd neither writes nor upcasts"
        );
    }
    // Every version walletd still reads is documented too.
    for key in &old {
        assert!(
            sections.contains_key(key),
            "old version {key:?} is not documented"
        );
    }
}

#[test]
fn every_example_reads_as_the_current_types() {
    let (sections, _) = parse_doc();
    for ((aggregate, event_type, version), section) in &sections {
        assert!(
            !section.examples.is_empty(),
            "`{event_type}` v{version} has no JSON example"
        );
        // Complete examples: together they show every field of the table,
        // and no other.
        let shown: BTreeSet<String> = section.examples.iter().flat_map(field_names).collect();
        assert_eq!(
            shown, section.fields,
            "`{event_type}` v{version}: the examples' fields are not the table's"
        );
        for example in &section.examples {
            let read = match section.aggregate.as_str() {
                "wallet" => round_trip::<WalletEvent>(aggregate, event_type, version, example),
                "user" => round_trip::<UserEvent>(aggregate, event_type, version, example),
                "app" => round_trip::<AppEvent>(aggregate, event_type, version, example),
                "master_key" => {
                    round_trip::<MasterKeyEvent>(aggregate, event_type, version, example)
                }
                "account" => round_trip::<AccountEvent>(aggregate, event_type, version, example),
                other => Err(format!("unknown aggregate type {other}")),
            };
            if let Err(e) = read {
                panic!("an example of `{event_type}` v{version} does not read as the current type: {e}");
            }
            let tag = example.as_object().and_then(|m| m.keys().next());
            assert_eq!(tag, Some(event_type), "the example is tagged with its type");
        }
    }
}

/// Serde's own list of an enum's variants, from the error on an unknown one.
fn serde_variants<E: DeserializeOwned>() -> BTreeSet<String> {
    let err = serde_json::from_value::<E>(serde_json::json!({"__no_such_variant__": {}}))
        .err()
        .expect("an unknown variant is refused")
        .to_string();
    let list = err
        .split("expected one of ")
        .nth(1)
        .or_else(|| err.split("expected ").nth(1))
        .unwrap_or_else(|| panic!("unexpected serde error: {err}"));
    list.split(',')
        .filter_map(|v| v.split('`').nth(1))
        .map(str::to_owned)
        .collect()
}

#[test]
fn samples_cover_every_variant() {
    let named = |names: Vec<&'static str>| -> BTreeSet<String> {
        names.into_iter().map(str::to_owned).collect()
    };
    assert_eq!(
        named(wallet_samples().iter().map(wallet_type).collect()),
        serde_variants::<WalletEvent>()
    );
    assert_eq!(
        named(user_samples().iter().map(user_type).collect()),
        serde_variants::<UserEvent>()
    );
    assert_eq!(
        named(app_samples().iter().map(app_type).collect()),
        serde_variants::<AppEvent>()
    );
    assert_eq!(
        named(master_key_samples().iter().map(master_key_type).collect()),
        serde_variants::<MasterKeyEvent>()
    );
    assert_eq!(
        named(account_samples().iter().map(account_type).collect()),
        serde_variants::<AccountEvent>()
    );
    // The event type stored is the variant's name.
    for s in all_samples() {
        assert!(s.payload.get(&s.event_type).is_some(), "{}", s.event_type);
    }
}

/// An optional field left `None` in a sample would be neither serialized
/// nor required in the document; the samples may not do that.
#[test]
fn samples_set_every_optional_field() {
    let source = include_str!("event_docs.rs");
    let (start, end) = (
        source.find("// Samples begin").unwrap(),
        source.find("// Samples end").unwrap(),
    );
    let samples = &source[start..end];
    assert!(
        !samples.contains("None") && !samples.contains("Default::default"),
        "a sample leaves an optional field unset"
    );
}

#[test]
fn every_value_of_a_closed_vocabulary_is_documented() {
    for value in vocabularies() {
        assert!(
            DOC.contains(&format!("`{value}`")),
            "docs/events.md does not name `{value}`"
        );
    }
}

#[test]
fn every_metadata_key_is_documented() {
    let (_, documented) = parse_doc();
    let mut meta = CommandMeta::system("cli");
    meta.role = Some("ADMIN".into());
    meta.client_addr = Some("203.0.113.7".into());
    meta.idempotency_key = Some("k-1".into());
    let keys: BTreeSet<String> = meta.to_map().into_keys().collect();
    assert_eq!(keys, documented, "the metadata table of docs/events.md");
}
