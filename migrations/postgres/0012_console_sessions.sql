-- Sessions of people signed in to the web console. The cookie holds a random secret; only its
-- SHA-256 is stored. Any instance on the database serves any session. Times are Unix seconds.
--   csrf:         the token every form of the session carries (random; not a secret of the user);
--   last_seen_at: the idle timeout runs from here;
--   expires_at:   the absolute end, whatever the activity.
CREATE TABLE console_sessions (
    id_sha256    TEXT PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);

CREATE INDEX console_sessions_by_user ON console_sessions (user_id);
