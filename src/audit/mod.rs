//! Audit reading and the security log.
//!
//! Successful changes are events, and the audit-log projection shows them with
//! who / how / where. Refused attempts (401, 403, 429) change nothing, so they
//! are not events; they go to the append-only security log instead. The admin
//! audit endpoint pages through both, merged by time.

pub mod query;
pub mod security_log;

pub use query::{AuditFilter, AuditPage};
pub use security_log::{Refusal, SecurityLog};
