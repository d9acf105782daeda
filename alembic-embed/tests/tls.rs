//! TLS with rustls against a local server whose certificate is signed by a
//! test CA made here: `require`, `verify-ca`, `verify-full`, and the failures
//! that must fail.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use alembic_embed::tls::connect;
use alembic_throwaway::{Choice, Server};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// Puts a certificate and its key in the server's data folder (owned by
/// the server's user, the key private) and turns TLS on with them.
fn serve_tls(server: &Server, admin: &mut postgres::Client, cert: &str, key: &str) {
    let data = server.data_dir().unwrap();
    let owner = std::fs::metadata(data).unwrap();
    for (name, text, mode) in [("server.crt", cert, 0o644), ("server.key", key, 0o600)] {
        let path = data.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        std::os::unix::fs::chown(&path, Some(owner.uid()), Some(owner.gid())).unwrap();
    }
    admin.batch_execute("ALTER SYSTEM SET ssl = on").unwrap();
    admin.batch_execute("SELECT pg_reload_conf()").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
}

/// The server's TCP port.
fn port(server: &Server) -> String {
    server
        .admin_url()
        .rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn sslmodes_against_a_server_with_a_test_ca() {
    let server = Server::start(Choice::Local).unwrap();

    // A CA, and a server certificate for `localhost` signed by it.
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "cargo-alembic test CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server_cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_cert.pem()).unwrap();

    let mut admin = postgres::Client::connect(server.admin_url(), postgres::NoTls).unwrap();
    serve_tls(
        &server,
        &mut admin,
        &server_cert.pem(),
        &server_key.serialize_pem(),
    );

    let port = port(&server);
    let ca = ca_file.display().to_string();
    let url =
        |host: &str, query: &str| format!("postgresql://postgres@{host}:{port}/postgres?{query}");
    let uses_tls = |url: &str| -> bool {
        let mut c = connect(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        c.query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get(0)
    };

    assert!(
        uses_tls(&url("127.0.0.1", "sslmode=require")),
        "require encrypts"
    );
    assert!(uses_tls(&url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={ca}")
    )));
    assert!(
        uses_tls(&url(
            "127.0.0.1",
            &format!("sslmode=verify-ca&sslrootcert={ca}")
        )),
        "verify-ca ignores the host name"
    );
    assert!(!uses_tls(&url("127.0.0.1", "sslmode=disable")));
    assert!(uses_tls(&format!("host=localhost port={port} user=postgres dbname=postgres sslmode=verify-full sslrootcert={ca}")));

    // The TLS versions allowed, and no SNI (`sslsni=0`).
    let tls_version = |query: &str| -> String {
        let url = url(
            "localhost",
            &format!("sslmode=verify-full&sslrootcert={ca}&{query}"),
        );
        let mut c = connect(&url).unwrap_or_else(|e| panic!("{url}: {e}"));
        c.query_one(
            "SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get(0)
    };
    assert_eq!(tls_version("ssl_max_protocol_version=TLSv1.2"), "TLSv1.2");
    assert_eq!(tls_version("ssl_min_protocol_version=TLSv1.3"), "TLSv1.3");
    assert_eq!(tls_version("sslsni=0"), "TLSv1.3");

    // A socket folder: PostgreSQL offers no TLS there, and libpq connects
    // without asking, whatever sslmode says.
    let socket = server.data_dir().unwrap().parent().unwrap().join("sock");
    for mode in ["prefer", "require", "verify-full"] {
        let url = format!(
            "postgresql:///postgres?host={}&port={port}&user=postgres&sslmode={mode}",
            socket.display()
        );
        assert!(!uses_tls(&url), "{mode} over a socket");
    }
    // A host that is no DNS name, reached by its address: its name is
    // needed only to check it (verify-full), and is refused only then.
    let unnamed = |mode: &str| {
        format!("host=-not-dns- hostaddr=127.0.0.1 port={port} user=postgres dbname=postgres sslmode={mode} sslrootcert={ca}")
    };
    assert!(uses_tls(&unnamed("require")));
    assert!(uses_tls(&unnamed("verify-ca")));
    let refused = connect(&unnamed("verify-full")).err().expect("must fail");
    assert_eq!(
        refused.to_string(),
        format!("cannot connect to -not-dns-:{port}/postgres: sslmode=verify-full cannot check `-not-dns-` against the certificate: it is not a DNS name or an IP address")
    );

    // The host name does not match the certificate.
    let wrong_host = connect(&url(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    ))
    .err()
    .expect("must fail");
    assert!(
        wrong_host.to_string().contains("certificate"),
        "{wrong_host}"
    );
    // An unknown issuer (the public roots do not hold the test CA).
    let unknown = connect(&url("localhost", "sslmode=verify-full"))
        .err()
        .expect("must fail");
    assert!(
        unknown.to_string().contains("UnknownIssuer") || unknown.to_string().contains("issuer"),
        "{unknown}"
    );
    assert!(
        unknown
            .to_string()
            .starts_with(&format!("cannot connect to localhost:{port}/postgres: ")),
        "{unknown}"
    );

    // A role that logs in with a client certificate (libpq's `sslcert`
    // and `sslkey`), whose name is the certificate's common name.
    let data = server.data_dir().unwrap();
    std::fs::write(data.join("root.crt"), ca_cert.pem()).unwrap();
    admin.batch_execute("CREATE ROLE certuser LOGIN").unwrap();
    admin
        .batch_execute("ALTER SYSTEM SET ssl_ca_file = 'root.crt'")
        .unwrap();
    let hba = data.join("pg_hba.conf");
    let old = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(
        &hba,
        format!(
            "hostssl all certuser 127.0.0.1/32 cert\nhost all certuser 127.0.0.1/32 reject\n{old}"
        ),
    )
    .unwrap();
    admin.batch_execute("SELECT pg_reload_conf()").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut client_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    client_params
        .distinguished_name
        .push(DnType::CommonName, "certuser");
    let client_key = KeyPair::generate().unwrap();
    let client_cert = client_params.signed_by(&client_key, &issuer).unwrap();
    let (cert_file, key_file) = (dir.path().join("client.crt"), dir.path().join("client.key"));
    std::fs::write(&cert_file, client_cert.pem()).unwrap();
    std::fs::write(&key_file, client_key.serialize_pem()).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let as_certuser = |certs: &str| {
        format!("host=localhost hostaddr=127.0.0.1 port={port} user=certuser dbname=postgres sslmode=verify-full sslrootcert={ca} {certs}")
    };
    let with_cert = as_certuser(&format!(
        "sslcert={} sslkey={}",
        cert_file.display(),
        key_file.display()
    ));
    let mut c = connect(&with_cert).unwrap_or_else(|e| panic!("{e}"));
    let user: String = c
        .query_one("SELECT current_user::text", &[])
        .unwrap()
        .get(0);
    assert_eq!(user, "certuser");
    let url_form = format!(
        "postgresql://certuser@localhost:{port}/postgres?hostaddr=127.0.0.1&sslmode=require&sslcert={}&sslkey={}",
        cert_file.display(),
        key_file.display()
    );
    assert!(uses_tls(&url_form));
    let without = connect(&as_certuser("")).err().expect("no certificate");
    assert!(
        without
            .to_string()
            .ends_with("connection requires a valid client certificate"),
        "{without}"
    );
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let readable = connect(&with_cert).err().expect("a key others may read");
    assert_eq!(
        readable.to_string(),
        format!(
            "sslkey {} has group or world access: make it u=rw (0600) or less, as libpq requires",
            key_file.display()
        )
    );
    let missing = connect(&as_certuser("sslcert=/nonexistent/client.crt"))
        .err()
        .expect("a named certificate that is not there");
    assert!(
        missing
            .to_string()
            .starts_with("cannot read sslcert /nonexistent/client.crt: "),
        "{missing}"
    );

    // The asynchronous client, with the same modes and the same errors.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let full = url(
            "localhost",
            &format!("sslmode=verify-full&sslrootcert={ca}"),
        );
        let client = alembic_embed::tls::connect_async(&full)
            .await
            .unwrap_or_else(|e| panic!("{full}: {e}"));
        let row = client
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .unwrap();
        assert!(row.get::<_, bool>(0));
        let wrong_host = alembic_embed::tls::connect_async(&url(
            "127.0.0.1",
            &format!("sslmode=verify-full&sslrootcert={ca}"),
        ))
        .await
        .expect_err("must fail");
        assert!(
            wrong_host.to_string().contains("certificate"),
            "{wrong_host}"
        );
    });
}

