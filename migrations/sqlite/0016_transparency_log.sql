-- The transparency log (RFC 6962): the event log in global order as a
-- Merkle tree. Written only by the sealer, one pass per transaction.

-- Leaf idx (0, 1, 2, … in global order) is the event at events.position.
CREATE TABLE log_leaves (
    idx            integer PRIMARY KEY,
    event_position integer NOT NULL UNIQUE,
    tx_id          integer NOT NULL,
    leaf_hash      blob NOT NULL
);

-- The tree's stored hashes, by their stored hash index (the layout of Go's
-- golang.org/x/mod/sumdb/tlog, which tlog_tiles implements): every complete
-- subtree's hash, about two per leaf.
CREATE TABLE log_hashes (
    idx  integer PRIMARY KEY,
    hash blob NOT NULL
);

-- A signed checkpoint (c2sp.org/tlog-checkpoint as a c2sp.org/signed-note)
-- after each pass.
CREATE TABLE log_checkpoints (
    size integer PRIMARY KEY,
    root blob NOT NULL,
    at   text NOT NULL,
    note text NOT NULL
);
