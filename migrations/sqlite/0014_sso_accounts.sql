-- Sign-in to the web console with a realm's OpenID provider (src/console/sso.rs).
-- Accounts it creates have `source` = 'oidc:<issuer name>'; `directory_groups` then holds the
-- policy groups the provider's ID token gave at the last sign-in, read at `directory_groups_at`.
--
-- SQLite cannot change a CHECK constraint in place: the column is copied aside, dropped (with its
-- CHECK), added again with the wider CHECK and filled back. ALTER TABLE leaves the table itself,
-- its ids and the foreign keys that point at it alone. The trigger that names the column goes and
-- comes back as it was.
ALTER TABLE users ADD COLUMN source_before_sso TEXT;
UPDATE users SET source_before_sso = source;
DROP TRIGGER users_updated;
ALTER TABLE users DROP COLUMN source;
ALTER TABLE users ADD COLUMN source TEXT NOT NULL DEFAULT 'local'
    CHECK (source = 'local' OR source LIKE 'ldap:_%' OR source LIKE 'oidc:_%');
UPDATE users SET source = source_before_sso;
ALTER TABLE users DROP COLUMN source_before_sso;
CREATE TRIGGER users_updated
AFTER UPDATE OF id, realm, username, password_hash, role, disabled_at, kind, created_at, updated_at,
    source ON users
BEGIN UPDATE change_counters SET accounts = accounts + 1; END;

-- Sign-ins under way: sent to the provider, not yet back. The browser holds a random cookie;
-- only its SHA-256 is stored, with what the answer must match: `state` (sent to the provider and
-- returned), `nonce` (in the ID token) and the PKCE `verifier` (sent with the code). A row is
-- used once and lives 10 minutes. Times are Unix seconds.
CREATE TABLE console_sign_ins (
    id_sha256  TEXT PRIMARY KEY,
    realm      TEXT NOT NULL REFERENCES realms (name) ON DELETE CASCADE,
    issuer     TEXT NOT NULL,
    state      TEXT NOT NULL,
    nonce      TEXT NOT NULL,
    verifier   TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX console_sign_ins_by_expiry ON console_sign_ins (expires_at);
