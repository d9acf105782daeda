//! What libpq fills in when a URL leaves it out: the `PG*` environment
//! variables, the default socket folder, and the password file.
//!
//! `psql`, Alembic (through psycopg) and sqlx all read them, so a developer's
//! `DATABASE_URL=postgresql:///app` (the local server's socket, peer
//! authentication) or a password kept in `~/.pgpass` works here too. As in
//! libpq, what the URL says wins; the environment comes next; then the
//! defaults: the socket folder where a server listens (Debian's
//! `/var/run/postgresql`, or `/tmp`), else `localhost`, port 5432, the
//! user running the process, and a database named after the user.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_postgres::config::Host;

use crate::tls::ConnectError;

/// A lookup of environment variables: the process's, or a test's table.
pub(crate) type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process's environment; empty values count as unset, as in libpq.
pub(crate) fn process_env(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

/// Where libpq looks for a server's socket when no host is named: the
/// folder compiled into the distribution's libpq (`/var/run/postgresql` on
/// Debian and its derivatives, `/tmp` upstream and on macOS).
const SOCKET_FOLDERS: [&str; 4] = [
    "/var/run/postgresql",
    "/run/postgresql",
    "/tmp",
    "/private/tmp",
];

/// The keys a service file may set, with the variable each stands in for:
/// a service's settings come after the URL's and before the environment's,
/// as in libpq.
const SERVICE_KEYS: [(&str, &str); 19] = [
    ("host", "PGHOST"),
    ("hostaddr", "PGHOSTADDR"),
    ("port", "PGPORT"),
    ("user", "PGUSER"),
    ("password", "PGPASSWORD"),
    ("dbname", "PGDATABASE"),
    ("passfile", "PGPASSFILE"),
    ("sslmode", "PGSSLMODE"),
    ("sslrootcert", "PGSSLROOTCERT"),
    ("sslcert", "PGSSLCERT"),
    ("sslkey", "PGSSLKEY"),
    ("application_name", "PGAPPNAME"),
    ("connect_timeout", "PGCONNECT_TIMEOUT"),
    ("options", "PGOPTIONS"),
    ("channel_binding", "PGCHANNELBINDING"),
    ("sslnegotiation", "PGSSLNEGOTIATION"),
    ("target_session_attrs", "PGTARGETSESSIONATTRS"),
    ("gssencmode", "PGGSSENCMODE"),
    ("client_encoding", "PGCLIENTENCODING"),
];

/// A service's settings (`service=NAME` or `PGSERVICE`): the section of
/// the user's file (`PGSERVICEFILE`, else `~/.pg_service.conf`), else of
/// the system's (`PGSYSCONFDIR/pg_service.conf`, else Debian's
/// `/etc/postgresql-common/pg_service.conf`, else `/etc/pg_service.conf`).
pub(crate) fn service(name: &str, env: Env<'_>) -> Result<Vec<(String, String)>, ConnectError> {
    let user = env("PGSERVICEFILE")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|home| Path::new(&home).join(".pg_service.conf")));
    let system = match env("PGSYSCONFDIR") {
        Some(dir) => vec![Path::new(&dir).join("pg_service.conf")],
        None => vec![
            PathBuf::from("/etc/postgresql-common/pg_service.conf"),
            PathBuf::from("/etc/pg_service.conf"),
        ],
    };
    for file in user.into_iter().chain(system) {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        if let Some(settings) = service_section(&text, name) {
            return settings
                .into_iter()
                .map(|(key, value)| {
                    if SERVICE_KEYS.iter().any(|(k, _)| *k == key) {
                        Ok((key, value))
                    } else {
                        Err(ConnectError::Url(format!(
                            "service `{name}` in {}: `{key}` is not a setting this tool reads",
                            file.display()
                        )))
                    }
                })
                .collect();
        }
    }
    Err(ConnectError::Url(format!(
        "service `{name}` is not defined (looked in PGSERVICEFILE or ~/.pg_service.conf, then the system's pg_service.conf)"
    )))
}

