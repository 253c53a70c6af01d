//! What the ledger's read models share: the stored `account` events
//! (docs/events.md, "Aggregate `account`") read as one shape, and amounts,
//! which are decimal strings of minor units up to 2^128 − 1.

use serde::Deserialize;

use super::decode;
use crate::log::StoredEvent;
use crate::ProjectionError;

/// The account event types, as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Issued,
    Debited,
    Credited,
    Returned,
    Settled,
    Redeemed,
}

/// One account event; which optional fields are present depends on `kind`
/// (checked by [`read`]).
#[derive(Deserialize)]
pub(crate) struct Body {
    pub wallet_id: String,
    pub movement_id: String,
    pub asset: String,
    pub decimals: u8,
    pub amount: String,
    #[serde(default)]
    pub to_wallet: Option<String>,
    #[serde(default)]
    pub from_wallet: Option<String>,
    #[serde(default)]
    pub memo: Option<String>,
    #[serde(default)]
    pub funding_reference: Option<String>,
    #[serde(default)]
    pub destination_reference: Option<String>,
    #[serde(default)]
    pub requested_by: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    pub at: String,
}

pub(crate) struct AccountEvent {
    pub kind: Kind,
    pub body: Body,
    pub amount: u128,
}

/// The event read, when it is an account event; every version-1 field the
/// event type requires must be there and the amount must be well formed.
pub(crate) fn read(event: &StoredEvent) -> Result<Option<AccountEvent>, ProjectionError> {
    if event.aggregate_type != "account" {
        return Ok(None);
    }
    let kind = match event.event_type.as_str() {
        "FundsIssued" => Kind::Issued,
        "TransferDebited" => Kind::Debited,
        "TransferCredited" => Kind::Credited,
        "TransferReturned" => Kind::Returned,
        "TransferSettled" => Kind::Settled,
        "FundsRedeemed" => Kind::Redeemed,
        _ => return Ok(None),
    };
    let undecodable = |reason: String| ProjectionError::Undecodable {
        position: event.at.position,
        event_type: event.event_type.clone(),
        version: event.event_version.clone(),
        reason,
    };
    let body: Body = decode(event)?;
    let required: &[(&str, bool)] = match kind {
        Kind::Issued => &[
            ("funding_reference", body.funding_reference.is_some()),
            ("requested_by", body.requested_by.is_some()),
        ],
        Kind::Debited => &[
            ("to_wallet", body.to_wallet.is_some()),
            ("requested_by", body.requested_by.is_some()),
        ],
        Kind::Credited => &[("from_wallet", body.from_wallet.is_some())],
        Kind::Returned => &[
            ("to_wallet", body.to_wallet.is_some()),
            ("reason", body.reason.is_some()),
        ],
        Kind::Settled => &[("to_wallet", body.to_wallet.is_some())],
        Kind::Redeemed => &[
            (
                "destination_reference",
                body.destination_reference.is_some(),
            ),
            ("requested_by", body.requested_by.is_some()),
        ],
    };
    if let Some((field, _)) = required.iter().find(|(_, present)| !present) {
        return Err(undecodable(format!("missing field `{field}`")));
    }
    let amount = match parse_amount(&body.amount) {
        Some(0) | None => {
            return Err(undecodable(
                "`amount` is not a decimal integer of minor units above zero and below 2^128"
                    .into(),
            ))
        }
        Some(n) => n,
    };
    Ok(Some(AccountEvent { kind, body, amount }))
}

/// A stored amount: ASCII digits, no sign, no leading zero (but "0"), at
/// most 2^128 − 1. `u128::from_str` alone would also take a leading `+`.
pub(crate) fn parse_amount(s: &str) -> Option<u128> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if !canonical {
        return None;
    }
    s.parse().ok()
}

