//! The Docker provider, run where a Docker daemon answers (the CI job
//! `docker`: `cargo test -p alembic-throwaway --features docker-tests --test docker`).

use alembic_throwaway::{docker_status, Choice, Server, DOCKER_IMAGE};

#[test]
fn docker_provider_runs_a_current_postgres() {
    let daemon = docker_status().expect("this test runs where a Docker daemon answers");
    assert!(daemon.starts_with("a Docker daemon answers"));
    let server = Server::start(Choice::Docker).unwrap();
    assert!(
        server
            .description()
            .starts_with(&format!("Docker: {}:{}", DOCKER_IMAGE.0, DOCKER_IMAGE.1)),
        "{}",
        server.description()
    );
    let db = server.database().unwrap();
    let mut c = db.connect().unwrap();
    let version: i32 = c
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .unwrap()
        .get(0);
    assert!(version >= 170000, "PostgreSQL 17: {version}");
    c.batch_execute("CREATE TABLE t (id int)").unwrap();
}
