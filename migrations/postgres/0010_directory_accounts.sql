-- Accounts of LDAP and Active Directory users (src/auth/ldap): `source` says where an account
-- logs in ('local': its own password hash here; 'ldap:<directory>': the directory of that name
-- in the realm's configuration, which created it). A directory account's groups as last read from
-- its directory are kept with the time they were read, for `policy explain` and for refresh and
-- access token requests within the directory's groups_refresh_secs.
ALTER TABLE users ADD COLUMN source TEXT NOT NULL DEFAULT 'local'
    CHECK (source = 'local' OR source LIKE 'ldap:_%');
ALTER TABLE users ADD COLUMN directory_groups TEXT;   -- policy group names, space-separated
ALTER TABLE users ADD COLUMN directory_groups_at BIGINT;

-- Recording the groups read from a directory changes nothing servers keep in memory from this
-- table: it does not move the accounts counter (each server keeps the groups it read itself).
DROP TRIGGER users_changed ON users;
CREATE TRIGGER users_changed
    AFTER INSERT OR DELETE OR UPDATE OF id, realm, username, password_hash, role, disabled_at, kind,
        created_at, updated_at, source ON users
    FOR EACH STATEMENT EXECUTE FUNCTION portcullis_count_change('accounts');
