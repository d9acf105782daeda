-- step 5
--
-- revision: s05
-- down_revision: s04
-- branch_labels: None
-- depends_on: None

-- alembic:upgrade
CREATE VIEW order_totals AS SELECT account_id, sum(total) AS total FROM orders GROUP BY account_id;

-- alembic:downgrade
DROP VIEW order_totals;
