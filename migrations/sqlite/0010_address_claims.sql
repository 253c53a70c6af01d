-- One address, one wallet, across every kind (server, JWT, Sila registered,
-- Sila token-mode). The claim is written by a trigger in the transaction that
-- appends the wallet's first event, whichever write path appends it, so the
-- store itself refuses a second wallet for an address: the insert aborts with
-- 'address_claimed'. A claim is never released: a deleted Sila wallet keeps
-- its id (UUIDv5 of the address), so registering the address again reuses it.
CREATE TABLE address_claims (
    address   text PRIMARY KEY,
    wallet_id text NOT NULL
) STRICT;

CREATE TRIGGER events_claim_address AFTER INSERT ON events
WHEN NEW.aggregate_type = 'wallet'
 AND NEW.event_type IN ('WalletCreated', 'WalletRegistered')
BEGIN
    INSERT OR IGNORE INTO address_claims (address, wallet_id)
    VALUES (lower(coalesce(json_extract(NEW.payload, '$.WalletCreated.address'),
                           json_extract(NEW.payload, '$.WalletRegistered.address'))),
            NEW.aggregate_id);
    SELECT RAISE(ABORT, 'address_claimed: the address belongs to another wallet')
     WHERE (SELECT wallet_id FROM address_claims
             WHERE address = lower(coalesce(json_extract(NEW.payload, '$.WalletCreated.address'),
                                            json_extract(NEW.payload, '$.WalletRegistered.address'))))
           <> NEW.aggregate_id;
END;

-- Claims for the wallets that exist already; the earliest wallet of an address wins.
INSERT OR IGNORE INTO address_claims (address, wallet_id)
SELECT lower(coalesce(json_extract(payload, '$.WalletCreated.address'),
                      json_extract(payload, '$.WalletRegistered.address'))),
       aggregate_id
  FROM events
 WHERE aggregate_type = 'wallet'
   AND event_type IN ('WalletCreated', 'WalletRegistered')
   AND coalesce(json_extract(payload, '$.WalletCreated.address'),
                json_extract(payload, '$.WalletRegistered.address')) IS NOT NULL
 ORDER BY position;
