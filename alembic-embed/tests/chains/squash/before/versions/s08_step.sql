-- step 8
--
-- revision: s08
-- down_revision: s07
-- branch_labels: None
-- depends_on: None

-- alembic:upgrade
CREATE INDEX invoices_unpaid ON invoices (id) WHERE NOT paid;

-- alembic:downgrade
DROP INDEX invoices_unpaid;
