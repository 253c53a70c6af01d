-- The role of the caller, for events caused through the JWT API.
ALTER TABLE audit_log ADD COLUMN role text;

-- Refused attempts (401, 403, 429): not wallet changes, so not events, but kept
-- append-only like them.
CREATE TABLE security_log (
    id          bigserial PRIMARY KEY,
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

CREATE FUNCTION security_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the security log is append-only';
END $$;
CREATE TRIGGER security_log_no_update BEFORE UPDATE OR DELETE ON security_log
    FOR EACH ROW EXECUTE FUNCTION security_log_is_append_only();
CREATE TRIGGER security_log_no_truncate BEFORE TRUNCATE ON security_log
    FOR EACH STATEMENT EXECUTE FUNCTION security_log_is_append_only();
