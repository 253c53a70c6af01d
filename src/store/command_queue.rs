//! Commands on one aggregate inside this process queue up instead of racing
//! each other on the event store's (aggregate, sequence) key. The first
//! command to arrive at an idle aggregate elects a drainer; while it runs a
//! batch, later commands wait in the queue and go together in the next
//! batch: one load, one append for all of them. Across processes the
//! store's optimistic concurrency still decides.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

pub(crate) struct CommandQueue<T> {
    queues: Mutex<HashMap<String, VecDeque<T>>>,
}

impl<T> Default for CommandQueue<T> {
    fn default() -> Self {
        Self {
            queues: Mutex::new(HashMap::new()),
        }
    }
}

impl<T> CommandQueue<T> {
    /// Queues `item` for aggregate `id`; `true` if the aggregate was idle, so
    /// the caller must start a drainer for it.
    pub fn push(&self, id: &str, item: T) -> bool {
        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        match queues.get_mut(id) {
            Some(queue) => {
                queue.push_back(item);
                false
            }
            None => {
                queues.insert(id.to_string(), VecDeque::from([item]));
                true
            }
        }
    }

    /// The drainer's next batch (at most `max`, in arrival order), or `None`
    /// when the queue is empty: the aggregate is idle again and the next
    /// `push` elects a new drainer.
    pub fn next_batch(&self, id: &str, max: usize) -> Option<Vec<T>> {
        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        let queue = queues.get_mut(id)?;
        if queue.is_empty() {
            queues.remove(id);
            return None;
        }
        let n = queue.len().min(max);
        Some(queue.drain(..n).collect())
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.queues.lock().map(|q| q.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_drainer_per_aggregate_and_batches_in_order() {
        let q = CommandQueue::default();
        assert!(q.push("w1", 1));
        assert!(!q.push("w1", 2));
        assert!(!q.push("w1", 3));
        // Another aggregate has its own drainer.
        assert!(q.push("w2", 9));
        assert_eq!(q.next_batch("w1", 2), Some(vec![1, 2]));
        assert_eq!(q.next_batch("w1", 2), Some(vec![3]));
        // Drained: forgotten, and the next push elects a drainer again.
        assert_eq!(q.next_batch("w1", 2), None);
        assert_eq!(q.tracked(), 1);
        assert!(q.push("w1", 4));
    }
}
