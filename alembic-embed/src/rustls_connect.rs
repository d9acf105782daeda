//! The driver's TLS traits over rustls, with channel binding.
//!
//! tokio-postgres asks a TLS layer for a stream and for the data SCRAM's
//! `-PLUS` mechanism binds to: `tls-server-end-point` (RFC 5929), a hash
//! of the server's certificate with the hash of that certificate's own
//! signature (SHA-256 in place of MD5 and SHA-1), as PostgreSQL computes
//! it. Only the signature algorithm is read from the certificate, by the
//! few lines of DER below: a certificate parser in every install was more
//! code than the rest of the TLS layer's glue.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::ServerName;
use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};
use tokio_rustls::TlsConnector;

/// Makes a TLS connector per host for the driver.
#[doc(hidden)]
#[derive(Clone)]
pub struct MakeRustlsConnect {
    config: Arc<rustls::ClientConfig>,
    checks_name: bool,
}

impl MakeRustlsConnect {
    /// A connector with this rustls configuration; `checks_name` when the
    /// certificate must name the host (`verify-full`).
    pub fn new(config: rustls::ClientConfig, checks_name: bool) -> Self {
        MakeRustlsConnect {
            config: Arc::new(config),
            checks_name,
        }
    }
}

impl<S> MakeTlsConnect<S> for MakeRustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = Infallible;

    /// A host that is no DNS name (a socket folder, `db_1`) fails only if
    /// the server does offer TLS and the name is to be checked: libpq asks
    /// first, and connects without TLS where the server offers none.
    fn make_tls_connect(&mut self, host: &str) -> Result<RustlsConnect, Infallible> {
        let name = match ServerName::try_from(host) {
            Ok(name) => Ok(name.to_owned()),
            // No name to check: an address sends no SNI and names nothing.
            Err(_) if !self.checks_name => Ok(ServerName::IpAddress(
                std::net::Ipv4Addr::UNSPECIFIED.into(),
            )),
            Err(_) => Err(host.to_owned()),
        };
        Ok(RustlsConnect {
            name,
            connector: TlsConnector::from(self.config.clone()),
        })
    }
}

/// The connector for one host.
#[doc(hidden)]
pub struct RustlsConnect {
    /// The name to check, or the host that cannot be checked.
    name: Result<ServerName<'static>, String>,
    connector: TlsConnector,
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Handshake<S>;

    fn connect(self, stream: S) -> Handshake<S> {
        match self.name {
            Ok(name) => Handshake::Running(Box::new(self.connector.connect(name, stream))),
            Err(host) => Handshake::Refused(Some(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "sslmode=verify-full cannot check `{host}` against the certificate: it is not a DNS name or an IP address"
                ),
            ))),
        }
    }
}

/// The TLS handshake under way, or refused before it started.
#[doc(hidden)]
pub enum Handshake<S> {
    /// Under way.
    Running(Box<tokio_rustls::Connect<S>>),
    /// Refused; the error is taken when polled.
    Refused(Option<io::Error>),
}

impl<S> Future for Handshake<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    type Output = io::Result<RustlsStream<S>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut *self {
            Handshake::Running(connect) => Pin::new(&mut **connect).poll(cx).map_ok(RustlsStream),
            Handshake::Refused(error) => Poll::Ready(Err(error
                .take()
                .unwrap_or_else(|| io::Error::other("the handshake was polled again")))),
        }
    }
}

/// A connection over TLS.
#[doc(hidden)]
pub struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S> tokio_postgres::tls::TlsStream for RustlsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn channel_binding(&self) -> ChannelBinding {
        let (_, session) = self.0.get_ref();
        session
            .peer_certificates()
            .and_then(|certs| certs.first())
            .and_then(|cert| {
                Some(ChannelBinding::tls_server_end_point(
                    end_point_hash(cert)?.digest(cert),
                ))
            })
            .unwrap_or_else(ChannelBinding::none)
    }
}

