-- Projection: the signing addresses of client apps (request signatures).
CREATE TABLE app_addresses (
    address          text NOT NULL,
    handle           text NOT NULL,
    address_checksum text NOT NULL,
    added_at         text NOT NULL,
    PRIMARY KEY (address, handle)
);
CREATE INDEX app_addresses_handle ON app_addresses (handle);
