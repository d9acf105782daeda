-- step 1
--
-- revision: s01
-- down_revision: None
-- branch_labels: None
-- depends_on: None

-- alembic:upgrade
CREATE TABLE accounts (id bigint PRIMARY KEY, name text NOT NULL);

-- alembic:downgrade
DROP TABLE accounts;
