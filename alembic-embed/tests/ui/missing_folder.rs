alembic_embed::embed_migrations!("tests/ui/chains/nowhere");

fn main() {}
