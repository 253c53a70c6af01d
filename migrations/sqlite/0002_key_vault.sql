-- Private keys, envelope-encrypted: the key is sealed under a per-key data key
-- (DEK), the DEK is sealed under the master key named by master_key_id. Rotating
-- the master key re-wraps DEKs only. Both seals bind key_id and address as AAD.
CREATE TABLE key_vault (
    key_id        text  PRIMARY KEY,
    wallet_id     text  NOT NULL,
    address       text  NOT NULL,
    custody       text  NOT NULL,
    master_key_id text  NOT NULL,
    dek_nonce     blob NOT NULL,
    wrapped_dek   blob NOT NULL,
    key_nonce     blob NOT NULL,
    sealed_key    blob NOT NULL,
    created_at    text  NOT NULL
);
CREATE INDEX key_vault_master_key ON key_vault (master_key_id);
CREATE INDEX key_vault_wallet ON key_vault (wallet_id);
