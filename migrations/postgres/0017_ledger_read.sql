-- The ledger's read models (projections crate: views/ledger_*.rs), built
-- from the account events. Amounts are minor units up to 2^128 - 1:
-- NUMERIC(39,0) holds every one exactly, and compares and sums as numbers.

CREATE TABLE ledger_balances (
    wallet_id  text NOT NULL,
    asset      text NOT NULL,
    decimals   bigint NOT NULL,
    balance    NUMERIC(39,0) NOT NULL,
    updated_at text NOT NULL,
    PRIMARY KEY (wallet_id, asset)
);

CREATE TABLE ledger_movements (
    wallet_id    text NOT NULL,
    movement_id  text NOT NULL,
    kind         text NOT NULL,
    asset        text NOT NULL,
    decimals     bigint NOT NULL,
    amount       NUMERIC(39,0) NOT NULL,
    counterparty text NOT NULL,
    status       text NOT NULL,
    memo         text,
    requested_by text,
    reason       text,
    at           text NOT NULL,
    updated_at   text NOT NULL,
    seq          bigint NOT NULL,
    PRIMARY KEY (wallet_id, movement_id, kind)
);
-- A wallet's history, newest first (paging by seq).
CREATE INDEX ledger_movements_by_wallet ON ledger_movements (wallet_id, seq DESC);
-- The projector finds a transfer's other legs by movement.
CREATE INDEX ledger_movements_by_movement ON ledger_movements (movement_id);

CREATE TABLE ledger_supply (
    asset      text PRIMARY KEY,
    decimals   bigint NOT NULL,
    issued     NUMERIC(39,0) NOT NULL,
    redeemed   NUMERIC(39,0) NOT NULL,
    in_transit NUMERIC(39,0) NOT NULL,
    updated_at text NOT NULL
);
