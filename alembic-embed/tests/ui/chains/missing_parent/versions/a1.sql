-- first
-- revision: a1
-- down_revision: 0ff1ce

-- alembic:upgrade
CREATE TABLE a (id int);
