//! The one retry runner for work that lost an optimistic-concurrency race
//! and must be decided again from the start (a unit of work spanning
//! several aggregates; single commands retry inside the command queue).

use std::future::Future;
use std::time::Duration;

/// How many times a unit of work runs before the caller hears "contended".
pub const RETRIES: usize = 12;

/// One attempt's outcome as the runner sees it.
pub enum Attempt<E> {
    /// Lost a race: run again on fresh state.
    Retry,
    Fail(E),
}

/// Runs `attempt` until it succeeds or fails for good; after [`RETRIES`]
/// lost races the answer is `contended()`.
pub async fn retrying<T, E, F, Fut>(mut attempt: F, contended: impl FnOnce() -> E) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Attempt<E>>>,
{
    for n in 0..RETRIES {
        match attempt().await {
            Ok(v) => return Ok(v),
            Err(Attempt::Fail(e)) => return Err(e),
            Err(Attempt::Retry) => {
                if n + 1 < RETRIES {
                    crate::metrics::record_retry("unit_of_work");
                }
                backoff(n).await
            }
        }
    }
    Err(contended())
}

/// Waits a little longer after each lost race, with jitter so that the
/// racers do not collide again in lockstep.
pub async fn backoff(attempt: usize) {
    let mut b = [0u8; 1];
    let _ = getrandom::getrandom(&mut b);
    let ms = (1u64 << attempt.min(5)) + u64::from(b[0] % 8);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}
