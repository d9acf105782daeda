-- first
-- revision: a1
-- down_revision: b2

-- alembic:upgrade
CREATE TABLE a (id int);
