alembic_embed::embed_migrations!("tests/ui/chains/two_heads", allow_multiple_heads = true);

fn main() {
    let heads = migrations::CHAIN.heads().unwrap();
    assert_eq!(heads, ["b2", "c3"]);
    assert_eq!(migrations::CHAIN.revisions().len(), 3);
}
