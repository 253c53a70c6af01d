-- The role of the caller, for events caused through the JWT API.
ALTER TABLE audit_log ADD COLUMN role text;

-- Refused attempts (401, 403, 429): not wallet changes, so not events, but kept
-- append-only like them.
CREATE TABLE security_log (
    id          integer PRIMARY KEY,
    at          text    NOT NULL,
    subject     text,
    role        text,
    auth_method text    NOT NULL,
    action      text    NOT NULL,
    status      integer NOT NULL,
    reason      text    NOT NULL,
    path        text    NOT NULL,
    request_id  text,
    client_addr text
);
CREATE INDEX security_log_at ON security_log (at);
CREATE INDEX security_log_subject ON security_log (subject, at);

CREATE TRIGGER security_log_no_update BEFORE UPDATE ON security_log
BEGIN SELECT RAISE(ABORT, 'the security log is append-only'); END;
CREATE TRIGGER security_log_no_delete BEFORE DELETE ON security_log
BEGIN SELECT RAISE(ABORT, 'the security log is append-only'); END;
