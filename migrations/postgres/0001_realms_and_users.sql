-- Realms and their users (PostgreSQL). Times are Unix seconds.
CREATE TABLE realms (
    name           TEXT PRIMARY KEY,
    services       TEXT NOT NULL,              -- accepted `service` values, space-separated
    issuer         TEXT,                       -- NULL: the realm's token URL
    token_ttl_secs BIGINT NOT NULL CHECK (token_ttl_secs >= 60),
    created_at     BIGINT NOT NULL
);

CREATE TABLE users (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    realm         TEXT NOT NULL REFERENCES realms (name) ON DELETE CASCADE,
    username      TEXT NOT NULL,
    password_hash TEXT,                        -- argon2id PHC string
    role          TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    disabled_at   BIGINT,                      -- NULL: enabled
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    UNIQUE (realm, username)
);
