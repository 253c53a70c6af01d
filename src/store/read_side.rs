//! Read-your-writes: a command answers only once the projections have applied
//! its events, so the client can read its own write at once.

use std::time::Duration;

use walletd_projections::{LogPosition, ProjectorHandle};

/// The longest a command waits for the read side. While the projector is
/// known to be stuck (see `ProjectorHandle::wait_for`) the wait is far
/// shorter, so one long transaction elsewhere does not cost every command
/// this whole timeout.
pub const READ_YOUR_WRITES_TIMEOUT: Duration = Duration::from_secs(10);

/// Waits until the event at `at` is projected, or gives up. Giving up is not
/// an error: the write is committed and the client gets its answer; the
/// projector logs the stall itself (rate-limited), so this stays quiet.
pub async fn wait(projector: &ProjectorHandle, at: LogPosition) {
    if projector
        .wait_for(at, READ_YOUR_WRITES_TIMEOUT)
        .await
        .is_err()
    {
        tracing::debug!(
            tx_id = at.tx_id,
            position = at.position,
            "answering before the projections reached a committed event"
        );
    }
}
