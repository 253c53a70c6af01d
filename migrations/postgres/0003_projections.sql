CREATE TABLE projection_checkpoints (
    name     text   PRIMARY KEY,
    tx_id    bigint NOT NULL,
    position bigint NOT NULL,
    applied  bigint NOT NULL
);

CREATE TABLE wallet_directory (
    wallet_id        text   PRIMARY KEY,
    address          text   NOT NULL,
    address_checksum text   NOT NULL,
    user_id          text   NOT NULL,
    kind             text   NOT NULL,
    custody          text   NOT NULL,
    public_key       text,
    status           text   NOT NULL,
    whitelist_status text   NOT NULL,
    signatures       bigint NOT NULL,
    created_at       text   NOT NULL,
    updated_at       text   NOT NULL
);
CREATE INDEX wallet_directory_address ON wallet_directory (address);
CREATE INDEX wallet_directory_user ON wallet_directory (user_id, kind);

CREATE TABLE user_wallets (
    wallet_id  text    PRIMARY KEY,
    user_id    text    NOT NULL,
    address    text    NOT NULL,
    label      text,
    nickname   text,
    is_default boolean NOT NULL,
    created_at text    NOT NULL,
    updated_at text    NOT NULL
);
CREATE INDEX user_wallets_user ON user_wallets (user_id, created_at);

CREATE TABLE audit_log (
    seq            bigint PRIMARY KEY,
    tx_id          bigint NOT NULL,
    position       bigint NOT NULL,
    aggregate_type text   NOT NULL,
    aggregate_id   text   NOT NULL,
    sequence       bigint NOT NULL,
    event_type     text   NOT NULL,
    event_version  text   NOT NULL,
    wallet_id      text,
    user_id        text,
    actor          text,
    auth_method    text,
    request_id     text,
    client_addr    text,
    occurred_at    text   NOT NULL,
    payload        text   NOT NULL
);
CREATE INDEX audit_log_wallet ON audit_log (wallet_id, seq);
CREATE INDEX audit_log_user ON audit_log (user_id, seq);

CREATE TABLE whitelist_queue (
    wallet_id      text PRIMARY KEY,
    queued_at      text NOT NULL,
    eligible_at    text NOT NULL,
    status         text NOT NULL,
    whitelisted_at text
);
CREATE INDEX whitelist_queue_due ON whitelist_queue (status, eligible_at);
