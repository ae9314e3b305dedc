-- Security hardening (issue 18).

-- A verification token carries the registration it confirms: whoever proves
-- control of the address by using the token gets the password and name that
-- were chosen with it (pre-account takeover).
ALTER TABLE auth_tokens ADD COLUMN password_hash TEXT;
ALTER TABLE auth_tokens ADD COLUMN name TEXT;

-- A phone number is live on one trunk of the whole installation.
ALTER TABLE sip_trunks DROP CONSTRAINT sip_trunks_project_id_phone_number_key;
CREATE UNIQUE INDEX sip_trunks_phone_number_key ON sip_trunks (phone_number);
CREATE INDEX sip_trunks_project_idx ON sip_trunks (project_id, id);

-- `jti`s of connection-details tokens already used, kept while the token
-- could still be presented.
CREATE TABLE connection_token_uses (
    project_id  BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    jti_hash    BYTEA NOT NULL CHECK (octet_length(jti_hash) = 32),
    expires_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (project_id, jti_hash)
);
CREATE INDEX connection_token_uses_expires_idx ON connection_token_uses (expires_at);