/// The settings of section `[name]` of a service file, if it has one.
fn service_section(text: &str, name: &str) -> Option<Vec<(String, String)>> {
    let mut found = None;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            if found.is_some() {
                break;
            }
            if section.trim() == name {
                found = Some(Vec::new());
            }
            continue;
        }
        if let (Some(settings), Some((key, value))) = (&mut found, line.split_once('=')) {
            settings.push((key.trim().to_owned(), value.trim().to_owned()));
        }
    }
    found
}

/// The value a service's settings give for a `PG*` variable.
pub(crate) fn service_var(settings: &[(String, String)], var: &str) -> Option<String> {
    let (key, _) = SERVICE_KEYS.iter().find(|(_, v)| *v == var)?;
    settings
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, value)| value.clone())
}

/// `PGPORT`'s ports, checked.
fn env_ports(env: Env<'_>) -> Result<Option<Vec<u16>>, ConnectError> {
    env("PGPORT")
        .map(|ports| {
            ports
                .split(',')
                .map(|port| {
                    port.trim().parse().map_err(|_| {
                        ConnectError::Url(format!("PGPORT `{port}` is not a port number"))
                    })
                })
                .collect()
        })
        .transpose()
}

/// A URL's part before `?` with `PGPORT` written after hosts that name no
/// port, when the query names none either: the driver reads a host
/// without a port as port 5432, where libpq takes `PGPORT`.
pub(crate) fn with_env_port<'u>(
    base: &'u str,
    query_has_port: bool,
    env: Env<'_>,
) -> Result<std::borrow::Cow<'u, str>, ConnectError> {
    let unchanged = Ok(std::borrow::Cow::Borrowed(base));
    let Some((scheme, rest)) = base.split_once("://") else {
        return unchanged;
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => (Some(userinfo), hosts),
        None => (None, authority),
    };
    let has_port = |chunk: &str| match chunk.strip_prefix('[') {
        Some(v6) => v6.contains("]:"),
        None => chunk.contains(':'),
    };
    if query_has_port || hosts.is_empty() || hosts.split(',').any(has_port) {
        return unchanged;
    }
    let Some(ports) = env_ports(env)? else {
        return unchanged;
    };
    let hosts: Vec<String> = hosts
        .split(',')
        .enumerate()
        .map(|(i, host)| format!("{host}:{}", ports.get(i).unwrap_or(&ports[0])))
        .collect();
    let userinfo = userinfo.map_or_else(String::new, |u| format!("{u}@"));
    Ok(format!("{scheme}://{userinfo}{}{path}", hosts.join(",")).into())
}

/// Fills in what the URL left out, as libpq does.
pub(crate) fn fill_in(
    config: &mut tokio_postgres::Config,
    env: Env<'_>,
) -> Result<(), ConnectError> {
    if config.get_ports().is_empty() {
        for port in env_ports(env)?.unwrap_or_default() {
            config.port(port);
        }
    }
    if config.get_hosts().is_empty() && config.get_hostaddrs().is_empty() {
        if let Some(hosts) = env("PGHOST") {
            for host in hosts.split(',') {
                config.host(host.trim());
            }
        }
        if let Some(addrs) = env("PGHOSTADDR") {
            for addr in addrs.split(',') {
                let ip = addr.trim().parse().map_err(|_| {
                    ConnectError::Url(format!("PGHOSTADDR `{addr}` is not an IP address"))
                })?;
                config.hostaddr(ip);
            }
        }
        if config.get_hosts().is_empty() && config.get_hostaddrs().is_empty() {
            let port = config.get_ports().first().copied().unwrap_or(5432);
            config.host(socket_folder(&SOCKET_FOLDERS, port).unwrap_or("localhost"));
        }
    }
    if config.get_user().is_none() {
        if let Some(user) = env("PGUSER") {
            config.user(user);
        }
    }
    if config.get_dbname().is_none() {
        if let Some(dbname) = env("PGDATABASE") {
            config.dbname(dbname);
        }
    }
    if config.get_application_name().is_none() {
        if let Some(name) = env("PGAPPNAME") {
            config.application_name(name);
        }
    }
    if config.get_connect_timeout().is_none() {
        if let Some(seconds) = env("PGCONNECT_TIMEOUT") {
            let seconds: i64 = seconds.trim().parse().map_err(|_| {
                ConnectError::Url(format!(
                    "PGCONNECT_TIMEOUT `{seconds}` is not a number of seconds"
                ))
            })?;
            // libpq: zero or less waits forever; less than 2 s is 2 s.
            if seconds > 0 {
                config.connect_timeout(Duration::from_secs(seconds.max(2).unsigned_abs()));
            }
        }
    }
    Ok(())
}

