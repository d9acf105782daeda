alembic_embed::embed_migrations!("tests/ui/chains/unterminated");

fn main() {}
