-- The ledger's process manager (src/ledger/process_manager.rs): where it has
-- read the log to. Apart from projection_checkpoints on purpose: a
-- projection may be reset and rebuilt, this never is. It moves only in the
-- transaction that appends the credits, returns and settlements decided
-- from the events before it, so each debit is resolved exactly once.
CREATE TABLE ledger_checkpoints (
    name     text PRIMARY KEY,
    tx_id    integer NOT NULL,
    position integer NOT NULL
) STRICT;
INSERT INTO ledger_checkpoints (name, tx_id, position) VALUES ('ledger', 0, 0);