/// The password, when the URL has none: `PGPASSWORD`, else the password
/// file's. Only what connects needs it: naming a target does not read
/// the file.
pub(crate) fn fill_in_password(config: &mut tokio_postgres::Config, env: Env<'_>) {
    if config.get_password().is_none() {
        if let Some(password) = env("PGPASSWORD").or_else(|| password_file(config, env)) {
            config.password(password);
        }
    }
}

/// The first of `folders` holding a server's socket for this port.
fn socket_folder<'f>(folders: &[&'f str], port: u16) -> Option<&'f str> {
    folders
        .iter()
        .copied()
        .find(|folder| Path::new(folder).join(format!(".s.PGSQL.{port}")).exists())
}

/// Whether every host is a socket folder: PostgreSQL offers no TLS there,
/// and libpq connects without asking, whatever `sslmode` says.
pub(crate) fn only_sockets(config: &tokio_postgres::Config) -> bool {
    config.get_hostaddrs().is_empty()
        && !config.get_hosts().is_empty()
        && config.get_hosts().iter().all(is_socket)
}

#[cfg(unix)]
fn is_socket(host: &Host) -> bool {
    matches!(host, Host::Unix(_))
}

#[cfg(not(unix))]
fn is_socket(_: &Host) -> bool {
    false
}

/// The user the server will see: the URL's or `PGUSER`, else the user
/// running the process.
pub(crate) fn user(config: &tokio_postgres::Config) -> Option<String> {
    config
        .get_user()
        .map(str::to_owned)
        .or_else(|| whoami::username().ok())
}

/// The password file's entry for the first host one matches: `PGPASSFILE`,
/// else `~/.pgpass`; ignored, as libpq ignores it, when others may read it.
fn password_file(config: &tokio_postgres::Config, env: Env<'_>) -> Option<String> {
    let path = env("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|home| Path::new(&home).join(".pgpass")))?;
    if !private(&path) {
        return None;
    }
    let text = std::fs::read_to_string(&path).ok()?;
    let user = user(config)?;
    let dbname = config
        .get_dbname()
        .map_or_else(|| user.clone(), str::to_owned);
    let ports = config.get_ports();
    let hosts: Vec<String> = if config.get_hosts().is_empty() {
        config
            .get_hostaddrs()
            .iter()
            .map(ToString::to_string)
            .collect()
    } else {
        config.get_hosts().iter().map(host_key).collect()
    };
    hosts.iter().enumerate().find_map(|(i, host)| {
        let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
        lookup(&text, [host, &port.to_string(), &dbname, &user])
    })
}

/// How a host is named in the password file: its name, or its socket
/// folder's path (`localhost` for a default folder, as in libpq).
fn host_key(host: &Host) -> String {
    match host {
        Host::Tcp(name) => name.clone(),
        #[cfg(unix)]
        Host::Unix(path) if SOCKET_FOLDERS.iter().any(|f| Path::new(f) == path) => {
            "localhost".into()
        }
        #[cfg(unix)]
        Host::Unix(path) => path.display().to_string(),
    }
}

#[cfg(unix)]
fn private(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o077 == 0)
}

#[cfg(not(unix))]
fn private(path: &Path) -> bool {
    path.is_file()
}

/// The password of the first line of a password file whose fields
/// (`host:port:database:user:password`, `*` for any, `\:` and `\\`
/// escaped) match.
fn lookup(text: &str, wanted: [&str; 4]) -> Option<String> {
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .find_map(|line| {
            let mut fields = split_fields(line);
            // The password ends at the next unescaped `:`, as in libpq.
            fields.truncate(5);
            let password = fields.pop().filter(|_| fields.len() == 4)?;
            let matches = fields
                .iter()
                .zip(wanted)
                .all(|(field, want)| field == "*" || field == want);
            matches.then_some(password)
        })
}

