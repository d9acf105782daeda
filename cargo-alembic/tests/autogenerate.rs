//! Autogenerate on a real PostgreSQL, table-driven: each case is a head
//! (the chain's one revision) and a desired schema. `cargo alembic migrate`
//! must write a revision whose proof passes (the upgrade gives the desired
//! catalog, the downgrade the head's back), with the statements and
//! hazards named; and run again on the chain with that revision added, it
//! must find nothing to change, which also runs the written file through
//! the engine.

#[path = "support/run.rs"]
mod run;

use std::path::Path;
use std::process::Output;

use run::{alembic_with, server, text};

struct Case {
    name: &'static str,
    head: &'static str,
    desired: &'static str,
    /// Text the written revisions must hold.
    expect: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        name: "first revision from an empty chain",
        head: "",
        desired: "CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL);\nCREATE INDEX users_email ON users (email);",
        expect: &["CREATE TABLE public.users (", "CONSTRAINT users_pkey PRIMARY KEY (id)", "CREATE INDEX users_email ON public.users USING btree (email);", "-- hazard: deletes data: drops table public.users"],
    },
    Case {
        name: "add a column with a default and not null",
        head: "CREATE TABLE users (id bigint PRIMARY KEY);",
        desired: "CREATE TABLE users (id bigint PRIMARY KEY, active boolean NOT NULL DEFAULT true);",
        expect: &["ALTER TABLE public.users ADD COLUMN active boolean NOT NULL DEFAULT true;", "-- hazard: deletes data: drops column active of public.users", "ALTER TABLE public.users DROP COLUMN active;"],
    },
    Case {
        name: "change a type, int to bigint and text to a domain",
        head: "CREATE TABLE t (n int DEFAULT 1, email text);",
        desired: "CREATE DOMAIN email AS text CHECK (VALUE LIKE '%@%');\nCREATE TABLE t (n bigint DEFAULT 1, email email);",
        expect: &["CREATE DOMAIN public.email AS text", "ALTER TABLE public.t ALTER COLUMN n TYPE bigint USING n::bigint;", "ALTER TABLE public.t ALTER COLUMN email TYPE email USING email::email;", "-- hazard: can fail, and rewrites public.t"],
    },
    Case {
        name: "add and drop not null",
        head: "CREATE TABLE t (a int, b int NOT NULL);",
        desired: "CREATE TABLE t (a int NOT NULL, b int);",
        expect: &["ALTER TABLE public.t ALTER COLUMN a SET NOT NULL;", "ALTER TABLE public.t ALTER COLUMN b DROP NOT NULL;", "fails if a has NULLs"],
    },
    Case {
        name: "an enum type and a new value",
        head: "CREATE TYPE mood AS ENUM ('sad', 'happy');\nCREATE TABLE p (m mood DEFAULT 'sad');\nCREATE VIEW pv AS SELECT m FROM p;",
        desired: "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');\nCREATE TYPE size AS ENUM ('s', 'm');\nCREATE TABLE p (m mood DEFAULT 'ok', s size);\nCREATE VIEW pv AS SELECT m FROM p;",
        expect: &["ALTER TYPE public.mood ADD VALUE IF NOT EXISTS 'ok' BEFORE 'happy';", "transactional: false", "CREATE TYPE public.size AS ENUM ('s', 'm');", "ALTER TABLE public.p ALTER COLUMN m SET DEFAULT 'ok'::mood;", "ALTER TYPE public.mood RENAME TO mood__old;"],
    },
    Case {
        name: "a foreign key",
        head: "CREATE TABLE a (id int PRIMARY KEY);\nCREATE TABLE b (a_id int);",
        desired: "CREATE TABLE a (id int PRIMARY KEY);\nCREATE TABLE b (a_id int REFERENCES a (id) ON DELETE CASCADE);",
        expect: &["ADD CONSTRAINT b_a_id_fkey FOREIGN KEY (a_id) REFERENCES a(id) ON DELETE CASCADE NOT VALID;", "ALTER TABLE public.b VALIDATE CONSTRAINT b_a_id_fkey;", "-- hazard: reads every row of public.b"],
    },
    Case {
        name: "a foreign key waits for its unique index",
        head: "CREATE TABLE a (id int, code text);\nCREATE TABLE b (a_code text);",
        desired: "CREATE TABLE a (id int, code text);\nCREATE UNIQUE INDEX a_code ON a (code);\nCREATE TABLE b (a_code text REFERENCES a (code));",
        expect: &["CREATE UNIQUE INDEX a_code ON public.a USING btree (code);\nALTER TABLE public.b ADD CONSTRAINT b_a_code_fkey", "because a new foreign key needs it"],
    },
    Case {
        name: "a partial unique index",
        head: "CREATE TABLE t (email text, deleted boolean);",
        desired: "CREATE TABLE t (email text, deleted boolean);\nCREATE UNIQUE INDEX t_live_email ON t (email) WHERE NOT deleted;",
        expect: &["CREATE UNIQUE INDEX CONCURRENTLY t_live_email ON public.t USING btree (email) WHERE (NOT deleted);", "DROP INDEX CONCURRENTLY public.t_live_email;", "(indexes, concurrently)"],
    },
    Case {
        name: "a view over a table whose column type changes",
        head: "CREATE TABLE t (id int, n int);\nCREATE VIEW v AS SELECT id, n FROM t;\nCREATE VIEW w AS SELECT id FROM v;",
        desired: "CREATE TABLE t (id int, n bigint);\nCREATE VIEW v AS SELECT id, n FROM t;\nCREATE VIEW w AS SELECT id FROM v;",
        expect: &["DROP VIEW public.w;\nDROP VIEW public.v;", "ALTER TABLE public.t ALTER COLUMN n TYPE bigint", "CREATE VIEW public.v AS", "CREATE VIEW public.w AS"],
    },
    Case {
        name: "a materialized view",
        head: "CREATE TABLE t (id int);",
        desired: "CREATE TABLE t (id int);\nCREATE MATERIALIZED VIEW mv AS SELECT count(*) AS n FROM t;",
        expect: &["CREATE MATERIALIZED VIEW public.mv AS", "DROP MATERIALIZED VIEW public.mv;"],
    },
    Case {
        name: "a function body change and a trigger using it",
        head: "CREATE TABLE t (id int, at timestamptz);\nCREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;",
        desired: "CREATE TABLE t (id int, at timestamptz);\nCREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.at := now(); RETURN NEW; END $$;\nCREATE TRIGGER t_touch BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION touch();",
        expect: &["CREATE OR REPLACE FUNCTION public.touch()", "NEW.at := now();", "CREATE TRIGGER t_touch BEFORE UPDATE ON public.t FOR EACH ROW EXECUTE FUNCTION touch();", "DROP TRIGGER t_touch ON public.t;"],
    },
    Case {
        name: "a sequence owned by a column",
        head: "CREATE TABLE t (id int);",
        desired: "CREATE SEQUENCE t_id_seq;\nCREATE TABLE t (id int DEFAULT nextval('t_id_seq'));\nALTER SEQUENCE t_id_seq OWNED BY t.id;",
        expect: &["CREATE SEQUENCE public.t_id_seq AS bigint", "ALTER TABLE public.t ALTER COLUMN id SET DEFAULT nextval('t_id_seq'::regclass);", "ALTER SEQUENCE public.t_id_seq OWNED BY public.t.id;", "DROP SEQUENCE public.t_id_seq;"],
    },
    Case {
        name: "an identity column",
        head: "CREATE TABLE t (id int NOT NULL);",
        desired: "CREATE TABLE t (id int GENERATED BY DEFAULT AS IDENTITY);",
        expect: &["ALTER TABLE public.t ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY;", "ALTER TABLE public.t ALTER COLUMN id DROP IDENTITY;"],
    },
    Case {
        name: "a generated column",
        head: "CREATE TABLE t (price numeric, qty int);",
        desired: "CREATE TABLE t (price numeric, qty int, total numeric GENERATED ALWAYS AS (price * qty) STORED);",
        expect: &["ADD COLUMN total numeric GENERATED ALWAYS AS ((price * (qty)::numeric)) STORED;", "-- hazard: takes an ACCESS EXCLUSIVE lock on public.t and rewrites it"],
    },
    Case {
        name: "a check constraint",
        head: "CREATE TABLE t (n int);",
        desired: "CREATE TABLE t (n int CONSTRAINT n_positive CHECK (n > 0));",
        expect: &["ALTER TABLE public.t ADD CONSTRAINT n_positive CHECK ((n > 0)) NOT VALID;", "ALTER TABLE public.t VALIDATE CONSTRAINT n_positive;", "ALTER TABLE public.t DROP CONSTRAINT n_positive;"],
    },
    Case {
        name: "a policy with row level security",
        head: "CREATE TABLE docs (owner name, body text);",
        desired: "CREATE TABLE docs (owner name, body text);\nALTER TABLE docs ENABLE ROW LEVEL SECURITY;\nCREATE POLICY own ON docs FOR SELECT USING (owner = current_user);",
        expect: &["ALTER TABLE public.docs ENABLE ROW LEVEL SECURITY;", "CREATE POLICY own ON public.docs AS PERMISSIVE FOR SELECT TO PUBLIC USING ((owner = CURRENT_USER));", "DROP POLICY own ON public.docs;", "ALTER TABLE public.docs DISABLE ROW LEVEL SECURITY;"],
    },
    Case {
        name: "a comment",
        head: "CREATE TABLE t (a int);\nCOMMENT ON COLUMN t.a IS 'old';",
        desired: "CREATE TABLE t (a int);\nCOMMENT ON TABLE t IS 'the table''s comment';\nCOMMENT ON COLUMN t.a IS 'new';",
        expect: &["COMMENT ON TABLE public.t IS 'the table''s comment';", "COMMENT ON COLUMN public.t.a IS 'new';", "COMMENT ON TABLE public.t IS NULL;", "COMMENT ON COLUMN public.t.a IS 'old';"],
    },
    Case {
        name: "a grant to a role",
        head: ROLE_HEAD,
        desired: ROLE_DESIRED,
        expect: &["GRANT SELECT ON TABLE public.t TO autogen_reader;", "GRANT INSERT ON TABLE public.t TO autogen_reader WITH GRANT OPTION;", "REVOKE INSERT, SELECT ON TABLE public.t FROM autogen_reader;", "REVOKE EXECUTE ON FUNCTION public.f() FROM PUBLIC;"],
    },
    Case {
        name: "a partitioned table with a new partition",
        head: "CREATE TABLE ev (at date NOT NULL, what text) PARTITION BY RANGE (at);\nCREATE TABLE ev_2025 PARTITION OF ev FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');",
        desired: "CREATE TABLE ev (at date NOT NULL, what text) PARTITION BY RANGE (at);\nCREATE TABLE ev_2025 PARTITION OF ev FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');\nCREATE TABLE ev_2026 PARTITION OF ev FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');\nCREATE INDEX ev_at ON ev (at);",
        expect: &["CREATE TABLE public.ev_2026 PARTITION OF public.ev FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');", "CREATE INDEX ev_at ON public.ev USING btree (at);", "DROP TABLE public.ev_2026;"],
    },
    Case {
        name: "a declared rename",
        head: "CREATE TABLE users (id int, name text);\nCREATE INDEX users_name ON users (name);",
        desired: "CREATE TABLE people ( -- renamed from: users\n    id int,\n    full_name text -- renamed from: name\n);\nCREATE INDEX users_name ON people (full_name);",
        expect: &["ALTER TABLE public.users RENAME TO people;", "ALTER TABLE public.people RENAME COLUMN name TO full_name;", "ALTER TABLE public.people RENAME COLUMN full_name TO name;", "ALTER TABLE public.people RENAME TO users;"],
    },
    Case {
        name: "a default changes and an enum loses a value",
        head: "CREATE TYPE state AS ENUM ('new', 'old', 'gone');\nCREATE TABLE t (s state DEFAULT 'new', n int DEFAULT 1);\nCREATE VIEW tv AS SELECT s FROM t;",
        desired: "CREATE TYPE state AS ENUM ('new', 'old');\nCREATE TABLE t (s state DEFAULT 'old', n int DEFAULT 2);\nCREATE VIEW tv AS SELECT s FROM t;",
        expect: &["ALTER TYPE public.state RENAME TO state__old;", "USING s::text::state", "DROP TYPE public.state__old;", "ALTER TABLE public.t ALTER COLUMN n SET DEFAULT 2;"],
    },
    Case {
        name: "a function a view calls changes its result",
        head: "CREATE FUNCTION score(n int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT n * 2';\nCREATE TABLE t (n int);\nCREATE VIEW tv AS SELECT score(n) AS s FROM t;",
        desired: "CREATE FUNCTION score(n int) RETURNS bigint LANGUAGE sql IMMUTABLE AS 'SELECT n * 2';\nCREATE TABLE t (n int);\nCREATE VIEW tv AS SELECT score(n) AS s FROM t;",
        expect: &["DROP VIEW public.tv;", "DROP FUNCTION public.score(n integer);", "RETURNS bigint"],
    },
    Case {
        name: "a materialized view over a view",
        head: "CREATE TABLE t (n int);\nCREATE VIEW v AS SELECT n FROM t;",
        desired: "CREATE TABLE t (n bigint);\nCREATE VIEW v AS SELECT n FROM t;\nCREATE MATERIALIZED VIEW mv AS SELECT sum(n) AS total FROM v;\nCREATE INDEX mv_total ON mv (total);",
        expect: &["CREATE MATERIALIZED VIEW public.mv AS", "CREATE INDEX mv_total ON public.mv"],
    },
    Case {
        name: "an extension and a column of its type",
        head: "CREATE TABLE t (id int);",
        desired: "CREATE EXTENSION IF NOT EXISTS hstore;\nCREATE TABLE t (id int, tags hstore);",
        expect: &["CREATE EXTENSION IF NOT EXISTS hstore WITH SCHEMA public;", "ALTER TABLE public.t ADD COLUMN tags hstore;", "DROP EXTENSION hstore;"],
    },
    Case {
        name: "a new schema with its objects, names that need quotes",
        head: "",
        desired: "CREATE SCHEMA billing;\nCOMMENT ON SCHEMA billing IS 'money';\nCREATE TYPE billing.\"Status\" AS ENUM ('open', 'paid');\nCREATE TABLE billing.\"Invoice\" (\"Id\" int PRIMARY KEY, \"order\" int, status billing.\"Status\");\nCREATE FUNCTION billing.total(i billing.\"Invoice\") RETURNS int LANGUAGE sql AS 'SELECT i.\"Id\"';\nCREATE VIEW billing.open AS SELECT \"Id\" FROM billing.\"Invoice\" WHERE status = 'open';",
        expect: &["CREATE SCHEMA billing;", "CREATE TABLE billing.\"Invoice\" (", "\"Id\" integer NOT NULL", "\"order\" integer", "COMMENT ON SCHEMA billing IS 'money';", "DROP SCHEMA billing;"],
    },
    Case {
        name: "a materialized view made again keeps its grant and comment",
        head: "CREATE TABLE t (n int);\nCREATE MATERIALIZED VIEW mv AS SELECT n FROM t;\nGRANT SELECT ON mv TO PUBLIC;\nCOMMENT ON MATERIALIZED VIEW mv IS 'totals';",
        desired: "CREATE TABLE t (n bigint);\nCREATE MATERIALIZED VIEW mv AS SELECT n FROM t;\nGRANT SELECT ON mv TO PUBLIC;\nCOMMENT ON MATERIALIZED VIEW mv IS 'totals';",
        expect: &["DROP MATERIALIZED VIEW public.mv;", "COMMENT ON MATERIALIZED VIEW public.mv IS 'totals';", "GRANT SELECT ON TABLE public.mv TO PUBLIC;"],
    },
    Case {
        name: "dropping a table",
        head: "CREATE TABLE keep (id int);\nCREATE TABLE old (id int);",
        desired: "CREATE TABLE keep (id int);",
        expect: &["-- hazard: deletes data: drops table public.old and its rows\nDROP TABLE public.old;", "CREATE TABLE public.old ("],
    },
];

