-- merge the audit branch into the trunk
--
-- revision: e9c8a3d0f1b2
-- down_revision: a5e4c9f6b7d8, d8b7f2c9e0a1
-- branch_labels: None
-- depends_on: None
-- create_date: 2026-11-21 09:45:00.000000

-- alembic:upgrade

-- alembic:downgrade
