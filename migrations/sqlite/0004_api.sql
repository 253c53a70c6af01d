-- API keys: only a SHA3-256 hash of each key is kept.
CREATE TABLE api_keys (
    id         text PRIMARY KEY,
    name       text NOT NULL,
    key_hash   text NOT NULL UNIQUE,
    created_at text NOT NULL,
    revoked_at text
);

-- Idempotency keys: the first response to (scope, key) is replayed to retries.
CREATE TABLE idempotency_keys (
    scope         text    NOT NULL,
    key           text    NOT NULL,
    request_hash  text    NOT NULL,
    status_code   integer,
    response_body text,
    created_at    text    NOT NULL,
    PRIMARY KEY (scope, key)
);
