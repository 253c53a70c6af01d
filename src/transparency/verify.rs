//! Verifying a log from its events alone: each leaf recomputed from the
//! event's fields, the RFC 6962 tree head folded leaf by leaf (constant
//! memory: the roots of the complete subtrees so far), compared with a
//! signed checkpoint. The offline verifier (`walletd verify --events …`) runs
//! this over an export; it needs no database and no trust in walletd.

use tlog_tiles::tlog::{node_hash, Hash, EMPTY_HASH};

use super::export::Entry;
use super::leaf;

/// The tree head of a growing sequence of leaves.
#[derive(Default)]
pub struct Head {
    /// Complete subtrees, left to right: (height, hash).
    stack: Vec<(u32, Hash)>,
    size: u64,
}

impl Head {
    pub fn push(&mut self, leaf: Hash) {
        let mut cur = (0u32, leaf);
        while let Some(&(h, left)) = self.stack.last() {
            if h != cur.0 {
                break;
            }
            self.stack.pop();
            cur = (h + 1, node_hash(left, cur.1));
        }
        self.stack.push(cur);
        self.size += 1;
    }

    /// The head of the first `size` leaves from the roots of its complete
    /// subtrees, largest first (what `frontier` names): verifying can resume
    /// at `size` without reading the leaves before it.
    pub fn from_subtrees(size: u64, roots: &[Hash]) -> Self {
        let heights = frontier(size).into_iter().map(|(h, _)| h);
        Self {
            stack: heights.zip(roots.iter().copied()).collect(),
            size,
        }
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// MTH of the leaves so far.
    pub fn root(&self) -> Hash {
        let mut it = self.stack.iter().rev();
        let Some(&(_, mut r)) = it.next() else {
            return EMPTY_HASH;
        };
        for &(_, left) in it {
            r = node_hash(left, r);
        }
        r
    }
}

/// The complete subtrees the first `size` leaves fold into, largest first:
/// (height, index of the subtree among those of its height).
pub fn frontier(size: u64) -> Vec<(u32, u64)> {
    let mut out = Vec::new();
    let mut start = 0u64;
    for h in (0..64u32).rev() {
        if size & (1 << h) != 0 {
            out.push((h, start >> h));
            start += 1 << h;
        }
    }
    out
}

/// Why a log does not verify, naming the first place it goes wrong.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Finding {
    #[error("entry {line}: expected index {expected}, found {found}: an event was removed, inserted or reordered")]
    Order {
        line: u64,
        expected: u64,
        found: u64,
    },
    #[error("index {index} (event position {position}): the event does not match its leaf hash: it was altered")]
    Altered { index: u64, position: i64 },
    #[error(
        "the events end at {size} leaves; the checkpoint covers {checkpoint}: events were removed"
    )]
    Short { size: u64, checkpoint: u64 },
    #[error("the first {size} events do not hash to the checkpoint's root: an event and its leaf hash were both altered, or events were replaced")]
    Root { size: u64 },
}

/// Checks entries, fed in order, against checkpoints `(size, root)`.
pub struct Checker {
    head: Head,
    count: u64,
    checkpoints: Vec<(u64, Hash)>,
    next: usize,
}

impl Checker {
    pub fn new(mut checkpoints: Vec<(u64, Hash)>) -> Self {
        checkpoints.sort_by_key(|c| c.0);
        Self {
            head: Head::default(),
            count: 0,
            checkpoints,
            next: 0,
        }
    }

    /// Resumes at leaf `head.size()`: entries start there, and checkpoints
    /// up to it are left to the caller.
    pub fn resume(checkpoints: Vec<(u64, Hash)>, head: Head) -> Self {
        let mut c = Self::new(checkpoints);
        c.next = c.checkpoints.partition_point(|cp| cp.0 <= head.size());
        c.count = head.size();
        c.head = head;
        c
    }

    fn covered(&self) -> u64 {
        self.checkpoints.last().map(|c| c.0).unwrap_or(0)
    }

    /// The next entry; the first finding, if it is one.
    pub fn feed(&mut self, entry: &Entry) -> Result<(), Finding> {
        if entry.index != self.count {
            return Err(Finding::Order {
                line: self.count + 1,
                expected: self.count,
                found: entry.index,
            });
        }
        let h = leaf::hash(entry.index, &entry.event);
        if h.0 != entry.leaf_hash {
            return Err(Finding::Altered {
                index: entry.index,
                position: entry.event.at.position,
            });
        }
        if self.head.size() < self.covered() {
            self.head.push(h);
            while let Some(&(at, root)) = self.checkpoints.get(self.next) {
                if at > self.head.size() {
                    break;
                }
                self.next += 1;
                if at == self.head.size() && self.head.root() != root {
                    return Err(Finding::Root { size: at });
                }
            }
        }
        self.count += 1;
        Ok(())
    }

    /// After the last entry: how many were read.
    pub fn finish(self) -> Result<u64, Finding> {
        if self.head.size() < self.covered() {
            return Err(Finding::Short {
                size: self.head.size(),
                checkpoint: self.covered(),
            });
        }
        Ok(self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tlog_tiles::tlog::record_hash;

    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => EMPTY_HASH,
            1 => leaves[0],
            n => {
                let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
                node_hash(mth(&leaves[..k]), mth(&leaves[k..]))
            }
        }
    }

    #[test]
    fn the_folded_head_is_the_recursive_mth() {
        let leaves: Vec<Hash> = (0..37u32).map(|i| record_hash(&i.to_be_bytes())).collect();
        let mut head = Head::default();
        assert_eq!(head.root(), EMPTY_HASH);
        for (i, l) in leaves.iter().enumerate() {
            head.push(*l);
            assert_eq!(head.root(), mth(&leaves[..=i]), "size {}", i + 1);
        }
    }

    #[test]
    fn a_head_resumed_from_its_subtrees_goes_on_like_the_original() {
        let leaves: Vec<Hash> = (0..37u32).map(|i| record_hash(&i.to_be_bytes())).collect();
        for from in 0..leaves.len() {
            let roots: Vec<Hash> = frontier(from as u64)
                .into_iter()
                .map(|(h, i)| {
                    let at = (i << h) as usize;
                    mth(&leaves[at..at + (1 << h)])
                })
                .collect();
            let mut head = Head::from_subtrees(from as u64, &roots);
            assert_eq!(head.root(), mth(&leaves[..from]), "resumed at {from}");
            for l in &leaves[from..] {
                head.push(*l);
            }
            assert_eq!(head.root(), mth(&leaves), "resumed at {from}");
        }
    }
}
