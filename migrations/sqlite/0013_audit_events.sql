-- The recent audit trail (src/audit.rs): audit events of a realm as the server logged them, kept
-- for the admin API and the console for `audit.keep_secs`. The log stays the complete record:
-- events arrive here through a bounded queue and may be missing when it overflowed.
--   at_ms:  when the event was logged, milliseconds since the Unix epoch;
--   event:  its name (token_issued, access_denied, console_signed_in, ...);
--   level:  INFO or WARN, as logged;
--   fields: the event's other fields, a JSON object of strings, numbers and booleans.
CREATE TABLE audit_events (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    realm  TEXT NOT NULL,
    at_ms  BIGINT NOT NULL,
    event  TEXT NOT NULL,
    level  TEXT NOT NULL,
    fields TEXT NOT NULL
);

CREATE INDEX audit_events_by_realm ON audit_events (realm, id);
CREATE INDEX audit_events_by_age ON audit_events (at_ms);
