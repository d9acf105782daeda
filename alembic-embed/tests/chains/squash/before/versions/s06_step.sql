-- step 6
--
-- revision: s06
-- down_revision: s05
-- branch_labels: None
-- depends_on: None

-- alembic:upgrade
CREATE TABLE invoices (id bigint PRIMARY KEY, order_id bigint REFERENCES orders (id));

-- alembic:downgrade
DROP TABLE invoices;