/// SCRAM-SHA-256-PLUS: the channel binding data is the hash PostgreSQL
/// computes from its own certificate (`tls-server-end-point`, with the hash
/// of the certificate's signature), for certificates signed with SHA-256
/// and with SHA-384. (Algorithms without a hash of their own, such as
/// Ed25519, which this server cannot load, bind nothing: unit tests.)
#[test]
fn channel_binding_matches_what_the_server_computes() {
    let server = Server::start(Choice::Local).unwrap();
    let mut admin = postgres::Client::connect(server.admin_url(), postgres::NoTls).unwrap();
    let password = "Bind-4e5f6a7b";
    admin
        .batch_execute(&format!(
            "SET password_encryption = 'scram-sha-256'; CREATE ROLE binder LOGIN PASSWORD '{password}'"
        ))
        .unwrap();
    let hba = server.data_dir().unwrap().join("pg_hba.conf");
    let old = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(
        &hba,
        format!("hostssl all binder 127.0.0.1/32 scram-sha-256\nhost all binder 127.0.0.1/32 reject\n{old}"),
    )
    .unwrap();
    let port = port(&server);
    let url = |binding: &str| {
        format!("postgresql://binder:{password}@127.0.0.1:{port}/postgres?sslmode=require&channel_binding={binding}")
    };

    for (name, algorithm) in [
        ("ECDSA P-256 with SHA-256", &rcgen::PKCS_ECDSA_P256_SHA256),
        ("ECDSA P-384 with SHA-384", &rcgen::PKCS_ECDSA_P384_SHA384),
    ] {
        let key = KeyPair::generate_for(algorithm).unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        serve_tls(&server, &mut admin, &cert.pem(), &key.serialize_pem());

        let mut c = connect(&url("require")).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (ssl, bits): (bool, i32) = c
            .query_one(
                "SELECT ssl, bits FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .map(|row| (row.get(0), row.get(1)))
            .unwrap();
        assert!(ssl && bits > 0, "{name}");
        connect(&url("prefer")).unwrap_or_else(|e| panic!("{name}, prefer: {e}"));
        // A wrong password still fails with the binding in place.
        let wrong = connect(&url("require").replace(password, "nope"));
        assert!(wrong.is_err(), "{name}");
    }
}
