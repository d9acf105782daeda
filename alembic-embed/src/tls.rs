//! Connecting with libpq's URL and TLS settings, TLS done by rustls.
//!
//! The driver understands `sslmode=disable|prefer|require` and rejects
//! libpq's other TLS keys, so they are read here first: `sslmode` also takes
//! `allow`, `verify-ca` and `verify-full`, and `sslrootcert` names the
//! certificates to trust (a PEM file, `system` for the Mozilla roots, or by
//! default `~/.postgresql/root.crt` as in libpq), and `sslcert`/`sslkey`
//! a client certificate for servers that ask for one. As in libpq,
//! `require` encrypts without checking the server's certificate,
//! `verify-ca` checks the chain, and `verify-full` also checks the host
//! name. What a URL leaves out is filled in as libpq does (`libpq.rs`).

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

/// What can go wrong before or while connecting. Messages never contain the
/// URL (it may hold a password).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URL does not parse.
    #[error("the database URL does not parse: {0}")]
    Url(String),
    /// A TLS setting cannot be used.
    #[error("{0}")]
    Tls(String),
    /// The server could not be reached or refused the connection.
    #[error("cannot connect to {target}: {reason}")]
    Connect {
        /// `host:port/dbname`, without credentials.
        target: String,
        /// PostgreSQL's message or the system's.
        reason: String,
    },
}

/// libpq's `sslmode`.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS if the server wants it (treated as `prefer`).
    Allow,
    /// TLS if the server offers it.
    Prefer,
    /// TLS, certificate not checked.
    Require,
    /// TLS, certificate chain checked.
    VerifyCa,
    /// TLS, chain and host name checked.
    VerifyFull,
}

/// A URL split into what the driver takes and the TLS settings. Its
/// `Debug` form hides the password.
#[doc(hidden)]
pub struct Parsed {
    /// The URL or key/value string without the keys the driver rejects.
    pub driver: String,
    /// The TLS mode.
    pub mode: SslMode,
    /// `sslsni`: whether the host name is sent in the handshake.
    pub sni: bool,
    /// The TLS versions allowed: 2 for 1.2, 3 for 1.3.
    pub tls_versions: Vec<u8>,
    /// `sslrootcert`.
    pub root_cert: Option<String>,
    /// `sslcert`: the client's certificate, for servers that ask for one.
    pub client_cert: Option<String>,
    /// `sslkey`: its private key.
    pub client_key: Option<String>,
    /// `passfile`: the password file, in place of `PGPASSFILE`.
    pub passfile: Option<String>,
    /// The settings of the service named (`service`, `PGSERVICE`).
    pub service: Vec<(String, String)>,
}