const ROLE_HEAD: &str = "DO $$ BEGIN CREATE ROLE autogen_reader; EXCEPTION WHEN duplicate_object THEN NULL; END $$;\nCREATE TABLE t (a int);\nCREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';";
const ROLE_DESIRED: &str = "DO $$ BEGIN CREATE ROLE autogen_reader; EXCEPTION WHEN duplicate_object THEN NULL; END $$;\nCREATE TABLE t (a int);\nGRANT SELECT ON t TO autogen_reader;\nGRANT INSERT ON t TO autogen_reader WITH GRANT OPTION;\nCREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';\nREVOKE EXECUTE ON FUNCTION f() FROM PUBLIC;";

/// A project whose chain is one revision holding `head` (none when empty).
fn project(head: &str, desired: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let versions = dir.path().join("db/versions");
    std::fs::create_dir_all(&versions).unwrap();
    if !head.is_empty() {
        std::fs::write(
            versions.join("h1_head.sql"),
            format!("-- head\n-- revision: h1\n-- down_revision: None\n\n-- alembic:upgrade\n{head}\n\n-- alembic:downgrade\n"),
        )
        .unwrap();
    }
    std::fs::write(dir.path().join("schema.sql"), desired).unwrap();
    dir
}

fn migrate(dir: &Path, extra: &[&str]) -> Output {
    let admin = server().admin_url().to_owned();
    let mut args = vec![
        "--script-location",
        "db",
        "--database-url",
        &admin,
        "migrate",
        "-m",
        "change",
    ];
    args.extend_from_slice(extra);
    alembic_with(dir, &args, None)
}

