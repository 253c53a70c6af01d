//! Commands on one aggregate inside this process take turns: a hot wallet's
//! concurrent commands queue here instead of racing each other on the event
//! store's (aggregate, sequence) key and retrying. Across processes the
//! store's optimistic concurrency still decides; this only removes the races
//! a process would otherwise have with itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::{Mutex as TurnLock, OwnedMutexGuard};

/// Below this many entries dead ones are left alone; above it, every
/// insertion that doubles the live count sweeps them.
const SWEEP_FLOOR: usize = 1024;

#[derive(Default)]
pub struct Turns {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    locks: HashMap<String, Weak<TurnLock<()>>>,
    sweep_at: usize,
}

/// This aggregate's turn; the next command on it waits until this is dropped.
pub struct Turn(#[allow(dead_code)] OwnedMutexGuard<()>);

impl Turns {
    /// Waits for `aggregate_id`'s turn (FIFO: tokio's mutex is fair).
    pub async fn take(&self, aggregate_id: &str) -> Turn {
        let lock = {
            let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            match inner.locks.get(aggregate_id).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(TurnLock::new(()));
                    inner
                        .locks
                        .insert(aggregate_id.to_string(), Arc::downgrade(&lock));
                    if inner.locks.len() > inner.sweep_at.max(SWEEP_FLOOR) {
                        inner.locks.retain(|_, w| w.strong_count() > 0);
                        inner.sweep_at = inner.locks.len() * 2;
                    }
                    lock
                }
            }
        };
        Turn(lock.lock_owned().await)
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.inner.lock().map(|i| i.locks.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_aggregate_one_turn_at_a_time() {
        let turns = Arc::new(Turns::default());
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let (turns, inside, most) = (turns.clone(), inside.clone(), most.clone());
                tokio::spawn(async move {
                    let _turn = turns.take("w1").await;
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 1);
        // Another aggregate does not wait for this one.
        let _a = turns.take("w1").await;
        let _b = turns.take("w2").await;
    }

    #[tokio::test]
    async fn finished_turns_are_forgotten() {
        let turns = Turns::default();
        for i in 0..5000 {
            let _t = turns.take(&format!("w{i}")).await;
        }
        assert!(
            turns.tracked() <= 2 * SWEEP_FLOOR + 1,
            "{}",
            turns.tracked()
        );
    }
}