impl std::fmt::Debug for Parsed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parsed")
            .field("driver", &alembic_chain::redact(&self.driver))
            .field("mode", &self.mode)
            .field("sni", &self.sni)
            .field("tls_versions", &self.tls_versions)
            .field("root_cert", &self.root_cert)
            .field("client_cert", &self.client_cert)
            .field("client_key", &self.client_key)
            .field("passfile", &self.passfile)
            .field(
                "service",
                &self.service.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn mode_of(value: &str) -> Result<SslMode, ConnectError> {
    Ok(match value {
        "disable" => SslMode::Disable,
        "allow" => SslMode::Allow,
        "prefer" => SslMode::Prefer,
        "require" => SslMode::Require,
        "verify-ca" => SslMode::VerifyCa,
        "verify-full" => SslMode::VerifyFull,
        other => {
            return Err(ConnectError::Url(format!(
            "unknown sslmode `{other}` (disable, allow, prefer, require, verify-ca, verify-full)"
        )))
        }
    })
}

/// Splits libpq's TLS keys out of a URL or key/value string.
#[doc(hidden)]
pub fn parse(url: &str) -> Result<Parsed, ConnectError> {
    parse_in(url, &crate::libpq::process_env)
}

/// Keys the driver does not take: read here, and left out of what it is
/// given. libpq's TLS keys and `passfile`; then keys with nothing to do
/// that a URL shared with an application may hold: `gssencmode` (no
/// GSSAPI here; `require` is refused), `client_encoding` (UTF8, the only
/// one the driver speaks; another is refused), `fallback_application_name`
/// and `sslcompression` (libpq's, without effect here), and sqlx's
/// `statement-cache-capacity` and `extra_float_digits`. And
/// `target_session_attrs`, whose `primary` (libpq 14) the driver knows
/// as `read-write`, and `service`, a section of a service file; `sslsni`
/// and the TLS versions allowed (`ssl_min_protocol_version`, `..._max_...`:
/// rustls speaks TLS 1.2 and 1.3).
const LIBPQ_ONLY: [&str; 16] = [
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "passfile",
    "gssencmode",
    "client_encoding",
    "fallback_application_name",
    "sslcompression",
    "statement-cache-capacity",
    "extra_float_digits",
    "target_session_attrs",
    "service",
    "sslsni",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
];

/// [`parse`], with `PGSSLMODE`, `PGSSLROOTCERT`, `PGSSLCERT` and
/// `PGSSLKEY` read from `env` when the URL does not set them.
fn parse_in(url: &str, env: crate::libpq::Env<'_>) -> Result<Parsed, ConnectError> {
    let url = &*libpq_url(url);
    check_form(url)?;
    let libpq_only = |key: &str| LIBPQ_ONLY.into_iter().find(|k| *k == key);
    let mut own: Vec<(&str, String)> = Vec::new();
    let mut kept = Vec::new();
    // A URL keeps its part before `?`; key/value settings are all kept.
    let base = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match libpq_only(k) {
                Some(key) => own.push((key, percent_decode(key, v)?)),
                None => kept.push(pair.to_owned()),
            }
        }
        Some(base)
    } else {
        for part in url.split_whitespace() {
            match part
                .split_once('=')
                .and_then(|(k, v)| Some((libpq_only(k)?, v)))
            {
                Some((key, v)) => own.push((key, v.trim_matches('\'').to_owned())),
                None => kept.push(part.to_owned()),
            }
        }
        None
    };
    // As in libpq, the last of a repeated key counts.
    let given = |key: &str| {
        own.iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
    };
    // A service's settings stand before the environment's.
    let service = match given("service").or_else(|| env("PGSERVICE")) {
        Some(name) => crate::libpq::service(&name, env)?,
        None => Vec::new(),
    };
    let outer = env;
    let env = |var: &str| crate::libpq::service_var(&service, var).or_else(|| outer(var));
    let env: crate::libpq::Env<'_> = &env;
    // A key of the URL, else libpq's variable for it; with the name to
    // show in a message.
    let setting = |key: &'static str, var: &'static str| {
        given(key)
            .map(|v| (v, key))
            .or_else(|| env(var).map(|v| (v, var)))
    };
    accepted_keys(&setting, &mut kept)?;
    driver_keys_from(env, &mut kept, base.is_some());
    let mode = match (given("sslmode"), env("PGSSLMODE")) {
        (Some(value), _) => mode_of(&value)?,
        (None, Some(value)) => mode_of(&value).map_err(|_| {
            ConnectError::Url(format!(
                "PGSSLMODE `{value}` is not an sslmode (disable, allow, prefer, require, verify-ca, verify-full)"
            ))
        })?,
        (None, None) => SslMode::Prefer,
    };
    kept.push(format!(
        "sslmode={}",
        match mode {
            SslMode::Disable => "disable",
            SslMode::Allow | SslMode::Prefer => "prefer",
            _ => "require",
        }
    ));
    let driver = match base {
        Some(base) => {
            let has_port = kept.iter().any(|pair| pair.starts_with("port="));
            let base = crate::libpq::with_env_port(base, has_port, env)?;
            format!("{base}?{}", kept.join("&"))
        }
        None => kept.join(" "),
    };
    let (sni, tls_versions) = tls_choices(&setting)?;
    Ok(Parsed {
        driver,
        mode,
        sni,
        tls_versions,
        root_cert: given("sslrootcert").or_else(|| env("PGSSLROOTCERT")),
        client_cert: given("sslcert").or_else(|| env("PGSSLCERT")),
        client_key: given("sslkey").or_else(|| env("PGSSLKEY")),
        passfile: given("passfile"),
        service,
    })
}

/// The driver's own keys from libpq's variables, where the URL has none;
/// written as the URL's query or as key/value settings.
fn driver_keys_from(env: crate::libpq::Env<'_>, kept: &mut Vec<String>, url_form: bool) {
    for (key, var) in [
        ("options", "PGOPTIONS"),
        ("channel_binding", "PGCHANNELBINDING"),
        ("sslnegotiation", "PGSSLNEGOTIATION"),
    ] {
        let named = kept
            .iter()
            .any(|pair| pair.split_once('=').map_or(pair.as_str(), |(k, _)| k) == key);
        if let Some(value) = env(var).filter(|_| !named) {
            kept.push(if url_form {
                format!("{key}={}", percent_encode(&value))
            } else {
                format!(
                    "{key}='{}'",
                    value.replace('\\', "\\\\").replace('\'', "\\'")
                )
            });
        }
    }
}

