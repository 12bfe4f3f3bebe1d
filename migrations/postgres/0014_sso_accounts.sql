-- Sign-in to the web console with a realm's OpenID provider (src/console/sso.rs).
-- Accounts it creates have `source` = 'oidc:<issuer name>'; `directory_groups` then holds the
-- policy groups the provider's ID token gave at the last sign-in, read at `directory_groups_at`.
ALTER TABLE users DROP CONSTRAINT users_source_check;
ALTER TABLE users ADD CONSTRAINT users_source_check
    CHECK (source = 'local' OR source LIKE 'ldap:_%' OR source LIKE 'oidc:_%');

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
