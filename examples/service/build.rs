//! Rebuilds the service when a revision file is added to or removed from
//! the chain `embed_migrations!` compiles in (an edit rebuilds on its own).

fn main() {
    alembic_chain::build::rerun_if_changed_at("../../migrations");
}
