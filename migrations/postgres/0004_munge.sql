-- The MUNGE front door: which Portcullis user a (platform, uid) is, and the replay cache shared by
-- every instance on this database.
CREATE TABLE munge_mappings (
    realm    TEXT NOT NULL REFERENCES realms (name) ON DELETE CASCADE,
    platform TEXT NOT NULL,
    uid      BIGINT NOT NULL,
    user_id  BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (realm, platform, uid)
);

CREATE TABLE munge_replays (
    replay_key TEXT PRIMARY KEY,                -- hex of the first 16 bytes of the credential's MAC
    expires_at BIGINT NOT NULL                  -- encode time + ttl: replays are impossible after it
);

CREATE INDEX munge_replays_expiry ON munge_replays (expires_at);
