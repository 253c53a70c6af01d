-- Who holds an unassigned key, so that pools survive restarts and several
-- processes on one database never hand one key to two wallets.
--   claimed_by: NULL        free: no process holds it (released at shutdown,
--                           or a row from before this migration)
--               <uuid>      held by that process's key pool (or by a create in
--                           flight); the claim lapses unless claimed_at is
--                           refreshed (database clock, Unix seconds)
--               'assigned'  a WalletCreated event names it (marked lazily)
--               'retired'   being removed by the sweeper; never claimed again
-- A key is only ever claimed or swept when no WalletCreated event names it,
-- checked against the event log itself (events_created_key_id).
ALTER TABLE key_vault ADD COLUMN claimed_by text;
ALTER TABLE key_vault ADD COLUMN claimed_at integer;
ALTER TABLE mpc_shares ADD COLUMN claimed_by text;
ALTER TABLE mpc_shares ADD COLUMN claimed_at integer;

CREATE INDEX events_created_key_id ON events (json_extract(payload, '$.WalletCreated.key_id'))
    WHERE event_type = 'WalletCreated';
CREATE INDEX key_vault_unassigned ON key_vault (claimed_by)
    WHERE claimed_by IS NULL OR claimed_by <> 'assigned';
CREATE INDEX mpc_shares_unassigned ON mpc_shares (party, claimed_by)
    WHERE claimed_by IS NULL OR claimed_by <> 'assigned';
-- The cosigner releases a share only if it never signed with it.
CREATE INDEX cosign_log_key ON cosign_log (key_id);

-- Keys that wallets already use.
UPDATE key_vault SET claimed_by = 'assigned'
 WHERE EXISTS (SELECT 1 FROM events e
                WHERE e.event_type = 'WalletCreated'
                  AND json_extract(e.payload, '$.WalletCreated.key_id') = key_vault.key_id);
UPDATE mpc_shares SET claimed_by = 'assigned'
 WHERE party = 1
   AND EXISTS (SELECT 1 FROM events e
                WHERE e.event_type = 'WalletCreated'
                  AND json_extract(e.payload, '$.WalletCreated.key_id') = mpc_shares.key_id);

-- Party 1 records each key generation before it starts, so that a share the
-- cosigner stored for a run party 1 never finished (a crash, a failed store)
-- is found and released by the sweeper instead of staying on its side.
CREATE TABLE mpc_key_intents (
    key_id     text PRIMARY KEY,
    created_at text NOT NULL
);
