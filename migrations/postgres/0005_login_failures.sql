-- Failed password attempts per account (`account:<realm>/<user>`) and per client address
-- (`address:<ip>`), shared by every instance, for back-off and temporary locks.
CREATE TABLE login_failures (
    subject      TEXT PRIMARY KEY,
    failures     BIGINT NOT NULL,
    last_failure BIGINT NOT NULL,
    locked_until BIGINT NOT NULL                -- 0: not locked
);
