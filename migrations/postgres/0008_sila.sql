-- Projection: Sila users (handle, registering app, KYC state).
CREATE TABLE sila_users (
    handle        text PRIMARY KEY,
    user_id       text NOT NULL,
    app_handle    text NOT NULL,
    kyc_status    text NOT NULL,
    registered_at text NOT NULL,
    updated_at    text NOT NULL
);

-- Projection: each Sila user's live wallets, nickname and default flag.
-- seq (the global rank of the attaching event) orders wallets by registration.
CREATE TABLE sila_wallets (
    wallet_id          text    PRIMARY KEY,
    handle             text    NOT NULL,
    address            text    NOT NULL,
    nickname           text    NOT NULL,
    nickname_key       text    NOT NULL,
    is_default         boolean NOT NULL,
    statements_enabled boolean NOT NULL,
    seq                bigint  NOT NULL,
    attached_at        text    NOT NULL,
    updated_at         text    NOT NULL
);
CREATE INDEX sila_wallets_handle ON sila_wallets (handle, seq);
CREATE INDEX sila_wallets_address ON sila_wallets (address);

-- Replay guard for signed Sila requests: each (app, reference or body digest)
-- is accepted once while its `created` is inside the window. Not an event:
-- a nonce cache, pruned once expired.
CREATE TABLE request_nonces (
    app_handle text   NOT NULL,
    nonce      text   NOT NULL,
    expires_at bigint NOT NULL,
    PRIMARY KEY (app_handle, nonce)
);
CREATE INDEX request_nonces_expiry ON request_nonces (expires_at);