/// A key of the URL, else libpq's variable for it, with the name to show
/// in a message.
type Setting<'a> = &'a dyn Fn(&'static str, &'static str) -> Option<(String, &'static str)>;

/// Keys a shared URL may hold that the driver does not take: accepted
/// where there is nothing to do, mapped where the driver has its own name
/// (`target_session_attrs=primary`), refused by name where what they ask
/// cannot be given.
fn accepted_keys(setting: Setting<'_>, kept: &mut Vec<String>) -> Result<(), ConnectError> {
    if let Some((_, name)) = setting("gssencmode", "PGGSSENCMODE").filter(|(v, _)| v == "require") {
        return Err(ConnectError::Url(format!(
            "{name} `require`: GSSAPI encryption is not supported; use sslmode for TLS"
        )));
    }
    if let Some((encoding, name)) = setting("client_encoding", "PGCLIENTENCODING") {
        let utf8 = ["utf8", "utf-8", "unicode"].contains(&encoding.to_ascii_lowercase().as_str());
        if !utf8 {
            return Err(ConnectError::Url(format!(
                "{name} `{encoding}`: only UTF8 is supported"
            )));
        }
    }
    match setting("target_session_attrs", "PGTARGETSESSIONATTRS") {
        None => {}
        Some((v, _)) if v == "any" => {}
        Some((v, _)) if v == "read-write" || v == "primary" => {
            kept.push("target_session_attrs=read-write".into())
        }
        Some((other, name)) => {
            return Err(ConnectError::Url(format!(
                "{name} `{other}`: only any, read-write and primary are supported (the driver cannot pick a standby)"
            )))
        }
    }
    Ok(())
}

/// `sslsni` and the TLS versions allowed (2 for 1.2, 3 for 1.3).
fn tls_choices(setting: Setting<'_>) -> Result<(bool, Vec<u8>), ConnectError> {
    let sni = match setting("sslsni", "PGSSLSNI") {
        None => true,
        Some((v, _)) if v == "1" => true,
        Some((v, _)) if v == "0" => false,
        Some((other, name)) => {
            return Err(ConnectError::Url(format!(
                "{name} `{other}` is neither 0 nor 1"
            )))
        }
    };
    let version = |key: &'static str, var: &'static str, default: u8| match setting(key, var) {
        None => Ok(default),
        Some((v, name)) => match v.as_str() {
            "TLSv1" => Ok(0),
            "TLSv1.1" => Ok(1),
            "TLSv1.2" => Ok(2),
            "TLSv1.3" => Ok(3),
            _ => Err(ConnectError::Url(format!(
                "{name} `{v}` is not a TLS version (TLSv1, TLSv1.1, TLSv1.2, TLSv1.3)"
            ))),
        },
    };
    let lowest = version("ssl_min_protocol_version", "PGSSLMINPROTOCOLVERSION", 2)?;
    let highest = version("ssl_max_protocol_version", "PGSSLMAXPROTOCOLVERSION", 3)?;
    let tls_versions = [2, 3]
        .into_iter()
        .filter(|v| (lowest..=highest).contains(v))
        .collect::<Vec<u8>>();
    if tls_versions.is_empty() {
        return Err(ConnectError::Url(
            "the TLS versions allowed leave neither TLS 1.2 nor 1.3, the ones rustls speaks".into(),
        ));
    }
    Ok((sni, tls_versions))
}

/// SQLAlchemy's `postgresql+psycopg2://...` (an Alembic project's
/// `sqlalchemy.url`, Flask's `SQLALCHEMY_DATABASE_URI`) as libpq's
/// `postgresql://...`: the part after `+` names a Python driver, and the
/// rest is the same URL, so one variable serves both.
#[doc(hidden)]
pub fn libpq_url(url: &str) -> std::borrow::Cow<'_, str> {
    for scheme in ["postgresql+", "postgres+"] {
        let Some((driver, rest)) = url.strip_prefix(scheme).and_then(|r| r.split_once("://"))
        else {
            continue;
        };
        if !driver.is_empty()
            && driver
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return format!("postgresql://{rest}").into();
        }
    }
    url.into()
}

/// What the driver would only call an "invalid connection string": empty
/// text, another database's URL, or neither a URL nor `key=value` settings.
/// Messages show at most the scheme, never the rest of the text.
fn check_form(url: &str) -> Result<(), ConnectError> {
    let bad = |why: &str| Err(ConnectError::Url(why.to_owned()));
    if url.trim().is_empty() {
        return bad("it is empty");
    }
    match alembic_chain::url_scheme(url) {
        Some("postgresql" | "postgres") => return Ok(()),
        Some(scheme) => {
            return Err(ConnectError::Url(format!(
            "`{scheme}://` is not a PostgreSQL URL, which starts with postgresql:// or postgres://"
        )))
        }
        None => {}
    }
    if !url.contains('=') {
        return bad(
            "it is neither a postgresql:// URL nor key=value settings (`host=... dbname=...`)",
        );
    }
    Ok(())
}

/// The driver's reason for rejecting a URL when it names an option or a
/// position (never the URL's text), else its general message.
fn driver_reason(e: &tokio_postgres::Error) -> String {
    let Some(reason) = std::error::Error::source(e).map(ToString::to_string) else {
        return e.to_string();
    };
    let named = ["invalid value for option", "unknown option", "unterminated"];
    if named.iter().any(|p| reason.starts_with(p)) || reason == "unexpected EOF" {
        reason
    } else if reason.starts_with("unexpected character at byte") {
        // A key not followed by `=`. The driver's message quotes a
        // character (maybe a password's) at an offset into the settings as
        // rewritten here, not as written.
        "a setting is not written key=value".into()
    } else {
        e.to_string()
    }
}

