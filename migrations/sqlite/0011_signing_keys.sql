-- Realm signing keys and their schedule. The private keys are files in the key directory
-- (`<keys.dir>/<realm>/<dir>/key.pem`); what is here is public and shared by every instance, so
-- every instance signs with the same key at the same moment. Times are Unix milliseconds.
--   generation:   1, 2, ... per realm; a rotation inserts max + 1, so two rotations at once cannot
--                 both succeed;
--   dir:          the key's directory below the realm's ('.' for the key made before rotation);
--   certificate:  PEM; self-signed, or issued by the realm's CA (ca_issued = 1);
--   activate_at:  when it starts signing; the last key activated (and not revoked) signs;
--   revoked_at:   never signs nor is published from then on.
CREATE TABLE signing_keys (
    realm          TEXT NOT NULL REFERENCES realms (name) ON DELETE CASCADE,
    generation     BIGINT NOT NULL CHECK (generation >= 1),
    kid            TEXT NOT NULL,
    dir            TEXT NOT NULL,
    certificate    TEXT NOT NULL,
    ca_issued      BIGINT NOT NULL CHECK (ca_issued IN (0, 1)),
    not_after_ms   BIGINT NOT NULL,
    created_at_ms  BIGINT NOT NULL,
    activate_at_ms BIGINT NOT NULL,
    revoked_at_ms  BIGINT,
    PRIMARY KEY (realm, generation),
    UNIQUE (realm, kid)
);

-- A realm's certificate authority: its certificate (the registries' rootcertbundle). Its private
-- key is a file that may be kept offline.
CREATE TABLE realm_cas (
    realm         TEXT PRIMARY KEY REFERENCES realms (name) ON DELETE CASCADE,
    certificate   TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);

-- Servers reload a realm's keys when the accounts counter moves.
CREATE TRIGGER signing_keys_inserted AFTER INSERT ON signing_keys
BEGIN UPDATE change_counters SET accounts = accounts + 1; END;
CREATE TRIGGER signing_keys_updated AFTER UPDATE ON signing_keys
BEGIN UPDATE change_counters SET accounts = accounts + 1; END;
CREATE TRIGGER signing_keys_deleted AFTER DELETE ON signing_keys
BEGIN UPDATE change_counters SET accounts = accounts + 1; END;
CREATE TRIGGER realm_cas_inserted AFTER INSERT ON realm_cas
BEGIN UPDATE change_counters SET accounts = accounts + 1; END;
CREATE TRIGGER realm_cas_updated AFTER UPDATE ON realm_cas
BEGIN UPDATE change_counters SET accounts = accounts + 1; END;
CREATE TRIGGER realm_cas_deleted AFTER DELETE ON realm_cas
BEGIN UPDATE change_counters SET accounts = accounts + 1; END;
