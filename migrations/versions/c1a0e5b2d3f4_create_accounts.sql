-- create accounts
--
-- revision: c1a0e5b2d3f4
-- down_revision: None
-- branch_labels: None
-- depends_on: None
-- create_date: 2026-11-21 09:00:00.000000

-- alembic:upgrade
CREATE TABLE accounts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email text NOT NULL,
    display_name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT accounts_email_key UNIQUE (email)
);

-- alembic:downgrade
DROP TABLE accounts;