/// Escapes a URL's query value: every byte but the unreserved ones.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Decodes `%XX` escapes of a URL's query value; a `%` not followed by two
/// hex digits stays as it is, as libpq leaves it.
fn percent_decode(key: &str, text: &str) -> Result<String, ConnectError> {
    let bytes = text.as_bytes();
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) {
                // Two hex digits: at most 255.
                out.push(u8::try_from(hi * 16 + lo).unwrap_or(u8::MAX));
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).map_err(|_| {
        ConnectError::Url(format!("{key} is not UTF-8 once its %-escapes are decoded"))
    })
}

/// Checks that the driver takes a URL or key/value string, without
/// connecting: what a list of targets checks before it runs any.
#[doc(hidden)]
#[cfg(any(feature = "sync", feature = "async"))]
pub fn validate(url: &str) -> Result<(), ConnectError> {
    resolve(url, &crate::libpq::process_env, false).map(|_| ())
}

/// Where a URL points, without its password: `host:port/dbname`, with
/// what libpq fills in (a socket folder is shown as its path).
#[doc(hidden)]
pub fn describe_target(url: &str) -> String {
    resolve(url, &crate::libpq::process_env, false).map_or_else(
        |_| "the configured database".into(),
        |(config, _)| target_of(&config),
    )
}

fn target_of(config: &tokio_postgres::Config) -> String {
    let host = match (config.get_hosts().first(), config.get_hostaddrs().first()) {
        // An IPv6 address in brackets, as in a URL, so the port stands out.
        (Some(tokio_postgres::config::Host::Tcp(name)), _) if name.contains(':') => {
            format!("[{name}]")
        }
        (Some(tokio_postgres::config::Host::Tcp(name)), _) => name.clone(),
        #[cfg(unix)]
        (Some(tokio_postgres::config::Host::Unix(path)), _) => path.display().to_string(),
        (None, Some(std::net::IpAddr::V6(addr))) => format!("[{addr}]"),
        (None, Some(addr)) => addr.to_string(),
        (None, None) => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config
        .get_dbname()
        .map(str::to_owned)
        .or_else(|| crate::libpq::user(config))
        .unwrap_or_else(|| "postgres".into());
    format!("{host}:{port}/{db}")
}

fn roots(root_cert: Option<&str>) -> Result<RootCertStore, ConnectError> {
    let mut store = RootCertStore::empty();
    let default = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".postgresql/root.crt"));
    let file = match root_cert {
        Some("system") => None,
        Some(path) => Some(PathBuf::from(path)),
        None => default.filter(|p| p.is_file()),
    };
    match file {
        Some(path) => {
            let pem = std::fs::read(&path).map_err(|e| {
                ConnectError::Tls(format!("cannot read sslrootcert {}: {e}", path.display()))
            })?;
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert = cert.map_err(|e| {
                    ConnectError::Tls(format!("sslrootcert {} is not PEM: {e}", path.display()))
                })?;
                store.add(cert).map_err(|e| {
                    ConnectError::Tls(format!("sslrootcert {}: {e}", path.display()))
                })?;
            }
            if store.is_empty() {
                return Err(ConnectError::Tls(format!(
                    "sslrootcert {} holds no certificate",
                    path.display()
                )));
            }
        }
        None => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    Ok(store)
}

/// Accepts any certificate (libpq's `require`), still checking the
/// handshake's signatures; with `chain_only`, checks the chain but not the
/// host name (`verify-ca`).
#[derive(Debug)]
struct Lenient {
    inner: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match &self.inner {
            None => Ok(ServerCertVerified::assertion()),
            Some(v) => {
                match v.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
                    Err(rustls::Error::InvalidCertificate(
                        rustls::CertificateError::NotValidForName,
                    ))
                    | Err(rustls::Error::InvalidCertificate(
                        rustls::CertificateError::NotValidForNameContext { .. },
                    )) => Ok(ServerCertVerified::assertion()),
                    other => other,
                }
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The rustls connector for a URL's TLS settings.
#[doc(hidden)]
pub fn connector(
    parsed: &Parsed,
) -> Result<crate::rustls_connect::MakeRustlsConnect, ConnectError> {
    let root_cert = parsed.root_cert.as_deref();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = parsed
        .tls_versions
        .iter()
        .map(|v| match v {
            3 => &rustls::version::TLS13,
            _ => &rustls::version::TLS12,
        })
        .collect();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| ConnectError::Tls(e.to_string()))?;
    let builder = match parsed.mode {
        SslMode::VerifyFull => builder.with_root_certificates(roots(root_cert)?),
        SslMode::VerifyCa => {
            let inner = WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots(root_cert)?),
                provider.clone(),
            )
            .build()
            .map_err(|e| ConnectError::Tls(e.to_string()))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Lenient {
                    inner: Some(inner),
                    provider,
                }))
        }
        _ => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Lenient {
                inner: None,
                provider,
            })),
    };
    let mut config = match client_certificate(parsed)? {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key).map_err(|e| {
            ConnectError::Tls(format!("the client certificate cannot be used: {e}"))
        })?,
        None => builder.with_no_client_auth(),
    };
    config.enable_sni = parsed.sni;
    Ok(crate::rustls_connect::MakeRustlsConnect::new(
        config,
        parsed.mode == SslMode::VerifyFull,
    ))
}

