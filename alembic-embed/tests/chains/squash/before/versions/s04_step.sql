-- step 4
--
-- revision: s04
-- down_revision: s03
-- branch_labels: None
-- depends_on: None

-- alembic:upgrade
CREATE INDEX orders_account ON orders (account_id);

-- alembic:downgrade
DROP INDEX orders_account;
