-- step 7
--
-- revision: s07
-- down_revision: s06
-- branch_labels: None
-- depends_on: None

-- alembic:upgrade
ALTER TABLE invoices ADD COLUMN paid boolean NOT NULL DEFAULT false;

-- alembic:downgrade
ALTER TABLE invoices DROP COLUMN paid;