/// The client's certificate chain and key, for a server that asks for
/// one: `sslcert` and `sslkey`, or libpq's `~/.postgresql/postgresql.crt`
/// and `.key` when the certificate is there. A named certificate that is
/// missing is an error (libpq goes on without it).
fn client_certificate(
    parsed: &Parsed,
) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>, ConnectError> {
    let home = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".postgresql"));
    let cert = match (&parsed.client_cert, &home) {
        (Some(path), _) => PathBuf::from(path),
        (None, Some(home)) if home.join("postgresql.crt").is_file() => home.join("postgresql.crt"),
        (None, _) => return Ok(None),
    };
    let key = match (&parsed.client_key, &home) {
        (Some(path), _) => PathBuf::from(path),
        (None, Some(home)) => home.join("postgresql.key"),
        (None, None) => cert.with_extension("key"),
    };
    let read = |what: &str, path: &std::path::Path| {
        std::fs::read(path)
            .map_err(|e| ConnectError::Tls(format!("cannot read {what} {}: {e}", path.display())))
    };
    let pem = read("sslcert", &cert)?;
    let chain = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ConnectError::Tls(format!("sslcert {} is not PEM: {e}", cert.display())))?;
    if chain.is_empty() {
        return Err(ConnectError::Tls(format!(
            "sslcert {} holds no certificate",
            cert.display()
        )));
    }
    private_key_file_is_private(&key)?;
    let pem = read("sslkey", &key)?;
    let private = rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|e| ConnectError::Tls(format!("sslkey {} is not PEM: {e}", key.display())))?
        .ok_or_else(|| {
            ConnectError::Tls(format!(
                "sslkey {} holds no unencrypted private key (PKCS#8, PKCS#1 or SEC1)",
                key.display()
            ))
        })?;
    Ok(Some((chain, private)))
}

