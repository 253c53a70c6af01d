-- 2-of-2 MPC key shares, one row per (key, party), envelope-encrypted like the
-- key vault: the share under a per-row data key, the data key under the
-- party's master key. A frozen share is never used again (a peer misbehaved).
CREATE TABLE mpc_shares (
    key_id        text    NOT NULL,
    party         integer NOT NULL,
    address       text    NOT NULL,
    master_key_id text    NOT NULL,
    dek_nonce     blob    NOT NULL,
    wrapped_dek   blob    NOT NULL,
    share_nonce   blob    NOT NULL,
    sealed_share  blob    NOT NULL,
    frozen        text,
    created_at    text    NOT NULL,
    PRIMARY KEY (key_id, party)
);
CREATE INDEX mpc_shares_master_key ON mpc_shares (master_key_id);

-- The cosigner's own append-only record of every signature it took part in.
CREATE TABLE cosign_log (
    sign_id      text PRIMARY KEY,
    key_id       text NOT NULL,
    wallet_id    text NOT NULL,
    requested_by text NOT NULL,
    digest       text NOT NULL,
    signature    text NOT NULL,
    at           text NOT NULL
);
CREATE INDEX cosign_log_wallet ON cosign_log (wallet_id, at);
CREATE TRIGGER cosign_log_no_update BEFORE UPDATE ON cosign_log
BEGIN SELECT RAISE(ABORT, 'the cosign log is append-only'); END;
CREATE TRIGGER cosign_log_no_delete BEFORE DELETE ON cosign_log
BEGIN SELECT RAISE(ABORT, 'the cosign log is append-only'); END;
