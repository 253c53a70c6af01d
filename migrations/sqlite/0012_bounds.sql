-- Issue 9, items 6, 7, 15 and 17: bounded refusal logging, idempotency through
-- the event log, a rate limit shared by every process, pruning.

-- Refusals are counted per (source, reason, action, …) over a short window and
-- written as one row with a count. Refusals of an authenticated principal (a
-- subject is known) are evidence and stay in the append-only security_log;
-- the first and last refusal of the window are first_at and at.
ALTER TABLE security_log ADD COLUMN count integer NOT NULL DEFAULT 1 CHECK (count > 0);
ALTER TABLE security_log ADD COLUMN first_at text;

-- Refusals of nobody in particular (no valid credential: 401s, bad Sila
-- signatures) are noise with a source address: rows are never changed, and
-- they are deleted after WALLETD_REFUSAL_RETENTION_DAYS.
CREATE TABLE refusal_counts (
    id          integer PRIMARY KEY,
    first_at    text    NOT NULL,
    at          text    NOT NULL,
    count       integer NOT NULL CHECK (count > 0),
    auth_method text    NOT NULL,
    action      text    NOT NULL,
    status      integer NOT NULL,
    reason      text    NOT NULL,
    path        text    NOT NULL,
    request_id  text,
    client_addr text
);
CREATE INDEX refusal_counts_at ON refusal_counts (at);

CREATE TRIGGER refusal_counts_no_update BEFORE UPDATE ON refusal_counts
BEGIN SELECT RAISE(ABORT, 'refusal counts are never changed, only deleted when they expire'); END;

-- Per-user rate limits shared by every process on the database: one row per
-- granted request, kept for the window (a sliding log).
CREATE TABLE rate_limit_grants (
    id      integer PRIMARY KEY,
    bucket  text    NOT NULL,
    subject text    NOT NULL,
    at_ms   integer NOT NULL
);
CREATE INDEX rate_limit_grants_subject ON rate_limit_grants (bucket, subject, at_ms);
CREATE INDEX rate_limit_grants_at ON rate_limit_grants (at_ms);

-- A retry whose first attempt committed finds that attempt's events by the
-- Idempotency-Key in their metadata.
CREATE INDEX events_idempotency_key ON events (json_extract(metadata, '$.idempotency_key'))
    WHERE json_extract(metadata, '$.idempotency_key') IS NOT NULL;

-- Expired Idempotency-Key rows are pruned by age.
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
