-- The whitelist delay, one value for every process on this database (a server
-- started with WALLETD_WHITELIST_DELAY stores it; whoever queues reads it).
CREATE TABLE whitelist_policy (
    id         smallint PRIMARY KEY CHECK (id = 1),
    delay_secs bigint   NOT NULL CHECK (delay_secs >= 0)
);
INSERT INTO whitelist_policy (id, delay_secs) VALUES (1, 300);
