-- first
-- revision: a1
-- down_revision: None

-- alembic:upgrade
CREATE FUNCTION f() RETURNS int AS $$ SELECT 1;