/// The revisions autogenerate wrote, in name order.
fn written(dir: &Path) -> String {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("db/versions"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.ends_with("h1_head.sql"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_schema_transition_is_planned_and_proven() {
    // Four cases at a time on the test binary's server.
    let mut failures = Vec::new();
    for chunk in CASES.chunks(4) {
        failures.extend(std::thread::scope(|scope| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|case| scope.spawn(move || check(case)))
                .collect();
            handles
                .into_iter()
                .filter_map(|h| h.join().unwrap().err())
                .collect::<Vec<_>>()
        }));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// One case: proven, the expected text written, and nothing left to do.
fn check(case: &Case) -> Result<(), String> {
    let dir = project(case.head, case.desired);
    let schema = ["--schema", "schema.sql"];
    let out = migrate(dir.path(), &schema);
    let files = written(dir.path());
    if out.status.code() != Some(0) || !String::from_utf8_lossy(&out.stdout).contains("Proven:") {
        return Err(format!(
            "{}: not proven\n{}\n{files}",
            case.name,
            text(&out)
        ));
    }
    for e in case.expect {
        if !files.contains(e) {
            return Err(format!("{}: missing {e:?} in\n{files}", case.name));
        }
    }
    let again = migrate(dir.path(), &schema);
    let stdout = String::from_utf8_lossy(&again.stdout);
    if again.status.code() != Some(0) || !stdout.contains("No changes in schema detected") {
        return Err(format!(
            "{}: a second run found changes\n{}\n{files}",
            case.name,
            text(&again)
        ));
    }
    Ok(())
}

#[test]
fn no_change_writes_no_file() {
    let dir = project("CREATE TABLE t (id int);", "CREATE TABLE t (id int);");
    let out = alembic_with(
        dir.path(),
        &[
            "--script-location",
            "db",
            "--database-url",
            server().admin_url(),
            "revision",
            "--autogenerate",
            "-m",
            "nothing",
            "--schema",
            "schema.sql",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("No changes in schema detected"));
    assert_eq!(
        std::fs::read_dir(dir.path().join("db/versions"))
            .unwrap()
            .count(),
        1
    );
}

#[test]
fn a_live_database_can_be_the_desired_schema() {
    let dir = project("CREATE TABLE t (id int);", "");
    let live = server().database().unwrap();
    run::sql(
        live.url(),
        "CREATE TABLE t (id int, note text); CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY);",
    );
    let out = migrate(dir.path(), &["--from-database", live.url()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let files = written(dir.path());
    assert!(
        files.contains("ALTER TABLE public.t ADD COLUMN note text;"),
        "{files}"
    );
    assert!(
        !files.contains("alembic_version"),
        "the version table is no schema: {files}"
    );
}

#[test]
fn a_broken_schema_file_names_its_file_and_line() {
    let dir = project(
        "",
        "CREATE TABLE a (id int);\n\nCREATE TABLE b (id int,\n  oops nosuchtype);\n",
    );
    let out = migrate(dir.path(), &["--schema", "schema.sql"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Named as given (it was the absolute path for a file of the
    // configuration or of a folder).
    assert!(
        stderr.contains("x schema.sql:4: type \"nosuchtype\" does not exist"),
        "{stderr}"
    );
    // A schema folder from the configuration: its file named from the
    // current folder (it was named by its absolute path).
    std::fs::create_dir_all(dir.path().join("schema")).unwrap();
    std::fs::rename(
        dir.path().join("schema.sql"),
        dir.path().join("schema/01_tables.sql"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("Cargo.toml"),
        "[workspace]\nmembers = []\n\n[workspace.metadata.alembic]\nscript_location = \"db\"\nschema = \"schema\"\n",
    )
    .unwrap();
    let admin = server().admin_url().to_owned();
    let out = alembic_with(
        dir.path(),
        &["--database-url", &admin, "migrate", "-m", "change"],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("x schema/01_tables.sql:4: type \"nosuchtype\" does not exist"),
        "{stderr}"
    );
    std::fs::remove_file(dir.path().join("Cargo.toml")).unwrap();
    // An unterminated string is found before any server starts.
    std::fs::write(
        dir.path().join("schema.sql"),
        "CREATE TABLE a (id int);\nSELECT 'open;\n",
    )
    .unwrap();
    let out = migrate(dir.path(), &["--schema", "schema.sql"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("x schema.sql:2: unterminated"),
        "{}",
        text(&out)
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("db/versions"))
            .unwrap()
            .count(),
        0
    );
    // Without a schema: what to configure.
    let out = migrate(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("schema = \"schema.sql\""),
        "{}",
        text(&out)
    );
}

#[test]
fn check_and_verify_fail_while_the_head_differs_from_the_schema() {
    let dir = project(
        "CREATE TABLE t (id int);",
        "CREATE TABLE t (id int, note text);",
    );
    std::fs::write(
        dir.path().join("db/versions/h1_head.sql"),
        "-- head\n-- revision: h1\n-- down_revision: None\n\n-- alembic:upgrade\nCREATE TABLE t (id int);\n\n-- alembic:downgrade\nDROP TABLE t;\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("Cargo.toml"),
        "[package]\nname = \"drift\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
         [package.metadata.alembic]\nscript_location = \"db\"\nschema = \"schema.sql\"\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("src/lib.rs"), "").unwrap();
    let admin = server().admin_url().to_owned();
    let with_server = |args: &[&str]| {
        let mut all = vec!["--database-url", admin.as_str()];
        all.extend_from_slice(args);
        alembic_with(dir.path(), &all, None)
    };
    let out = with_server(&["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("differs from the schema schema.sql")
            && stderr.contains("ALTER TABLE public.t ADD COLUMN note text;"),
        "{stderr}"
    );
    let out = with_server(&["verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ADD COLUMN note text"),
        "{}",
        text(&out)
    );
    // The schema from the metadata; then nothing differs.
    let out = with_server(&["migrate", "-m", "note"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = with_server(&["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = with_server(&["verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("schema: the head matches it"),
        "{}",
        text(&out)
    );
}

#[test]
fn column_order_is_no_difference_and_a_folder_is_read_in_order() {
    let dir = project("CREATE TABLE t (a int, b text);", "");
    std::fs::remove_file(dir.path().join("schema.sql")).unwrap();
    let folder = dir.path().join("schema");
    std::fs::create_dir_all(&folder).unwrap();
    // 02 uses what 01 makes: sorted order, not the directory's.
    std::fs::write(
        folder.join("02_tables.sql"),
        "CREATE TABLE t (b text, a int);\nCREATE TABLE u (k kind);\n",
    )
    .unwrap();
    std::fs::write(
        folder.join("01_types.sql"),
        "CREATE TYPE kind AS ENUM ('x');\n",
    )
    .unwrap();
    std::fs::write(folder.join("notes.txt"), "not SQL").unwrap();
    let out = migrate(dir.path(), &["--schema", "schema"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let files = written(dir.path());
    assert!(
        files.contains("CREATE TYPE public.kind AS ENUM ('x');"),
        "{files}"
    );
    assert!(files.contains("CREATE TABLE public.u ("), "{files}");
    assert!(
        !files.contains("public.t"),
        "column order is no change: {files}"
    );
}
