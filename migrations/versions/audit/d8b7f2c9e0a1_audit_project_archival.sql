-- audit project archival
--
-- revision: d8b7f2c9e0a1
-- down_revision: c7a6e1b8d9f0
-- branch_labels: None
-- depends_on: f4d3b8e5a6c7
-- create_date: 2026-11-21 09:40:00.000000

-- alembic:upgrade
-- Needs projects.archived_at from the trunk: hence depends_on f4d3b8e5a6c7.
CREATE FUNCTION audit_project_archival() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_log (action, subject, details)
    VALUES (CASE WHEN NEW.archived_at IS NULL THEN 'project.restored' ELSE 'project.archived' END,
            'project:' || NEW.id, jsonb_build_object('archived_at', NEW.archived_at));
    RETURN NEW;
END;
$$;

CREATE TRIGGER projects_archival_audit
    AFTER UPDATE OF archived_at ON projects
    FOR EACH ROW WHEN (OLD.archived_at IS DISTINCT FROM NEW.archived_at)
    EXECUTE FUNCTION audit_project_archival();

-- alembic:downgrade
DROP TRIGGER projects_archival_audit ON projects;
DROP FUNCTION audit_project_archival();
