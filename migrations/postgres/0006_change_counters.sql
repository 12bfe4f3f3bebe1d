-- Servers keep what token requests read (accounts, grants, lock states) in memory and drop it when
-- one of these counters moves. Triggers bump them, so every writer counts: the server, operator
-- commands and hand-written SQL alike; each bump also notifies channel `portcullis_changes`, which
-- every server listens on.
--   accounts: realms, users, groups, memberships, MUNGE mappings, and tokens (except minting one,
--             which no cache can hold yet, and recording its last use);
--   grants:   the policy rules kept in the database;
--   locks:    a lock set, changed or lifted.
CREATE TABLE change_counters (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    accounts BIGINT NOT NULL,
    grants   BIGINT NOT NULL,
    locks    BIGINT NOT NULL
);

INSERT INTO change_counters (id, accounts, grants, locks) VALUES (1, 0, 0, 0);

-- The grants counter replaces the per-realm generations.
DROP TABLE policy_generations;

-- Bumps the counter named by the trigger's argument and notifies the servers.
CREATE FUNCTION portcullis_count_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE change_counters SET
        accounts = accounts + CASE TG_ARGV[0] WHEN 'accounts' THEN 1 ELSE 0 END,
        grants   = grants   + CASE TG_ARGV[0] WHEN 'grants'   THEN 1 ELSE 0 END,
        locks    = locks    + CASE TG_ARGV[0] WHEN 'locks'    THEN 1 ELSE 0 END;
    PERFORM pg_notify('portcullis_changes', TG_ARGV[0]);
    RETURN NULL;
END
$$;

CREATE TRIGGER realms_changed AFTER INSERT OR UPDATE OR DELETE ON realms
    FOR EACH STATEMENT EXECUTE FUNCTION portcullis_count_change('accounts');
CREATE TRIGGER users_changed AFTER INSERT OR UPDATE OR DELETE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION portcullis_count_change('accounts');
CREATE TRIGGER groups_changed AFTER INSERT OR UPDATE OR DELETE ON groups
    FOR EACH STATEMENT EXECUTE FUNCTION portcullis_count_change('accounts');
CREATE TRIGGER group_members_changed AFTER INSERT OR UPDATE OR DELETE ON group_members
    FOR EACH STATEMENT EXECUTE FUNCTION portcullis_count_change('accounts');
CREATE TRIGGER munge_mappings_changed AFTER INSERT OR UPDATE OR DELETE ON munge_mappings
    FOR EACH STATEMENT EXECUTE FUNCTION portcullis_count_change('accounts');
CREATE TRIGGER tokens_changed
    AFTER UPDATE OF id, kind, user_id, secret_sha256, name, client_id, scopes, created_at, expires_at,
        revoked_at OR DELETE ON tokens
    FOR EACH STATEMENT EXECUTE FUNCTION portcullis_count_change('accounts');

CREATE TRIGGER grants_changed AFTER INSERT OR UPDATE OR DELETE ON grants
    FOR EACH STATEMENT EXECUTE FUNCTION portcullis_count_change('grants');

CREATE TRIGGER login_failures_locked AFTER INSERT ON login_failures
    FOR EACH ROW WHEN (NEW.locked_until > 0) EXECUTE FUNCTION portcullis_count_change('locks');
CREATE TRIGGER login_failures_relocked AFTER UPDATE OF locked_until ON login_failures
    FOR EACH ROW WHEN (NEW.locked_until <> OLD.locked_until)
    EXECUTE FUNCTION portcullis_count_change('locks');
CREATE TRIGGER login_failures_unlocked AFTER DELETE ON login_failures
    FOR EACH ROW WHEN (OLD.locked_until > 0) EXECUTE FUNCTION portcullis_count_change('locks');
