//! A squashed chain compiled in by `embed_migrations!` (the files `cargo
//! alembic squash s05` wrote, the replaced ones kept): the binary migrates
//! an empty database through the squash, a database inside the squashed
//! range through the replaced revisions, and one beyond it with what is
//! left, all to one schema and one `alembic_version`. The chain before the
//! squash, compiled in beside it, put the databases where they were.

use std::sync::OnceLock;

use alembic_throwaway::{Choice, Server};

mod before {
    alembic_embed::embed_migrations!("tests/chains/squash/before");
}

mod after {
    alembic_embed::embed_migrations!("tests/chains/squash/after");
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| Server::start(Choice::Local).expect("a throwaway PostgreSQL"))
}

fn rows(client: &mut postgres::Client, sql: &str) -> Vec<String> {
    client
        .query(sql, &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Every column of every user table and view, and every index.
const SCHEMA: &str = "SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '') \
     FROM information_schema.columns WHERE table_schema = 'public' AND table_name NOT LIKE 'alembic_version%' \
     UNION ALL SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename NOT LIKE 'alembic_version%' ORDER BY 1";

#[test]
fn an_embedded_squashed_chain_migrates_every_database() {
    let chain = after::migrations::CHAIN.map().unwrap();
    assert_eq!(chain.len(), 4, "sq05, s06, s07, s08");
    assert_eq!(chain.replaced().len(), 5);
    let starts: [Option<&str>; 3] = [None, Some("s03"), Some("s07")];
    let mut schemas = Vec::new();
    for start in starts {
        let db = server().database().unwrap();
        let mut c = db.connect().unwrap();
        if let Some(rev) = start {
            before::migrations::runner()
                .upgrade_to(&mut c, rev)
                .unwrap();
        }
        let status = after::migrations::runner().status(&mut c).unwrap();
        let report = after::migrations::runner().upgrade(&mut c).unwrap();
        let ran: Vec<&str> = report.steps.iter().map(|s| s.revision.as_str()).collect();
        match start {
            None => assert_eq!(ran, ["sq05", "s06", "s07", "s08"]),
            Some("s03") => {
                assert_eq!(status.pending, ["s04", "s05", "s06", "s07", "s08"]);
                assert_eq!(ran, ["s04", "s05", "s06", "s07", "s08"]);
            }
            _ => assert_eq!(ran, ["s08"]),
        }
        assert_eq!(
            rows(&mut c, "SELECT version_num::text FROM alembic_version"),
            ["s08"]
        );
        // Up to date: the check off the packed chain (the squash's own row,
        // or the rows of the revisions it replaced, which only the graph
        // reads) says what the engine says.
        let again = after::migrations::runner().upgrade(&mut c).unwrap();
        let engine = after::migrations::runner()
            .upgrade_to(&mut c, "head")
            .unwrap();
        assert!(again.steps.is_empty() && engine.steps.is_empty());
        assert_eq!(
            (again.after, again.unverified, again.warnings),
            (engine.after, engine.unverified, engine.warnings),
            "{start:?}"
        );
        let status = after::migrations::runner().status(&mut c).unwrap();
        assert!(status.is_up_to_date(), "{status:?}");
        assert!(
            status.unverified.is_empty() && status.edited.is_empty(),
            "{status:?}"
        );
        schemas.push(rows(&mut c, SCHEMA));
    }
    assert!(schemas[0].len() > 10, "{:?}", schemas[0]);
    assert_eq!(schemas[0], schemas[1]);
    assert_eq!(schemas[0], schemas[2]);
}
