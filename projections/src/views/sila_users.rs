//! Sila users: handle, the app that registered them, KYC state.

use super::{decode, stored, Projection};
use crate::log::StoredEvent;
use crate::table::{col, ColType::*, Table};
use crate::write_set::Op;
use crate::ProjectionError;

pub struct SilaUsers;

pub static TABLE: Table = Table {
    name: "sila_users",
    columns: &[
        col("handle", Text),
        col("user_id", Text),
        col("app_handle", Text),
        col("kyc_status", Text),
        col("registered_at", Text),
        col("updated_at", Text),
    ],
    key: &[0],
    lookups: &[],
    append_only: false,
};
const KYC_STATUS: usize = 3;
const UPDATED_AT: usize = 5;

impl Projection for SilaUsers {
    fn name(&self) -> &'static str {
        "sila_users"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["sila_users"]
    }

    fn apply(&self, event: &StoredEvent, _seq: i64) -> Result<Vec<Op>, ProjectionError> {
        let kyc = match event.event_type.as_str() {
            "UserRegistered" => {
                let e: stored::UserRegistered = decode(event)?;
                return Ok(vec![Op::insert(
                    &TABLE,
                    vec![
                        e.handle.into(),
                        e.user_id.into(),
                        e.app.into(),
                        "unverified".into(),
                        e.registered_at.clone().into(),
                        e.registered_at.into(),
                    ],
                )]);
            }
            "KycRequested" => "pending",
            "KycPassed" => "passed",
            "KycFailed" => "failed",
            _ => return Ok(vec![]),
        };
        let e: stored::UserChange = decode(event)?;
        Ok(vec![Op::update(
            &TABLE,
            vec![e.handle.into()],
            move |row| {
                row[KYC_STATUS] = kyc.into();
                row[UPDATED_AT] = e.at.clone().into();
            },
        )])
    }
}
