alembic_embed::embed_migrations!("/srv/app/migrations");

fn main() {}