impl<S> AsyncRead for RustlsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S> AsyncWrite for RustlsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// The hash `tls-server-end-point` uses for a certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EndPointHash {
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl EndPointHash {
    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            EndPointHash::Sha224 => Sha224::digest(data).to_vec(),
            EndPointHash::Sha256 => Sha256::digest(data).to_vec(),
            EndPointHash::Sha384 => Sha384::digest(data).to_vec(),
            EndPointHash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }
}

/// Signature algorithms (the DER contents of their object identifiers)
/// and the hash channel binding uses for each: the signature's own, and
/// SHA-256 for MD5 and SHA-1 (RFC 5929, section 4.1). Others (RSASSA-PSS,
/// Ed25519) have none: PostgreSQL then cannot bind either, and the driver
/// falls back to SCRAM without `-PLUS` unless `channel_binding=require`.
#[rustfmt::skip]
pub(crate) const SIGNATURE_HASHES: &[(&str, &[u8], EndPointHash)] = &[
    // RSA (PKCS #1).
    ("1.2.840.113549.1.1.4", &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x04], EndPointHash::Sha256),
    ("1.2.840.113549.1.1.5", &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05], EndPointHash::Sha256),
    ("1.2.840.113549.1.1.14", &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0e], EndPointHash::Sha224),
    ("1.2.840.113549.1.1.11", &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b], EndPointHash::Sha256),
    ("1.2.840.113549.1.1.12", &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c], EndPointHash::Sha384),
    ("1.2.840.113549.1.1.13", &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d], EndPointHash::Sha512),
    // ECDSA.
    ("1.2.840.10045.4.1", &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01], EndPointHash::Sha256),
    ("1.2.840.10045.4.3.1", &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x01], EndPointHash::Sha224),
    ("1.2.840.10045.4.3.2", &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02], EndPointHash::Sha256),
    ("1.2.840.10045.4.3.3", &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03], EndPointHash::Sha384),
    ("1.2.840.10045.4.3.4", &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04], EndPointHash::Sha512),
    // DSA.
    ("1.2.840.10040.4.3", &[0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x03], EndPointHash::Sha256),
    ("2.16.840.1.101.3.4.3.1", &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x01], EndPointHash::Sha224),
    ("2.16.840.1.101.3.4.3.2", &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x02], EndPointHash::Sha256),
];

/// The channel-binding hash for a DER certificate: `Certificate ::=
/// SEQUENCE { tbsCertificate SEQUENCE, signatureAlgorithm SEQUENCE {
/// algorithm OBJECT IDENTIFIER, ... }, ... }`. `None` when it does not
/// parse that far or the algorithm has no hash here.
pub(crate) fn end_point_hash(cert: &[u8]) -> Option<EndPointHash> {
    let (certificate, _) = der(cert, 0x30)?;
    let (_, rest) = der(certificate, 0x30)?;
    let (algorithm, _) = der(rest, 0x30)?;
    let (oid, _) = der(algorithm, 0x06)?;
    SIGNATURE_HASHES
        .iter()
        .find(|(_, bytes, _)| *bytes == oid)
        .map(|&(_, _, hash)| hash)
}