/// A password file's line split at unescaped `:`, escapes removed.
fn split_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == ':' {
            fields.push(String::new());
            continue;
        }
        let field = fields.last_mut().expect("never empty");
        match c {
            '\\' => field.extend(chars.next()),
            c => field.push(c),
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn filled(url: &str, vars: &[(&str, &str)]) -> Result<tokio_postgres::Config, ConnectError> {
        let mut config = tokio_postgres::Config::from_str(url).unwrap();
        let env = |key: &str| {
            vars.iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| (*v).to_owned())
        };
        fill_in(&mut config, &env)?;
        fill_in_password(&mut config, &env);
        Ok(config)
    }

    #[test]
    fn the_environment_fills_in_what_the_url_leaves_out() {
        let vars = [
            ("PGHOST", "/run/pg,db.example"),
            ("PGPORT", "5433,5434"),
            ("PGUSER", "env_user"),
            ("PGDATABASE", "env_db"),
            ("PGPASSWORD", "env_secret"),
            ("PGAPPNAME", "worker"),
            ("PGCONNECT_TIMEOUT", "1"),
        ];
        let config = filled("postgresql://", &vars).unwrap();
        assert_eq!(config.get_hosts().len(), 2);
        assert!(only_sockets(
            &filled("postgresql://", &[("PGHOST", "/run/pg")]).unwrap()
        ));
        assert!(!only_sockets(&config), "db.example is reached over TCP");
        assert_eq!(config.get_ports(), [5433, 5434]);
        assert_eq!(config.get_user(), Some("env_user"));
        assert_eq!(config.get_dbname(), Some("env_db"));
        assert_eq!(config.get_password(), Some(&b"env_secret"[..]));
        assert_eq!(config.get_application_name(), Some("worker"));
        assert_eq!(config.get_connect_timeout(), Some(&Duration::from_secs(2)));

        // What the URL says wins.
        let config = filled("postgresql://u:p@h:1/d?application_name=a", &vars).unwrap();
        assert_eq!(config.get_hosts(), [Host::Tcp("h".into())]);
        assert_eq!(config.get_ports(), [1]);
        assert_eq!(config.get_user(), Some("u"));
        assert_eq!(config.get_dbname(), Some("d"));
        assert_eq!(config.get_password(), Some(&b"p"[..]));
        assert_eq!(config.get_application_name(), Some("a"));

        // A hostaddr alone is a host: PGHOST does not add to it.
        let config = filled("hostaddr=127.0.0.1", &vars).unwrap();
        assert!(config.get_hosts().is_empty());
    }

    #[test]
    fn a_service_is_read_from_the_users_file_else_the_systems() {
        let dir = tempfile::tempdir().unwrap();
        let user_file = dir.path().join("user.conf");
        std::fs::write(
            &user_file,
            "# mine\n[app]\nhost = db.example\nport=6001\ndbname=app\n\n[other]\nhost=elsewhere\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("pg_service.conf"),
            "[shared]\nhost=shared.example\nsslmode=verify-full\n[bad]\nkrbsrvname=x\n",
        )
        .unwrap();
        let vars = |key: &str| match key {
            "PGSERVICEFILE" => Some(user_file.to_str().unwrap().to_owned()),
            "PGSYSCONFDIR" => Some(dir.path().to_str().unwrap().to_owned()),
            _ => None,
        };
        let app = service("app", &vars).unwrap();
        assert_eq!(service_var(&app, "PGHOST").as_deref(), Some("db.example"));
        assert_eq!(service_var(&app, "PGPORT").as_deref(), Some("6001"));
        assert_eq!(service_var(&app, "PGUSER"), None);
        let shared = service("shared", &vars).unwrap();
        assert_eq!(
            service_var(&shared, "PGSSLMODE").as_deref(),
            Some("verify-full")
        );
        assert_eq!(
            service("bad", &vars).unwrap_err().to_string(),
            format!(
                "the database URL does not parse: service `bad` in {}: `krbsrvname` is not a setting this tool reads",
                dir.path().join("pg_service.conf").display()
            )
        );
        assert!(service("missing", &vars)
            .unwrap_err()
            .to_string()
            .contains("service `missing` is not defined"));
    }

    #[test]
    fn pgport_goes_after_a_url_host_without_a_port() {
        let env = |key: &str| (key == "PGPORT").then(|| "6001,6002".to_owned());
        let port = |base: &str, query_has_port: bool| {
            with_env_port(base, query_has_port, &env)
                .unwrap()
                .into_owned()
        };
        assert_eq!(
            port("postgresql://u:p@h/db", false),
            "postgresql://u:p@h:6001/db"
        );
        assert_eq!(
            port("postgresql://a,[::1]", false),
            "postgresql://a:6001,[::1]:6002"
        );
        assert_eq!(port("postgresql://a@b@h", false), "postgresql://a@b@h:6001");
        for kept in [
            "postgresql://h:1/db",
            "postgresql://[::1]:1",
            "postgresql:///db",
            "postgresql://u@/db",
        ] {
            assert_eq!(port(kept, false), kept);
        }
        assert_eq!(port("postgresql://h/db", true), "postgresql://h/db");
        let bad = |key: &str| (key == "PGPORT").then(|| "x".to_owned());
        assert!(with_env_port("postgresql://h", false, &bad).is_err());
    }

    #[test]
    fn without_a_host_a_default_socket_folder_or_localhost() {
        // No server listens on port 1's socket in a default folder here.
        let config = filled("postgresql:///app?port=1", &[]).unwrap();
        assert_eq!(config.get_hosts(), [Host::Tcp("localhost".into())]);
        // The first folder where a server's socket for the port is.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".s.PGSQL.6001"), "").unwrap();
        let listening = dir.path().to_str().unwrap();
        let folders = ["/nonexistent", listening];
        assert_eq!(socket_folder(&folders, 6001), Some(listening));
        assert_eq!(socket_folder(&folders, 6002), None);
        let config = filled("dbname=app", &[("PGHOSTADDR", "::1")]).unwrap();
        assert_eq!(
            config.get_hostaddrs(),
            ["::1".parse::<std::net::IpAddr>().unwrap()]
        );
    }

    #[test]
    fn a_bad_environment_value_is_named() {
        for (key, value, why) in [
            ("PGPORT", "54x", "PGPORT `54x` is not a port number"),
            ("PGHOSTADDR", "db", "PGHOSTADDR `db` is not an IP address"),
            (
                "PGCONNECT_TIMEOUT",
                "soon",
                "PGCONNECT_TIMEOUT `soon` is not a number of seconds",
            ),
        ] {
            let err = filled("postgresql://", &[(key, value)]).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("the database URL does not parse: {why}")
            );
        }
    }

    #[test]
    fn the_password_file_is_read_as_libpq_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgpass");
        std::fs::write(
            &file,
            "# comment\n\
             other:*:*:*:no\n\
             db.example:5432:app:alice:first\n\
             db.example:*:*:alice:pa\\:ss\\\\word:with colons\n\
             localhost:*:*:*:socket\n\
             /srv/pg:6000:*:*:private\n",
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let path = file.to_str().unwrap();
        let password = |url: &str| {
            filled(url, &[("PGPASSFILE", path)])
                .unwrap()
                .get_password()
                .map(|p| String::from_utf8(p.to_vec()).unwrap())
        };
        assert_eq!(
            password("postgresql://alice@db.example/app").as_deref(),
            Some("first")
        );
        assert_eq!(
            password("postgresql://alice@db.example:6543/other").as_deref(),
            Some("pa:ss\\word")
        );
        assert_eq!(password("postgresql://bob@db.example/app"), None);
        assert_eq!(
            password("postgresql://bob@localhost/app").as_deref(),
            Some("socket")
        );
        assert_eq!(
            password("postgresql://bob@/app?host=/var/run/postgresql").as_deref(),
            Some("socket")
        );
        assert_eq!(
            password("postgresql://bob@/app?host=/srv/pg&port=6000").as_deref(),
            Some("private")
        );
        assert_eq!(
            password("postgresql://alice:given@db.example/app").as_deref(),
            Some("given")
        );
        // A first host without an entry, a second with one.
        assert_eq!(
            password("postgresql://alice@nowhere,db.example/app").as_deref(),
            Some("first")
        );

        // Readable by others: ignored, as libpq ignores it.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert_eq!(password("postgresql://alice@db.example/app"), None);
        }
    }
}
