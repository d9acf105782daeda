-- first
-- revision: a1
-- down_revison: None

-- alembic:upgrade
CREATE TABLE a (id int);
