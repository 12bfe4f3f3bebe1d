-- Long-lived credentials Portcullis mints: refresh tokens (what `docker login` stores as
-- identitytoken) and personal/robot access tokens. Only the SHA-256 of a secret is stored.
ALTER TABLE users ADD COLUMN kind TEXT NOT NULL DEFAULT 'person' CHECK (kind IN ('person', 'robot'));

CREATE TABLE tokens (
    id            TEXT PRIMARY KEY,            -- public id, shown in listings and audit events
    kind          TEXT NOT NULL CHECK (kind IN ('refresh', 'access')),
    user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    secret_sha256 TEXT NOT NULL UNIQUE,        -- hex SHA-256 of the whole secret
    name          TEXT,                        -- access tokens: the owner's label, unique per user
    client_id     TEXT,                        -- refresh tokens: the client that asked for it
    scopes        TEXT,                        -- access tokens: space-separated scope patterns
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    expires_at    BIGINT,                      -- NULL: no absolute expiry
    revoked_at    BIGINT,
    UNIQUE (user_id, kind, name)
);

CREATE INDEX tokens_user ON tokens (user_id);
