-- index active projects without locking writes
--
-- revision: a5e4c9f6b7d8
-- down_revision: f4d3b8e5a6c7
-- branch_labels: None
-- depends_on: None
-- create_date: 2026-11-21 09:25:00.000000
-- transactional: false

-- alembic:upgrade
-- CONCURRENTLY cannot run inside a transaction block, hence `transactional: false`.
CREATE INDEX CONCURRENTLY IF NOT EXISTS projects_active_owner_idx
    ON projects (owner_id)
    WHERE archived_at IS NULL;

-- alembic:downgrade
DROP INDEX CONCURRENTLY IF EXISTS projects_active_owner_idx;