/// `row[col] += by` for a column of amounts, refusing to pass 2^128 − 1.
pub(crate) fn add(row: &mut [crate::stmt::Val], col: usize, by: u128) -> Result<(), String> {
    let now = held(row, col)?;
    let next = now
        .checked_add(by)
        .ok_or_else(|| format!("{now} + {by} exceeds the largest amount"))?;
    row[col] = next.to_string().into();
    Ok(())
}

/// `row[col] -= by` for a column of amounts, refusing to go below zero.
pub(crate) fn sub(row: &mut [crate::stmt::Val], col: usize, by: u128) -> Result<(), String> {
    let now = held(row, col)?;
    let next = now
        .checked_sub(by)
        .ok_or_else(|| format!("{now} - {by} is below zero"))?;
    row[col] = next.to_string().into();
    Ok(())
}

fn held(row: &[crate::stmt::Val], col: usize) -> Result<u128, String> {
    match row.get(col) {
        Some(crate::stmt::Val::Text(t)) => {
            parse_amount(t).ok_or_else(|| format!("a stored amount {t:?} is malformed"))
        }
        _ => Err("an amount column holds another type".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_canonical_decimal_minor_units_up_to_u128() {
        assert_eq!(parse_amount("0"), Some(0));
        assert_eq!(parse_amount("1234"), Some(1234));
        assert_eq!(
            parse_amount("340282366920938463463374607431768211455"),
            Some(u128::MAX)
        );
        for bad in [
            "",
            "+1",
            "-1",
            "01",
            "1.5",
            "1e3",
            " 1",
            "340282366920938463463374607431768211456",
        ] {
            assert_eq!(parse_amount(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn sums_are_checked() {
        let mut row = vec![crate::stmt::Val::Text(u128::MAX.to_string())];
        assert!(add(&mut row, 0, 1).is_err());
        sub(&mut row, 0, u128::MAX).unwrap();
        assert_eq!(row[0], crate::stmt::Val::Text("0".into()));
        assert!(sub(&mut row, 0, 1).is_err());
        add(&mut row, 0, 18_446_744_073_709_551_616).unwrap();
        assert_eq!(
            row[0],
            crate::stmt::Val::Text("18446744073709551616".into())
        );
    }

    use std::collections::HashMap;

    use serde_json::json;

    use crate::log::LogPosition;
    use crate::stmt::Val;
    use crate::views::{ledger_balances, ledger_movements, ledger_supply, Projection};
    use crate::write_set::{Row, WriteSet};

    const A: &str = "4a1e7c55-2b9d-5f03-8c6e-1d2f3a4b5c6d";
    const B: &str = "0b6c5d8e-3f2a-5c71-9e4d-8a1b2c3d4e5f";

    fn event(n: i64, event_type: &str, body: serde_json::Value) -> StoredEvent {
        StoredEvent {
            at: LogPosition {
                tx_id: 0,
                position: n,
            },
            aggregate_type: "account".into(),
            aggregate_id: body["wallet_id"].as_str().unwrap_or_default().into(),
            sequence: n,
            event_type: event_type.into(),
            event_version: "1".into(),
            payload: json!({ event_type: body }),
            metadata: json!({}),
        }
    }

    fn body(
        wallet: &str,
        movement: &str,
        amount: &str,
        extra: serde_json::Value,
    ) -> serde_json::Value {
        let mut b = json!({
            "wallet_id": wallet, "movement_id": movement, "asset": "USD", "decimals": 2,
            "amount": amount, "at": "2026-12-01T10:00:00.000000Z",
        });
        if let (Some(b), Some(extra)) = (b.as_object_mut(), extra.as_object()) {
            b.extend(extra.clone());
        }
        b
    }

    /// Every ledger projection over `events` in one pass on empty tables.
    fn fold(events: &[StoredEvent]) -> Result<HashMap<&'static str, Vec<Row>>, ProjectionError> {
        let views: Vec<Box<dyn Projection>> = vec![
            Box::new(ledger_balances::LedgerBalances),
            Box::new(ledger_movements::LedgerMovements),
            Box::new(ledger_supply::LedgerSupply),
        ];
        let mut ws = WriteSet::default();
        for (i, e) in events.iter().enumerate() {
            for v in &views {
                ws.extend(v.apply(e, i as i64 + 1)?);
            }
        }
        Ok(ws
            .fold(HashMap::new())?
            .into_iter()
            .map(|(t, w)| (t.name, w.insert))
            .collect())
    }

    #[test]
    fn a_delivered_transfer_settles_both_legs_and_keeps_the_memo() {
        let big = "18446744073709551617";
        let rows = fold(&[
            event(
                1,
                "FundsIssued",
                body(
                    A,
                    "m1",
                    big,
                    json!({"funding_reference": "f", "requested_by": "jwt:i"}),
                ),
            ),
            event(
                2,
                "TransferDebited",
                body(
                    A,
                    "m2",
                    "7",
                    json!({"to_wallet": B, "memo": "rent", "requested_by": "jwt:a"}),
                ),
            ),
            event(
                3,
                "TransferCredited",
                body(B, "m2", "7", json!({"from_wallet": A})),
            ),
            event(
                4,
                "TransferSettled",
                body(A, "m2", "7", json!({"to_wallet": B})),
            ),
            event(5, "WalletCreated", json!({})),
        ])
        .unwrap();
        let balance = |w: &str| {
            rows["ledger_balances"]
                .iter()
                .find(|r| r[0] == Val::Text(w.into()))
                .map(|r| r[3].clone())
        };
        assert_eq!(balance(A), Some(Val::Text("18446744073709551610".into())));
        assert_eq!(balance(B), Some(Val::Text("7".into())));
        let moves = &rows["ledger_movements"];
        assert_eq!(moves.len(), 3);
        let leg = |kind: &str| {
            moves
                .iter()
                .find(|r| r[2] == Val::Text(kind.into()))
                .unwrap()
        };
        assert_eq!(leg("transfer_out")[7], Val::Text("settled".into()));
        assert_eq!(leg("transfer_in")[7], Val::Text("settled".into()));
        assert_eq!(leg("transfer_in")[8], Val::OptText(Some("rent".into())));
        assert_eq!(leg("transfer_in")[9], Val::OptText(Some("jwt:a".into())));
        assert_eq!(
            rows["ledger_supply"][0][2..5],
            [
                Val::Text(big.into()),
                Val::Text("0".into()),
                Val::Text("0".into())
            ]
        );
    }

    #[test]
    fn impossible_logs_are_refused_not_recorded() {
        // A debit with nothing to debit would take the balance below zero.
        let below = fold(&[event(
            1,
            "FundsRedeemed",
            body(
                A,
                "m1",
                "1",
                json!({"destination_reference": "p", "requested_by": "x"}),
            ),
        )]);
        assert!(
            matches!(below, Err(ProjectionError::Inconsistent { .. })),
            "{below:?}"
        );
        // Issued past 2^128 − 1.
        let max = u128::MAX.to_string();
        let issue = |m: &str, amount: &str| {
            event(
                1,
                "FundsIssued",
                body(
                    A,
                    m,
                    amount,
                    json!({"funding_reference": "f", "requested_by": "x"}),
                ),
            )
        };
        assert!(matches!(
            fold(&[issue("m1", &max), issue("m2", "1")]),
            Err(ProjectionError::Inconsistent { .. })
        ));
        // Not minor units, or a required field missing.
        for bad in ["+1", "0", "1.0", "01"] {
            assert!(
                matches!(
                    fold(&[issue("m1", bad)]),
                    Err(ProjectionError::Undecodable { .. })
                ),
                "{bad}"
            );
        }
        let no_ref = event(
            1,
            "FundsIssued",
            body(A, "m1", "1", json!({"requested_by": "x"})),
        );
        assert!(matches!(
            fold(&[no_ref]),
            Err(ProjectionError::Undecodable { .. })
        ));
    }
}
