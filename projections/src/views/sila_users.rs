//! Sila users: handle, the app that registered them, KYC state.

use super::{decode, stored, Projection};
use crate::log::StoredEvent;
use crate::stmt::Stmt;
use crate::ProjectionError;

pub struct SilaUsers;

impl Projection for SilaUsers {
    fn name(&self) -> &'static str {
        "sila_users"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["sila_users"]
    }

    fn apply(&self, event: &StoredEvent, _seq: i64) -> Result<Vec<Stmt>, ProjectionError> {
        let kyc = match event.event_type.as_str() {
            "UserRegistered" => {
                let e: stored::UserRegistered = decode(event)?;
                return Ok(vec![Stmt::row(
                    "INSERT INTO sila_users (handle, user_id, app_handle, kyc_status, registered_at, updated_at) VALUES",
                    "ON CONFLICT (handle) DO NOTHING",
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
        Ok(vec![Stmt::new(
            "UPDATE sila_users SET kyc_status = $2, updated_at = $3 WHERE handle = $1",
            vec![e.handle.into(), kyc.into(), e.at.into()],
        )])
    }
}
