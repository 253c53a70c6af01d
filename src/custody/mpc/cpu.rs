//! Where the protocol's CPU work runs: dedicated threads, one per core for
//! each of two lanes, shared by both parties of this process.
//!
//! A DKLs23 step takes milliseconds (signing) to hundreds of milliseconds
//! (key generation: its base-OT set-up and verification). Run on an async
//! worker — an actix request worker, or the runtime of the key pool — it
//! stalls every other task of that worker: health checks and reads wait
//! behind a key generation. So every step (the protocol's phases, encoding
//! and decoding its messages, sealing them for the channel) is handed to
//! these threads, and the async side only awaits the result.
//!
//! Why not `spawn_blocking`: tokio's blocking pool grows to hundreds of
//! threads, so a burst of key generations would start hundreds of steps at
//! once; every one, signatures included, would slow down together and
//! memory would grow with the burst. Here at most one step per core runs in
//! each lane, and the rest wait in that lane's queue, first come first
//! served.
//!
//! Why two lanes: a key generation step runs for up to a few hundred
//! milliseconds and cannot be cut. In one shared set of threads, a signature
//! arriving while every thread is in such a step would wait for one to end.
//! Signing has threads of its own instead, so its steps start at once and
//! share the cores with key generation through the operating system's
//! scheduler; with no signing to do, key generation still has every core.
//! Key generation keeps the normal priority: at a lower one (nice +10 was
//! tried) anything else busy on the host starved it, down to 0.3 keys/s
//! here, and creates waiting for keys ran into their bound.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::MpcError;

/// Which threads run a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    /// Signing, and the short work of every exchange (the channel's
    /// encryption, decoding signing messages, opening shares): steps whose
    /// latency matters.
    Sign,
    /// Key generation: long steps; throughput matters.
    Keygen,
}

impl Lane {
    fn name(self) -> &'static str {
        match self {
            Lane::Sign => "mpc-sign",
            Lane::Keygen => "mpc-keygen",
        }
    }
}

type Job = Box<dyn FnOnce() + Send + 'static>;

/// One lane: its threads and their queue.
struct Threads {
    queue: Mutex<VecDeque<Job>>,
    ready: Condvar,
}

impl Threads {
    fn start(lane: Lane, n: usize) -> Arc<Threads> {
        let threads = Arc::new(Threads {
            queue: Mutex::new(VecDeque::new()),
            ready: Condvar::new(),
        });
        for i in 0..n {
            let t = threads.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("{}-{i}", lane.name()))
                .spawn(move || t.work());
            if let Err(e) = spawned {
                // Fewer threads still serve the lane.
                tracing::error!(error = %e, "cannot start an MPC protocol thread");
            }
        }
        threads
    }

    fn work(&self) {
        loop {
            let job = {
                let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
                loop {
                    if let Some(job) = q.pop_front() {
                        break job;
                    }
                    q = self.ready.wait(q).unwrap_or_else(|p| p.into_inner());
                }
            };
            job();
        }
    }

    fn push(&self, job: Job) {
        self.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(job);
        self.ready.notify_one();
    }
}

/// The protocol threads: both lanes.
pub struct Pool {
    sign: Arc<Threads>,
    keygen: Arc<Threads>,
    per_lane: usize,
}

static GLOBAL: OnceLock<Pool> = OnceLock::new();

/// The process's protocol threads, one per core in each lane, started on
/// first use.
pub fn global() -> &'static Pool {
    GLOBAL.get_or_init(|| {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        Pool::start(cores)
    })
}

/// Runs `step` on the process's protocol threads (see [`Pool::run`]).
pub async fn run<T, F>(lane: Lane, step: F) -> Result<T, MpcError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    global().run(lane, step).await
}

impl Pool {
    /// `per_lane` threads (at least one) in each lane.
    pub fn start(per_lane: usize) -> Pool {
        let per_lane = per_lane.max(1);
        Pool {
            sign: Threads::start(Lane::Sign, per_lane),
            keygen: Threads::start(Lane::Keygen, per_lane),
            per_lane,
        }
    }

    /// Threads per lane: how many steps of one lane run at once.
    pub fn threads(&self) -> usize {
        self.per_lane
    }

    /// Runs `step` on one of `lane`'s threads and returns its result. A
    /// step whose caller went away before it started is skipped; a step that
    /// panics is an aborted run (the thread survives).
    pub async fn run<T, F>(&self, lane: Lane, step: F) -> Result<T, MpcError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let queued = Instant::now();
        let job: Job = Box::new(move || {
            if tx.is_closed() {
                return;
            }
            let waited = queued.elapsed();
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(step));
            let _ = tx.send((out, waited));
        });
        match lane {
            Lane::Sign => self.sign.push(job),
            Lane::Keygen => self.keygen.push(job),
        }
        match rx.await {
            Ok((Ok(out), waited)) => {
                if waited > SLOW_QUEUE && lane == Lane::Sign {
                    tracing::debug!(
                        waited_ms = waited.as_millis() as u64,
                        "an MPC signing step waited for a protocol thread (signing is saturated)"
                    );
                }
                Ok(out)
            }
            Ok((Err(_), _)) => Err(MpcError::Aborted("a protocol step panicked".into())),
            Err(_) => Err(MpcError::Aborted(
                "no MPC protocol thread ran the step".into(),
            )),
        }
    }
}

/// A signing step that waited longer than this for a thread is worth a
/// debug line.
const SLOW_QUEUE: Duration = Duration::from_millis(50);

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn steps_run_off_the_calling_thread_and_panics_are_errors() {
        let caller = std::thread::current().id();
        let (name, id) = run(Lane::Sign, || {
            let t = std::thread::current();
            (t.name().map(str::to_owned), t.id())
        })
        .await
        .unwrap();
        assert_ne!(id, caller);
        assert!(name.unwrap().starts_with("mpc-sign-"));
        let err = run(Lane::Keygen, || -> u8 { panic!("boom") })
            .await
            .unwrap_err();
        assert!(matches!(err, MpcError::Aborted(_)), "{err}");
        // The pool still works after a panic.
        assert_eq!(run(Lane::Keygen, || 7).await.unwrap(), 7);
    }

    /// With every key generation thread busy and more key generation
    /// queued, a signing step still runs at once.
    #[tokio::test]
    async fn signing_never_waits_for_key_generation() {
        let pool = Arc::new(Pool::start(2));
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let mut busy = Vec::new();
        for _ in 0..pool.threads() + 2 {
            let (p, gate) = (pool.clone(), gate.clone());
            busy.push(tokio::spawn(async move {
                p.run(Lane::Keygen, move || {
                    let (open, cv) = &*gate;
                    let mut open = open.lock().unwrap();
                    while !*open {
                        open = cv.wait(open).unwrap();
                    }
                })
                .await
            }));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let signed = tokio::time::timeout(Duration::from_secs(5), pool.run(Lane::Sign, || 42))
            .await
            .expect("the signing step ran while key generation was stuck");
        assert_eq!(signed.unwrap(), 42);
        {
            let (open, cv) = &*gate;
            *open.lock().unwrap() = true;
            cv.notify_all();
        }
        for b in busy {
            b.await.unwrap().unwrap();
        }
    }
}
