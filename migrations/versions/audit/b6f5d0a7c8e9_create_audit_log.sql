-- create audit log
--
-- revision: b6f5d0a7c8e9
-- down_revision: e3c2a7d4f5b6
-- branch_labels: audit
-- depends_on: None
-- create_date: 2026-11-21 09:30:00.000000

-- alembic:upgrade
CREATE TABLE audit_log (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    actor_id bigint REFERENCES accounts (id) ON DELETE SET NULL,
    action text NOT NULL,
    subject text NOT NULL,
    details jsonb NOT NULL DEFAULT '{}'::jsonb
);

CREATE INDEX audit_log_occurred_at_idx ON audit_log (occurred_at);

-- alembic:downgrade
DROP TABLE audit_log;
