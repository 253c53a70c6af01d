//! Audit reading and the security log.
//!
//! Successful changes are events, and the audit-log projection shows them with
//! who / how / where. Refused attempts (401, 403, 429) change nothing, so they
//! are not events: they are counted in memory ([`RefusalRecorder`]) and
//! written in batches, one row per source, reason and action per window, to
//! the append-only security log (refusals of a known principal) or to the
//! pruned `refusal_counts` (refusals of nobody in particular). The admin audit
//! endpoint pages through all three, merged by time.

pub mod query;
pub mod refusals;
pub mod security_log;

pub use query::{AuditFilter, AuditPage};
pub use refusals::RefusalRecorder;
pub use security_log::{Refusal, RefusalTally, SecurityLog};
