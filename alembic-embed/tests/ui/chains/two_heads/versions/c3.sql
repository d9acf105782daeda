-- branch c3
-- revision: c3
-- down_revision: a1

-- alembic:upgrade
CREATE TABLE t_c3 (id int);

-- alembic:downgrade
DROP TABLE t_c3;
