alembic_embed::embed_migrations!("tests/ui/chains/missing_parent");

fn main() {}
