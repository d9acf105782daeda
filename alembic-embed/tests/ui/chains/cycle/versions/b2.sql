-- second
-- revision: b2
-- down_revision: a1

-- alembic:upgrade
CREATE TABLE b (id int);
