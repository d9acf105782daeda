alembic_embed::embed_migrations!("tests/ui/chains/two_heads");

fn main() {}
