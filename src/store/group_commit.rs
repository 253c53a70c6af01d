//! Group commit: plain appends of different aggregates that arrive together
//! go out as one INSERT (one statement, one commit).
//!
//! A plain append (no once-only keys, no snapshot) is queued; a writer takes
//! whatever has queued up while the previous group was being committed and
//! stores it with one multi-row INSERT. No fixed delay: under light load a
//! group is one append and costs what it did alone; under load the groups
//! grow with the commit latency. A group fails whole when any of its appends
//! would (a sequence taken by another writer, an address claimed), and the
//! database then rolled all of it back, so each append is committed again on
//! its own and only the one at fault fails. An outcome that is unknown (the
//! connection dropped around COMMIT) is reported to every append of the
//! group, as it would be to each alone.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Mutex};
use walletd_projections::{Db, LogPosition};

use super::append::Append;
use super::error::CommitError;

/// Writers committing groups at the same time: one collects while another
/// commits, so a slow commit does not hold up everyone.
const WRITERS: usize = 2;
/// A group stops growing at this many events.
const MAX_EVENTS: usize = 1000;

type Answer = Result<Option<LogPosition>, CommitError>;

struct Job {
    append: Append,
    reply: oneshot::Sender<Answer>,
}

/// One per store; its writers stop when it is dropped.
pub(crate) struct GroupCommit {
    jobs: mpsc::UnboundedSender<Job>,
}

impl GroupCommit {
    pub(crate) fn new(db: Db) -> Self {
        let (jobs, rx) = mpsc::unbounded_channel();
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..WRITERS {
            tokio::spawn(writer(db.clone(), rx.clone()));
        }
        Self { jobs }
    }

    /// Stores `append` (in a group when it is plain) and returns its newest
    /// position, as [`Append::commit`] does.
    pub(crate) async fn commit(&self, append: Append, db: &Db) -> Answer {
        if !append.is_plain() {
            return append.commit(db).await;
        }
        let (reply, answer) = oneshot::channel();
        if let Err(mpsc::error::SendError(job)) = self.jobs.send(Job { append, reply }) {
            return job.append.commit(db).await;
        }
        answer
            .await
            .map_err(|_| CommitError::Store("the group commit stopped".into()))?
    }
}

async fn writer(db: Db, rx: Arc<Mutex<mpsc::UnboundedReceiver<Job>>>) {
    loop {
        let group = {
            let mut rx = rx.lock().await;
            let Some(first) = rx.recv().await else { return };
            let mut events = first.append.events.len();
            let mut group = vec![first];
            while events < MAX_EVENTS {
                match rx.try_recv() {
                    Ok(job) => {
                        events += job.append.events.len();
                        group.push(job);
                    }
                    Err(_) => break,
                }
            }
            group
        };
        commit_group(&db, group).await;
    }
}

async fn commit_group(db: &Db, group: Vec<Job>) {
    if group.len() == 1 {
        for job in group {
            let answer = job.append.commit(db).await;
            let _ = job.reply.send(answer);
        }
        return;
    }
    let appends: Vec<&Append> = group.iter().map(|j| &j.append).collect();
    match Append::commit_together(&appends, db).await {
        Ok(newest) => {
            for (job, at) in group.into_iter().zip(newest) {
                let _ = job.reply.send(Ok(at));
            }
        }
        // Refused whole and rolled back: find the one at fault.
        Err(CommitError::Conflict | CommitError::AddressClaimed) => {
            for job in group {
                let answer = job.append.commit(db).await;
                let _ = job.reply.send(answer);
            }
        }
        Err(e) => {
            let message = e.to_string();
            let unavailable = matches!(e, CommitError::Unavailable(_));
            for job in group {
                let _ = job.reply.send(Err(if unavailable {
                    CommitError::Unavailable(message.clone())
                } else {
                    CommitError::Store(message.clone())
                }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use sqlx::Row;

    use super::*;
    use crate::store::append::StagedEvent;

    fn append(aggregate_id: &str, sequences: &[i64]) -> Append {
        let mut a = Append::default();
        for &sequence in sequences {
            a.events.push(StagedEvent {
                aggregate_type: "probe",
                aggregate_id: aggregate_id.into(),
                sequence,
                event_type: "Probed".into(),
                event_version: "1".into(),
                payload: json!({"Probed": {"n": sequence}}),
                metadata: json!({}),
            });
        }
        a
    }

    async fn run(db: &Db, appends: Vec<Append>) -> Vec<Answer> {
        let mut group = Vec::new();
        let mut answers = Vec::new();
        for append in appends {
            let (reply, answer) = oneshot::channel();
            group.push(Job { append, reply });
            answers.push(answer);
        }
        commit_group(db, group).await;
        let mut out = Vec::new();
        for a in answers {
            out.push(a.await.unwrap());
        }
        out
    }

    /// (aggregate id, sequence) of the event at `at`.
    async fn event_at(db: &Db, at: LogPosition) -> (String, i64) {
        let Db::Sqlite(pool) = db else { unreachable!() };
        let row = sqlx::query("SELECT aggregate_id, sequence FROM events WHERE position = $1")
            .bind(at.position)
            .fetch_one(pool)
            .await
            .unwrap();
        (row.get("aggregate_id"), row.get("sequence"))
    }

    #[tokio::test]
    async fn a_group_answers_each_append_and_confines_a_conflict_to_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("group.db").display());
        let db = crate::store::connect(&url, 4).await.unwrap();
        crate::store::migrate::run(&db).await.unwrap();

        // One group, all new: each append learns its own newest position.
        let answers = run(
            &db,
            vec![
                append("a", &[1, 2, 3]),
                append("b", &[1]),
                append("c", &[1, 2]),
            ],
        )
        .await;
        let expected = [("a", 3), ("b", 1), ("c", 2)];
        for (answer, (id, seq)) in answers.into_iter().zip(expected) {
            let at = answer.unwrap().unwrap();
            assert_eq!(event_at(&db, at).await, (id.to_string(), seq));
        }

        // "b" 1 is taken: only that append fails, the others are stored.
        let answers = run(
            &db,
            vec![append("d", &[1]), append("b", &[1]), append("e", &[1, 2])],
        )
        .await;
        assert!(matches!(answers[0], Ok(Some(_))));
        assert!(matches!(answers[1], Err(CommitError::Conflict)));
        let at = answers[2].as_ref().unwrap().unwrap();
        assert_eq!(event_at(&db, at).await, ("e".to_string(), 2));
        let Db::Sqlite(pool) = &db else {
            unreachable!()
        };
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(
            n,
            6 + 3,
            "the refused append wrote nothing, the others everything"
        );
    }
}
