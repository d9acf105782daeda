-- branch b2
-- revision: b2
-- down_revision: a1

-- alembic:upgrade
CREATE TABLE t_b2 (id int);

-- alembic:downgrade
DROP TABLE t_b2;
