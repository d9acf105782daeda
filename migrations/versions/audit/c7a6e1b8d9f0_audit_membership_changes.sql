-- audit membership changes
--
-- revision: c7a6e1b8d9f0
-- down_revision: b6f5d0a7c8e9
-- branch_labels: None
-- depends_on: None
-- create_date: 2026-11-21 09:35:00.000000

-- alembic:upgrade
CREATE FUNCTION audit_membership_change() RETURNS trigger
LANGUAGE plpgsql AS $body$
BEGIN
    -- Semicolons inside the body do not end the statement.
    IF TG_OP = 'DELETE' THEN
        INSERT INTO audit_log (action, subject, details)
        VALUES ('membership.removed', 'project:' || OLD.project_id, jsonb_build_object('account_id', OLD.account_id));
        RETURN OLD;
    END IF;
    INSERT INTO audit_log (action, subject, details)
    VALUES ('membership.' || lower(TG_OP), 'project:' || NEW.project_id,
            jsonb_build_object('account_id', NEW.account_id, 'role', NEW.role));
    RETURN NEW;
END;
$body$;

CREATE TRIGGER memberships_audit
    AFTER INSERT OR UPDATE OR DELETE ON memberships
    FOR EACH ROW EXECUTE FUNCTION audit_membership_change();

-- alembic:downgrade
DROP TRIGGER memberships_audit ON memberships;
DROP FUNCTION audit_membership_change();
