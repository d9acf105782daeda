alembic_embed::embed_migrations!("tests/ui/chains/parse_error");

fn main() {}
