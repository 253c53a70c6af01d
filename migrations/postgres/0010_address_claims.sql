-- One address, one wallet, across every kind (server, JWT, Sila registered,
-- Sila token-mode). The claim is written by a trigger in the transaction that
-- appends the wallet's first event, whichever write path appends it, so the
-- store itself refuses a second wallet for an address: the loser's
-- transaction aborts with SQLSTATE WDA01 ('address_claimed').
-- A claim is never released: a deleted Sila wallet keeps its id
-- (UUIDv5 of the address), so registering the address again reuses it.
CREATE TABLE address_claims (
    address   text PRIMARY KEY,
    wallet_id text NOT NULL
);

CREATE FUNCTION claim_wallet_address() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    claimed text;
    holder  text;
BEGIN
    claimed := lower(coalesce(NEW.payload -> 'WalletCreated' ->> 'address',
                              NEW.payload -> 'WalletRegistered' ->> 'address'));
    IF claimed IS NULL THEN
        RETURN NEW;
    END IF;
    INSERT INTO address_claims (address, wallet_id) VALUES (claimed, NEW.aggregate_id)
        ON CONFLICT (address) DO NOTHING;
    SELECT wallet_id INTO holder FROM address_claims WHERE address = claimed;
    IF holder <> NEW.aggregate_id THEN
        RAISE EXCEPTION 'address_claimed: the address belongs to another wallet'
            USING ERRCODE = 'WDA01';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER events_claim_address BEFORE INSERT ON events
    FOR EACH ROW
    WHEN (NEW.aggregate_type = 'wallet'
          AND NEW.event_type IN ('WalletCreated', 'WalletRegistered'))
    EXECUTE FUNCTION claim_wallet_address();

-- Claims for the wallets that exist already; the earliest wallet of an address wins.
INSERT INTO address_claims (address, wallet_id)
SELECT DISTINCT ON (a.address) a.address, a.aggregate_id
  FROM (SELECT lower(coalesce(payload -> 'WalletCreated' ->> 'address',
                              payload -> 'WalletRegistered' ->> 'address')) AS address,
               aggregate_id, position
          FROM events
         WHERE aggregate_type = 'wallet'
           AND event_type IN ('WalletCreated', 'WalletRegistered')) a
 WHERE a.address IS NOT NULL
 ORDER BY a.address, a.position
ON CONFLICT (address) DO NOTHING;
