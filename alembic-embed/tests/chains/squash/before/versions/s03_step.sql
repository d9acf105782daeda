-- step 3
--
-- revision: s03
-- down_revision: s02
-- branch_labels: None
-- depends_on: None

-- alembic:upgrade
CREATE TABLE orders (id bigint PRIMARY KEY, account_id bigint NOT NULL REFERENCES accounts (id), total numeric(12, 2));

-- alembic:downgrade
DROP TABLE orders;
