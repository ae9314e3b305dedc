-- Accounts (dashboard users), their sessions and single-use tokens, project
-- membership with roles, invitations, and the outbox of account e-mail.
CREATE TABLE accounts (
    id                BIGSERIAL PRIMARY KEY,
    email             TEXT NOT NULL CHECK (char_length(email) BETWEEN 3 AND 254),
    name              TEXT NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    -- PHC string of an argon2id hash.
    password_hash     TEXT NOT NULL,
    -- Plan of the projects this account creates (quota `projects` counts per owner).
    plan              TEXT NOT NULL DEFAULT 'free'
                      CHECK (plan IN ('free', 'professional', 'enterprise')),
    email_verified_at TIMESTAMPTZ,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX accounts_email_key ON accounts (lower(email));

-- A login: the family of rotating refresh tokens; access tokens name it (`sid`).
CREATE TABLE account_sessions (
    id          BIGSERIAL PRIMARY KEY,
    account_id  BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL,
    revoked_at  TIMESTAMPTZ
);
CREATE INDEX account_sessions_account_idx ON account_sessions (account_id);

-- Refresh, e-mail verification, e-mail change and password reset tokens:
-- only their SHA-256 is stored; each is single-use.
CREATE TABLE auth_tokens (
    id          BIGSERIAL PRIMARY KEY,
    account_id  BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL
                CHECK (kind IN ('refresh', 'verify_email', 'change_email', 'reset_password')),
    token_hash  BYTEA NOT NULL CHECK (octet_length(token_hash) = 32),
    -- Refresh tokens: the session (family) they belong to.
    session_id  BIGINT REFERENCES account_sessions (id) ON DELETE CASCADE,
    -- E-mail tokens: the address being verified.
    email       TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ,
    CHECK ((kind = 'refresh') = (session_id IS NOT NULL))
);
CREATE UNIQUE INDEX auth_tokens_hash_key ON auth_tokens (token_hash);
CREATE INDEX auth_tokens_account_kind_idx ON auth_tokens (account_id, kind);

-- Projects created by an account have an owner (those of the CLI have none).
ALTER TABLE projects ADD COLUMN owner_account_id BIGINT REFERENCES accounts (id) ON DELETE SET NULL;
CREATE INDEX projects_owner_idx ON projects (owner_account_id) WHERE deleted_at IS NULL;
ALTER TABLE api_keys ADD COLUMN created_by BIGINT REFERENCES accounts (id) ON DELETE SET NULL;

CREATE TABLE project_members (
    project_id  BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    account_id  BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    role        TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, account_id)
);
CREATE INDEX project_members_account_idx ON project_members (account_id);

CREATE TABLE invitations (
    id          BIGSERIAL PRIMARY KEY,
    project_id  BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    email       TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    token_hash  BYTEA NOT NULL CHECK (octet_length(token_hash) = 32),
    invited_by  BIGINT REFERENCES accounts (id) ON DELETE SET NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL,
    accepted_at TIMESTAMPTZ,
    revoked_at  TIMESTAMPTZ
);
CREATE UNIQUE INDEX invitations_token_hash_key ON invitations (token_hash);
-- One open invitation per (project, address).
CREATE UNIQUE INDEX invitations_one_open ON invitations (project_id, lower(email))
    WHERE accepted_at IS NULL AND revoked_at IS NULL;

-- Account e-mail, written in the transaction of the change that sends it and
-- delivered (and retried) after commit. The body is cleared once it is sent
-- or given up, so the links it carries do not outlive the delivery.
CREATE TABLE outbound_emails (
    id              BIGSERIAL PRIMARY KEY,
    kind            TEXT NOT NULL,
    to_address      TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body_text       TEXT,
    body_html       TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    locked_until    TIMESTAMPTZ,
    last_error      TEXT,
    sent_at         TIMESTAMPTZ,
    failed_at       TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX outbound_emails_due_idx ON outbound_emails (next_attempt_at)
    WHERE sent_at IS NULL AND failed_at IS NULL;
