-- add projects.archived_at
--
-- revision: f4d3b8e5a6c7
-- down_revision: e3c2a7d4f5b6
-- branch_labels: None
-- depends_on: None
-- create_date: 2026-11-21 09:20:00.000000

-- alembic:upgrade
ALTER TABLE projects ADD COLUMN archived_at timestamptz;

-- alembic:downgrade
ALTER TABLE projects DROP COLUMN archived_at;
