//! Roles for the tests that check what a least-privilege role can do.

use alembic_throwaway::Database;

/// Makes `role` the usual application role of `db` (USAGE on `public`,
/// SELECT/INSERT/UPDATE/DELETE on the version table and the ledger, no
/// CREATE anywhere) and returns a URL connecting as it. The two tables must
/// exist.
pub fn dml_only(db: &Database, role: &str) -> String {
    db.connect()
        .unwrap()
        .batch_execute(&format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN CREATE ROLE {role} LOGIN; END IF; END $$;\
             REVOKE CREATE ON SCHEMA public FROM PUBLIC; GRANT USAGE ON SCHEMA public TO {role}; GRANT CONNECT ON DATABASE {} TO {role};\
             GRANT SELECT, INSERT, UPDATE, DELETE ON alembic_version, alembic_version_ledger TO {role};",
            db.name()
        ))
        .unwrap();
    db.url().replacen("postgres@", &format!("{role}@"), 1)
}
