alembic_embed::embed_migrations!("tests/ui/chains/two_heads", allow_two_heads = true);

fn main() {}