/// libpq's rule: a key readable by others is refused (`0640` is allowed
/// when root owns it).
#[cfg(unix)]
fn private_key_file_is_private(key: &std::path::Path) -> Result<(), ConnectError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let Ok(meta) = std::fs::metadata(key) else {
        return Ok(()); // Reading it says why.
    };
    let mode = meta.permissions().mode();
    let allowed = if meta.uid() == 0 { 0o037 } else { 0o077 };
    if mode & allowed != 0 {
        return Err(ConnectError::Tls(format!(
            "sslkey {} has group or world access: make it u=rw (0600) or less, as libpq requires",
            key.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn private_key_file_is_private(_: &std::path::Path) -> Result<(), ConnectError> {
    Ok(())
}

/// The driver's configuration and TLS mode for a libpq URL, and the
/// target as shown in messages.
#[cfg(any(feature = "sync", feature = "async"))]
fn prepare(url: &str) -> Result<(tokio_postgres::Config, Parsed, String), ConnectError> {
    let (config, parsed) = resolve(url, &crate::libpq::process_env, true)?;
    let target = target_of(&config);
    Ok((config, parsed, target))
}

/// The driver's configuration for a URL, completed as libpq completes it
/// (a service's settings, the `PG*` variables of `env`, the socket folder,
/// and with `password` the password file); over sockets only, without
/// TLS, as libpq connects there.
fn resolve(
    url: &str,
    env: crate::libpq::Env<'_>,
    password: bool,
) -> Result<(tokio_postgres::Config, Parsed), ConnectError> {
    let mut parsed = parse_in(url, env)?;
    // The driver's parse errors never contain the URL.
    let mut config = tokio_postgres::Config::from_str(&parsed.driver)
        .map_err(|e| ConnectError::Url(driver_reason(&e)))?;
    // A URL's `passfile` in place of `PGPASSFILE`, and a service's
    // settings before the environment's.
    let passfile = parsed.passfile.clone();
    let service = std::mem::take(&mut parsed.service);
    let env = |key: &str| match (key, &passfile) {
        ("PGPASSFILE", Some(file)) => Some(file.clone()),
        _ => crate::libpq::service_var(&service, key).or_else(|| env(key)),
    };
    crate::libpq::fill_in(&mut config, &env)?;
    if password {
        crate::libpq::fill_in_password(&mut config, &env);
    }
    if crate::libpq::only_sockets(&config) {
        parsed.mode = SslMode::Disable;
        config.ssl_mode(tokio_postgres::config::SslMode::Disable);
    }
    Ok((config, parsed))
}

/// One line: PostgreSQL's message, or the system's (or the TLS layer's)
/// reason; the driver's own text says only "error connecting to server".
#[cfg(any(feature = "sync", feature = "async"))]
fn connect_error(target: String, e: &tokio_postgres::Error) -> ConnectError {
    let reason = match (e.as_db_error(), std::error::Error::source(e)) {
        (Some(db), _) => db.message().to_owned(),
        (None, Some(inner)) => inner.to_string(),
        (None, None) => e.to_string(),
    };
    ConnectError::Connect { target, reason }
}

/// Connects with libpq's URL and TLS settings (synchronous client). What
/// the URL leaves out is filled in as libpq fills it in: the `PG*`
/// variables, the password file, a local server's socket, the user
/// running the process. Over a socket there is no TLS, as in libpq.
#[cfg(feature = "sync")]
pub fn connect(url: &str) -> Result<postgres::Client, ConnectError> {
    let (config, parsed, target) = prepare(url)?;
    let config = postgres::Config::from(config);
    let result = match parsed.mode {
        SslMode::Disable => config.connect(postgres::NoTls),
        _ => config.connect(connector(&parsed)?),
    };
    result.map_err(|e| connect_error(target, &e))
}

/// Connects with libpq's URL and TLS settings (asynchronous client), as
/// `connect` does; the connection is driven by a task spawned on the
/// current Tokio runtime.
#[cfg(feature = "async")]
pub async fn connect_async(url: &str) -> Result<tokio_postgres::Client, ConnectError> {
    let (config, parsed, target) = prepare(url)?;
    let result = match parsed.mode {
        SslMode::Disable => {
            config
                .connect(tokio_postgres::NoTls)
                .await
                .map(|(client, connection)| {
                    spawn_connection(connection);
                    client
                })
        }
        _ => config
            .connect(connector(&parsed)?)
            .await
            .map(|(client, connection)| {
                spawn_connection(connection);
                client
            }),
    };
    result.map_err(|e| connect_error(target, &e))
}

#[cfg(feature = "async")]
fn spawn_connection<F>(connection: F)
where
    F: std::future::Future<Output = Result<(), tokio_postgres::Error>> + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            log::warn!(
                "the database connection ended: {}",
                crate::errors::db_message(&e)
            );
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_tls_keys_are_taken_out_for_the_driver() {
        let p = parse("postgresql://u:p@h:5432/db?sslmode=verify-full&sslrootcert=%2Ftmp%2Fca.pem&application_name=x").unwrap();
        assert_eq!(p.mode, SslMode::VerifyFull);
        assert_eq!(p.root_cert.as_deref(), Some("/tmp/ca.pem"));
        assert_eq!(
            p.driver,
            "postgresql://u:p@h:5432/db?application_name=x&sslmode=require"
        );
        let p = parse("host=h user=u sslmode=verify-ca sslrootcert=/ca.pem").unwrap();
        assert_eq!(
            (p.mode, p.driver.as_str()),
            (SslMode::VerifyCa, "host=h user=u sslmode=require")
        );
        assert_eq!(
            parse("postgresql://h/db").unwrap().driver,
            "postgresql://h/db?sslmode=prefer"
        );
        assert_eq!(
            parse("postgresql://h/db?sslmode=disable").unwrap().mode,
            SslMode::Disable
        );
        assert!(parse("postgresql://h/db?sslmode=always").is_err());
    }

    #[test]
    fn the_drivers_keys_come_from_libpqs_variables_when_the_url_has_none() {
        let vars = |key: &str| match key {
            "PGOPTIONS" => Some("-c search_path=app,public".to_owned()),
            "PGCHANNELBINDING" => Some("require".to_owned()),
            "PGTARGETSESSIONATTRS" => Some("primary".to_owned()),
            "PGCLIENTENCODING" => Some("UTF8".to_owned()),
            _ => None,
        };
        assert_eq!(
            parse_in("postgresql://h/db?channel_binding=disable", &vars).unwrap().driver,
            "postgresql://h/db?channel_binding=disable&target_session_attrs=read-write&options=-c%20search_path%3Dapp%2Cpublic&sslmode=prefer"
        );
        assert_eq!(
            parse_in("host=h", &vars).unwrap().driver,
            "host=h target_session_attrs=read-write options='-c search_path=app,public' channel_binding='require' sslmode=prefer"
        );
        let p = parse_in(
            "postgresql://h/db?sslsni=0&ssl_min_protocol_version=TLSv1.3",
            &|_: &str| None,
        )
        .unwrap();
        assert_eq!((p.sni, p.tls_versions.as_slice()), (false, &[3][..]));
        let p = parse_in("host=h ssl_max_protocol_version=TLSv1.2", &|_: &str| None).unwrap();
        assert_eq!((p.sni, p.tls_versions.as_slice()), (true, &[2][..]));
        for (url, why) in [
            ("host=h ssl_max_protocol_version=TLSv1.1", "the TLS versions allowed leave neither TLS 1.2 nor 1.3, the ones rustls speaks"),
            ("host=h ssl_min_protocol_version=SSLv3", "ssl_min_protocol_version `SSLv3` is not a TLS version (TLSv1, TLSv1.1, TLSv1.2, TLSv1.3)"),
            ("host=h sslsni=yes", "sslsni `yes` is neither 0 nor 1"),
        ] {
            assert_eq!(
                parse_in(url, &|_: &str| None).unwrap_err().to_string(),
                format!("the database URL does not parse: {why}")
            );
        }
        let bad = |key: &str| (key == "PGCLIENTENCODING").then(|| "SQL_ASCII".to_owned());
        assert_eq!(
            parse_in("host=h", &bad).unwrap_err().to_string(),
            "the database URL does not parse: PGCLIENTENCODING `SQL_ASCII`: only UTF8 is supported"
        );
    }

    #[test]
    fn libpq_keys_come_from_the_url_else_the_environment() {
        let vars = |key: &str| match key {
            "PGSSLMODE" => Some("verify-ca".to_owned()),
            "PGSSLROOTCERT" => Some("/env/ca.pem".to_owned()),
            "PGSSLCERT" => Some("/env/client.crt".to_owned()),
            "PGSSLKEY" => Some("/env/client.key".to_owned()),
            _ => None,
        };
        let p = parse_in("postgresql://h/db", &vars).unwrap();
        assert_eq!(p.mode, SslMode::VerifyCa);
        assert_eq!(p.root_cert.as_deref(), Some("/env/ca.pem"));
        assert_eq!(p.client_cert.as_deref(), Some("/env/client.crt"));
        assert_eq!(p.client_key.as_deref(), Some("/env/client.key"));
        assert_eq!(p.driver, "postgresql://h/db?sslmode=require");
        let p = parse_in(
            "postgresql://h/db?sslmode=require&sslmode=disable&sslcert=%2Fa.crt&sslkey=/a.key&passfile=/pw&options=-c%20x%3D1",
            &vars,
        )
        .unwrap();
        assert_eq!(p.mode, SslMode::Disable, "the last sslmode counts");
        assert_eq!(p.client_cert.as_deref(), Some("/a.crt"));
        assert_eq!(p.client_key.as_deref(), Some("/a.key"));
        assert_eq!(p.passfile.as_deref(), Some("/pw"));
        assert_eq!(
            p.driver,
            "postgresql://h/db?options=-c%20x%3D1&sslmode=disable"
        );
        let p = parse_in("host=h sslcert='/b.crt' sslkey=/b.key passfile=/pw2", &vars).unwrap();
        assert_eq!(
            (
                p.client_cert.as_deref(),
                p.client_key.as_deref(),
                p.passfile.as_deref()
            ),
            (Some("/b.crt"), Some("/b.key"), Some("/pw2"))
        );
        assert_eq!(p.driver, "host=h sslmode=require");
        let bad = |key: &str| (key == "PGSSLMODE").then(|| "on".to_owned());
        assert_eq!(
            parse_in("postgresql://h", &bad).unwrap_err().to_string(),
            "the database URL does not parse: PGSSLMODE `on` is not an sslmode (disable, allow, prefer, require, verify-ca, verify-full)"
        );
    }

    /// A URL an application shares (Flask's, sqlx's) may hold keys with
    /// nothing to do here: accepted; those that ask for what cannot be
    /// given are refused by name.
    #[test]
    fn keys_with_nothing_to_do_are_accepted_and_impossible_ones_refused() {
        let none = |_: &str| None;
        let p = parse_in(
            "postgresql://h/db?gssencmode=disable&client_encoding=utf8&application_name=a&statement-cache-capacity=0&extra_float_digits=2&fallback_application_name=f&sslcompression=0",
            &none,
        )
        .unwrap();
        assert_eq!(
            p.driver,
            "postgresql://h/db?application_name=a&sslmode=prefer"
        );
        let p = parse_in("host=h gssencmode=prefer client_encoding=UTF8", &none).unwrap();
        assert_eq!(p.driver, "host=h sslmode=prefer");
        let p = parse_in("postgresql://h1,h2/db?target_session_attrs=primary", &none).unwrap();
        assert_eq!(
            p.driver,
            "postgresql://h1,h2/db?target_session_attrs=read-write&sslmode=prefer"
        );
        for (url, why) in [
            (
                "postgresql://h/db?gssencmode=require",
                "gssencmode `require`: GSSAPI encryption is not supported; use sslmode for TLS",
            ),
            (
                "host=h client_encoding=LATIN1",
                "client_encoding `LATIN1`: only UTF8 is supported",
            ),
            (
                "postgresql://h/db?target_session_attrs=standby",
                "target_session_attrs `standby`: only any, read-write and primary are supported (the driver cannot pick a standby)",
            ),
        ] {
            assert_eq!(
                parse_in(url, &none).unwrap_err().to_string(),
                format!("the database URL does not parse: {why}")
            );
        }
    }

    #[test]
    fn a_percent_before_a_multibyte_character_is_an_error_or_kept_not_a_panic() {
        let p = parse("postgresql://h/db?sslmode=verify-full&sslrootcert=/tmp/x%a\u{e9}").unwrap();
        assert_eq!(p.root_cert.as_deref(), Some("/tmp/x%a\u{e9}"));
        let e = parse("postgresql://h/db?sslrootcert=%e9%").unwrap_err();
        assert_eq!(
            e.to_string(),
            "the database URL does not parse: sslrootcert is not UTF-8 once its %-escapes are decoded"
        );
        assert_eq!(
            parse("postgresql://h/db?sslrootcert=%C3%A9%2")
                .unwrap()
                .root_cert
                .as_deref(),
            Some("\u{e9}%2")
        );
    }

    #[test]
    fn parsed_urls_print_without_the_password() {
        let p = parse("postgresql://u:s3cret@h/db?sslmode=require").unwrap();
        assert!(!format!("{p:?}").contains("s3cret"), "{p:?}");
        let p = parse("host=h password=s3cret").unwrap();
        assert!(!format!("{p:?}").contains("s3cret"), "{p:?}");
    }

    proptest::proptest! {
        /// No text makes the URL parsers panic (a URL is user input).
        #[test]
        fn no_url_makes_a_parser_panic(
            url in "(postgres(ql)?://)?[a-z:@/?&=%\\\\' \u{e9}\u{1F600}0-9A-F.-]{0,40}",
            any in "\\PC{0,40}",
        ) {
            for text in [url.as_str(), any.as_str()] {
                let _ = parse(text);
                let _ = describe_target(text);
                let _ = prepare(text);
                let _ = alembic_chain::redact(text);
            }
        }
    }

    /// Each says what is wrong (the driver alone said "invalid connection
    /// string") and none shows the text, which may hold a password.
    #[cfg(feature = "sync")]
    #[test]
    fn a_url_that_does_not_parse_says_why_without_its_text() {
        let table = [
            ("", "it is empty"),
            ("  ", "it is empty"),
            (
                "mysql://u:s3cret@h/d",
                "`mysql://` is not a PostgreSQL URL, which starts with postgresql:// or postgres://",
            ),
            (
                "s3cret",
                "it is neither a postgresql:// URL nor key=value settings (`host=... dbname=...`)",
            ),
            (
                "h/s3cret",
                "it is neither a postgresql:// URL nor key=value settings (`host=... dbname=...`)",
            ),
            ("postgresql://u:s3cret@h:port/d", "invalid value for option `port`"),
            ("postgresql://u:s3cret@[::1/d", "invalid value for option `host`"),
            ("postgresql://u:s3cret@h/d?sslmode=x", "unknown sslmode `x` (disable, allow, prefer, require, verify-ca, verify-full)"),
            ("postgresql://u:s3cret@h/d?colour=1", "unknown option `colour`"),
            ("host=h password='s3cret", "unterminated quoted connection parameter value"),
            ("host=h port=1 s3cret", "a setting is not written key=value"),
            ("host=h s3cret port=1", "a setting is not written key=value"),
        ];
        for (url, why) in table {
            let err = prepare(url).map(|_| ()).unwrap_err().to_string();
            assert_eq!(
                err,
                format!("the database URL does not parse: {why}"),
                "{url:?}"
            );
            assert!(!err.contains("s3cret"), "{err}");
        }
        // `://` in a key/value string's value is not a scheme.
        assert!(prepare("host=h password=a://b dbname=d").is_ok());
        // SQLAlchemy's scheme, as Alembic and Flask projects hold it.
        for url in [
            "postgresql+psycopg2://u:s3cret@h:6543/d?sslmode=require",
            "postgres+asyncpg://u:s3cret@h:6543/d?sslmode=require",
        ] {
            let (_, parsed, target) = prepare(url).unwrap();
            assert_eq!(target, "h:6543/d");
            assert_eq!(parsed.mode, SslMode::Require);
        }
        assert_eq!(
            prepare("postgresql+://h/d").map(|_| ()).unwrap_err().to_string(),
            "the database URL does not parse: `postgresql+://` is not a PostgreSQL URL, which starts with postgresql:// or postgres://"
        );
        assert!(prepare("postgres://h/d").is_ok());
    }

    #[test]
    fn targets_never_show_credentials() {
        assert_eq!(
            describe_target("postgresql://u:secret@db.example:6543/app?sslmode=verify-full"),
            "db.example:6543/app"
        );
        assert_eq!(
            describe_target("host=h port=1 user=u password=secret dbname=d"),
            "h:1/d"
        );
        assert_eq!(
            describe_target("postgresql://u:secret@[::1]:6543/app"),
            "[::1]:6543/app"
        );
        assert_eq!(
            describe_target("hostaddr=::1 port=1 user=u dbname=d"),
            "[::1]:1/d"
        );
    }
}
