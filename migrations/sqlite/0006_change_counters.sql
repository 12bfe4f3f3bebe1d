-- Servers keep what token requests read (accounts, grants, lock states) in memory and drop it when
-- one of these counters moves. Triggers bump them, so every writer counts: the server, operator
-- commands and hand-written SQL alike.
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

CREATE TRIGGER realms_inserted AFTER INSERT ON realms
BEGIN UPDATE change_counters SET accounts = accounts + 1; END;
CREATE TRIGGER realms_updated AFTER UPDATE ON realms
BEGIN UPDATE change_counters SET accounts = accounts + 1; END;
CREATE TRIGGER realms_deleted AFTER DELETE ON realms
BEGIN UPDATE change_counters SET accounts = accounts + 1; END;

CREATE TRIGGER users_inserted AFTER INSERT ON users
BEGIN UPDATE change_counters SET accounts = accounts + 1; END;
CREATE TRIGGER users_updated AFTER UPDATE ON users
BEGIN UPDATE change_counters SET accounts = accounts + 1; END;
CREATE TRIGGER users_deleted AFTER DELETE ON users
BEGIN UPDATE change_counters SET accounts = accounts + 1; END;

CREATE TRIGGER groups_inserted AFTER INSERT ON groups
BEGIN UPDATE change_counters SET accounts = accounts + 1; END;
CREATE TRIGGER groups_updated AFTER UPDATE ON groups
BEGIN UPDATE change_counters SET accounts = accounts + 1; END;
CREATE TRIGGER groups_deleted AFTER DELETE ON groups
BEGIN UPDATE change_counters SET accounts = accounts + 1; END;

CREATE TRIGGER group_members_inserted AFTER INSERT ON group_members
BEGIN UPDATE change_counters SET accounts = accounts + 1; END;
CREATE TRIGGER group_members_updated AFTER UPDATE ON group_members
BEGIN UPDATE change_counters SET accounts = accounts + 1; END;
CREATE TRIGGER group_members_deleted AFTER DELETE ON group_members
BEGIN UPDATE change_counters SET accounts = accounts + 1; END;

CREATE TRIGGER munge_mappings_inserted AFTER INSERT ON munge_mappings
BEGIN UPDATE change_counters SET accounts = accounts + 1; END;
CREATE TRIGGER munge_mappings_updated AFTER UPDATE ON munge_mappings
BEGIN UPDATE change_counters SET accounts = accounts + 1; END;
CREATE TRIGGER munge_mappings_deleted AFTER DELETE ON munge_mappings
BEGIN UPDATE change_counters SET accounts = accounts + 1; END;

CREATE TRIGGER tokens_updated
AFTER UPDATE OF id, kind, user_id, secret_sha256, name, client_id, scopes, created_at, expires_at,
    revoked_at ON tokens
BEGIN UPDATE change_counters SET accounts = accounts + 1; END;
CREATE TRIGGER tokens_deleted AFTER DELETE ON tokens
BEGIN UPDATE change_counters SET accounts = accounts + 1; END;

CREATE TRIGGER grants_inserted AFTER INSERT ON grants
BEGIN UPDATE change_counters SET grants = grants + 1; END;
CREATE TRIGGER grants_updated AFTER UPDATE ON grants
BEGIN UPDATE change_counters SET grants = grants + 1; END;
CREATE TRIGGER grants_deleted AFTER DELETE ON grants
BEGIN UPDATE change_counters SET grants = grants + 1; END;

CREATE TRIGGER login_failures_locked AFTER INSERT ON login_failures
WHEN NEW.locked_until > 0
BEGIN UPDATE change_counters SET locks = locks + 1; END;
CREATE TRIGGER login_failures_relocked AFTER UPDATE OF locked_until ON login_failures
WHEN NEW.locked_until <> OLD.locked_until
BEGIN UPDATE change_counters SET locks = locks + 1; END;
CREATE TRIGGER login_failures_unlocked AFTER DELETE ON login_failures
WHEN OLD.locked_until > 0
BEGIN UPDATE change_counters SET locks = locks + 1; END;
