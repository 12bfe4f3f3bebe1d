-- The locks counter also moves when a subject's first failure is counted and whenever its record
-- is deleted, locked or not (it already moves when a lock is set or changed). Every server then
-- rereads that subject's record: a successful login on one instance clears failures counted on
-- another, and `portcullis lockout clear` reaches every cache. Further failures short of a lock
-- still move nothing.
DROP TRIGGER login_failures_locked ON login_failures;
DROP TRIGGER login_failures_unlocked ON login_failures;

CREATE TRIGGER login_failures_inserted AFTER INSERT ON login_failures
    FOR EACH ROW EXECUTE FUNCTION portcullis_count_change('locks');
CREATE TRIGGER login_failures_deleted AFTER DELETE ON login_failures
    FOR EACH ROW EXECUTE FUNCTION portcullis_count_change('locks');
