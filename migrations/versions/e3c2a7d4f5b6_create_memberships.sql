-- create memberships
--
-- revision: e3c2a7d4f5b6
-- down_revision: d2b1f6c3e4a5
-- branch_labels: None
-- depends_on: None
-- create_date: 2026-11-21 09:10:00.000000

-- alembic:upgrade
CREATE TYPE membership_role AS ENUM ('owner', 'maintainer', 'viewer');

CREATE TABLE memberships (
    account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    project_id bigint NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    role membership_role NOT NULL DEFAULT 'viewer',
    joined_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, project_id)
);

CREATE INDEX memberships_project_idx ON memberships (project_id);

-- alembic:downgrade
DROP TABLE memberships;
DROP TYPE membership_role;
