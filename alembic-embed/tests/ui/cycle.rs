alembic_embed::embed_migrations!("tests/ui/chains/cycle");

fn main() {}
