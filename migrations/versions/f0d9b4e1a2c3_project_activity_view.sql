-- project activity view
--
-- revision: f0d9b4e1a2c3
-- down_revision: e9c8a3d0f1b2
-- branch_labels: None
-- depends_on: None
-- create_date: 2026-11-21 09:50:00.000000

-- alembic:upgrade
CREATE VIEW project_activity AS
SELECT p.id AS project_id,
       p.name,
       p.archived_at IS NOT NULL AS archived,
       count(a.id) AS events,
       max(a.occurred_at) AS last_event_at
FROM projects p
LEFT JOIN audit_log a ON a.subject = 'project:' || p.id
GROUP BY p.id, p.name, p.archived_at;

GRANT SELECT ON project_activity TO PUBLIC;

-- alembic:downgrade
REVOKE SELECT ON project_activity FROM PUBLIC;
DROP VIEW project_activity;