/// One DER element with this tag at the start of `input`: its contents
/// and what follows it.
fn der(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&found, rest) = input.split_first()?;
    if found != tag {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, rest) = rest.split_at(count);
        let len = bytes
            .iter()
            .fold(0usize, |len, &b| (len << 8) | usize::from(b));
        (len, rest)
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An object identifier's DER contents, from its dotted form.
    fn encode_oid(dotted: &str) -> Vec<u8> {
        let arcs: Vec<u64> = dotted.split('.').map(|a| a.parse().unwrap()).collect();
        let mut out = Vec::new();
        let mut push = |mut v: u64| {
            let mut bytes = vec![(v & 0x7f) as u8];
            v >>= 7;
            while v > 0 {
                bytes.push((v & 0x7f) as u8 | 0x80);
                v >>= 7;
            }
            out.extend(bytes.iter().rev());
        };
        push(arcs[0] * 40 + arcs[1]);
        for &arc in &arcs[2..] {
            push(arc);
        }
        out
    }

    fn element(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        if contents.len() < 0x80 {
            out.push(contents.len() as u8);
        } else {
            let len = (contents.len() as u32).to_be_bytes();
            let skip = len.iter().take_while(|&&b| b == 0).count();
            out.push(0x80 | (4 - skip) as u8);
            out.extend(&len[skip..]);
        }
        out.extend(contents);
        out
    }

    /// A certificate's outline: a `tbsCertificate` of `tbs_len` bytes,
    /// the algorithm, and a signature.
    fn certificate(tbs_len: usize, oid: &[u8]) -> Vec<u8> {
        let mut body = element(0x30, &vec![0x05; tbs_len]);
        body.extend(element(
            0x30,
            &[element(0x06, oid), vec![0x05, 0x00]].concat(),
        ));
        body.extend(element(0x03, &[0x00, 0xaa, 0xbb]));
        element(0x30, &body)
    }

    #[test]
    fn every_signature_algorithm_is_written_as_its_dotted_name_says() {
        for (dotted, bytes, _) in SIGNATURE_HASHES {
            assert_eq!(encode_oid(dotted), *bytes, "{dotted}");
        }
    }

    #[test]
    fn the_hash_follows_the_signature_with_sha256_for_md5_and_sha1() {
        let hash = |dotted: &str| end_point_hash(&certificate(40, &encode_oid(dotted)));
        assert_eq!(hash("1.2.840.113549.1.1.4"), Some(EndPointHash::Sha256));
        assert_eq!(hash("1.2.840.113549.1.1.5"), Some(EndPointHash::Sha256));
        assert_eq!(hash("1.2.840.113549.1.1.11"), Some(EndPointHash::Sha256));
        assert_eq!(hash("1.2.840.113549.1.1.12"), Some(EndPointHash::Sha384));
        assert_eq!(hash("1.2.840.113549.1.1.13"), Some(EndPointHash::Sha512));
        assert_eq!(hash("1.2.840.10045.4.3.2"), Some(EndPointHash::Sha256));
        assert_eq!(hash("1.2.840.10045.4.3.3"), Some(EndPointHash::Sha384));
        // RSASSA-PSS and Ed25519: no hash of their own to bind with.
        assert_eq!(hash("1.2.840.113549.1.1.10"), None);
        assert_eq!(hash("1.3.101.112"), None);
        // Long-form lengths (a real certificate's are).
        for tbs in [127, 128, 255, 256, 70_000] {
            assert_eq!(
                end_point_hash(&certificate(tbs, &encode_oid("1.2.840.113549.1.1.12"))),
                Some(EndPointHash::Sha384),
                "{tbs}"
            );
        }
        assert_eq!(
            EndPointHash::Sha384.digest(b"abc").len(),
            48,
            "SHA-384 gives 48 bytes"
        );
    }

    #[test]
    fn a_certificate_that_does_not_parse_binds_nothing_and_never_panics() {
        let good = certificate(300, &encode_oid("1.2.840.10045.4.3.2"));
        for cut in 0..good.len() {
            // Cut short: the outer length no longer fits.
            assert_eq!(end_point_hash(&good[..cut]), None, "{cut}");
        }
        let mut wrong_tag = good.clone();
        wrong_tag[0] = 0x31;
        assert_eq!(end_point_hash(&wrong_tag), None);
        // A length of five bytes, and an indefinite length (not DER).
        assert_eq!(end_point_hash(&[0x30, 0x85, 0, 0, 0, 0, 1, 0]), None);
        assert_eq!(end_point_hash(&[0x30, 0x80, 0x30, 0x00, 0x00, 0x00]), None);
        proptest::proptest!(|(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64))| {
            let _ = end_point_hash(&bytes);
        });
    }
}
