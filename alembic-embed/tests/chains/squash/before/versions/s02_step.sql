-- step 2
--
-- revision: s02
-- down_revision: s01
-- branch_labels: None
-- depends_on: None

-- alembic:upgrade
ALTER TABLE accounts ADD COLUMN email text;

-- alembic:downgrade
ALTER TABLE accounts DROP COLUMN email;
