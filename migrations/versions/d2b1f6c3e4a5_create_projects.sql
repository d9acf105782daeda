-- create projects
--
-- revision: d2b1f6c3e4a5
-- down_revision: c1a0e5b2d3f4
-- branch_labels: None
-- depends_on: None
-- create_date: 2026-11-21 09:05:00.000000

-- alembic:upgrade
CREATE TABLE projects (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id bigint NOT NULL REFERENCES accounts (id),
    name text NOT NULL,
    slug text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT projects_owner_slug_key UNIQUE (owner_id, slug),
    CONSTRAINT projects_slug_format CHECK (slug ~ '^[a-z0-9-]+$')
);

-- alembic:downgrade
DROP TABLE projects;
