-- The replay cache as one index ordered by expiry: a credential's replays carry the same bytes, so
-- the same expiry, and (expires_at, replay_key) is as unique as the credential. A use updates one
-- index, near its end, instead of two scattered ones, and the purge of expired records reads
-- its start.
CREATE TABLE munge_replays_by_expiry (
    expires_at BIGINT NOT NULL,                 -- encode time + ttl: replays are impossible after it
    replay_key TEXT NOT NULL,                   -- hex of the first 16 bytes of the credential's MAC
    PRIMARY KEY (expires_at, replay_key)
);

INSERT INTO munge_replays_by_expiry (expires_at, replay_key)
SELECT expires_at, replay_key FROM munge_replays;

DROP TABLE munge_replays;

ALTER TABLE munge_replays_by_expiry RENAME TO munge_replays;
