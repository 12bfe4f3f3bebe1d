-- Groups of users, and policy rules kept in the database (`portcullis grant add`), per realm.
CREATE TABLE groups (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    realm      TEXT NOT NULL REFERENCES realms (name) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (realm, name)
);

CREATE TABLE group_members (
    group_id BIGINT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id  BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);

CREATE TABLE grants (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    realm      TEXT NOT NULL REFERENCES realms (name) ON DELETE CASCADE,
    subject    TEXT NOT NULL,                  -- user:NAME, group:NAME, anonymous, authenticated, any
    resource   TEXT NOT NULL,                  -- repository or registry
    name       TEXT NOT NULL,                  -- name pattern
    actions    TEXT NOT NULL,                  -- space-separated
    effect     TEXT NOT NULL CHECK (effect IN ('allow', 'deny')),
    created_at BIGINT NOT NULL
);

-- Bumped on every change to a realm's grants, so servers recompile that realm's policy.
CREATE TABLE policy_generations (
    realm      TEXT PRIMARY KEY REFERENCES realms (name) ON DELETE CASCADE,
    generation BIGINT NOT NULL
);
