-- The locks counter also moves when a subject's first failure is counted and whenever its record
-- is deleted, locked or not (it already moves when a lock is set or changed). Every server then
-- rereads that subject's record: a successful login on one instance clears failures counted on
-- another, and `portcullis lockout clear` reaches every cache. Further failures short of a lock
-- still move nothing.
DROP TRIGGER login_failures_locked;
DROP TRIGGER login_failures_unlocked;

CREATE TRIGGER login_failures_inserted AFTER INSERT ON login_failures
BEGIN UPDATE change_counters SET locks = locks + 1; END;
CREATE TRIGGER login_failures_deleted AFTER DELETE ON login_failures
BEGIN UPDATE change_counters SET locks = locks + 1; END;
