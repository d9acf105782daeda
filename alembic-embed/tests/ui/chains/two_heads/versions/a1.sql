-- base
-- revision: a1
-- down_revision: None

-- alembic:upgrade
CREATE TABLE a (id int);

-- alembic:downgrade
DROP TABLE a;
