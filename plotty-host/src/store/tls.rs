//! TLS to PostgreSQL, as `database.url` asks with libpq's parameters: `sslmode`
//! (`disable`, `prefer` — the default —, `require`, `verify-ca`, `verify-full`) and
//! `sslrootcert=PATH` (the PEM file of the certificate authorities to trust).
//!
//! tokio-postgres reads only `disable|prefer|require` and no `sslrootcert`, so [`split_url`]
//! takes both off the URL (the `verify-*` modes become `require` for tokio-postgres) and
//! [`connector`] builds the rustls connector (ring provider: no system OpenSSL) that does what
//! libpq does in each mode:
//!
//! | mode | encrypted | certificate checked |
//! | --- | --- | --- |
//! | `disable` | never | – |
//! | `prefer` | if the server offers it | no |
//! | `require` | always | no (against `sslrootcert` if given, as libpq does) |
//! | `verify-ca` | always | chain to `sslrootcert` |
//! | `verify-full` | always | chain to `sslrootcert`, and the host name |
//!
//! TLS needs a TCP connection (PostgreSQL offers none on a Unix socket).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres_rustls::MakeRustlsConnect;

/// What `sslmode` asks for.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it, certificate not checked (libpq's default).
    #[default]
    Prefer,
    /// TLS always, certificate not checked (unless `sslrootcert` is given).
    Require,
    /// TLS, the certificate chain checked against `sslrootcert`.
    VerifyCa,
    /// TLS, the chain and the host name checked.
    VerifyFull,
}

/// The TLS settings of a `database.url`.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct PgTls {
    /// `sslmode`.
    pub mode: SslMode,
    /// `sslrootcert`: the certificate authorities to trust (PEM).
    pub root_cert: Option<PathBuf>,
}

impl SslMode {
    fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "disable" => Self::Disable,
            "prefer" | "allow" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            _ => return None,
        })
    }

    /// The `sslmode` tokio-postgres is given: it checks no certificate itself.
    fn for_tokio_postgres(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require | Self::VerifyCa | Self::VerifyFull => "require",
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        })
    }
}

/// Splits the TLS parameters off `url` (URL form `postgresql://…?sslmode=…&sslrootcert=…`, or
/// key=value form `host=… sslmode=…`): the text tokio-postgres parses, and the TLS settings.
///
/// # Errors
/// An `sslmode` libpq does not know, or a `verify-*` mode without `sslrootcert`.
pub fn split_url(url: &str) -> Result<(String, PgTls), String> {
    let mut tls = PgTls::default();
    let mut take = |key: &str, value: &str| -> Result<bool, String> {
        match key {
            "sslmode" => {
                tls.mode = SslMode::parse(value).ok_or_else(|| {
                    format!(
                        "sslmode={value} is not one of disable, prefer, require, verify-ca, \
                         verify-full"
                    )
                })?;
                Ok(true)
            }
            "sslrootcert" => {
                tls.root_cert = Some(PathBuf::from(value));
                Ok(true)
            }
            _ => Ok(false),
        }
    };
    let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if !take(key, &percent_decode(value))? {
                kept.push(pair.to_owned());
            }
        }
        kept.push(format!("sslmode={}", tls.mode.for_tokio_postgres()));
        format!("{base}?{}", kept.join("&"))
    } else {
        let mut kept = Vec::new();
        for word in url.split_whitespace() {
            let (key, value) = word.split_once('=').unwrap_or((word, ""));
            if !take(key.trim(), value.trim().trim_matches('\''))? {
                kept.push(word.to_owned());
            }
        }
        kept.push(format!("sslmode={}", tls.mode.for_tokio_postgres()));
        kept.join(" ")
    };
    if matches!(tls.mode, SslMode::VerifyCa | SslMode::VerifyFull) && tls.root_cert.is_none() {
        return Err(format!(
            "sslmode={} needs sslrootcert=PATH, the PEM file of the certificate authority that \
             signed the server's certificate",
            tls.mode
        ));
    }
    Ok((rest, tls))
}

/// `%XX` escapes of a URL parameter value decoded (anything malformed is kept as written).
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The connector doing what `tls` asks (see the module documentation).
///
/// # Errors
/// `sslrootcert` cannot be read or holds no certificate.
pub fn connector(tls: &PgTls) -> Result<MakeRustlsConnect, String> {
    // rustls 0.23.48 marks the ring provider deprecated for its lack of post-quantum key
    // exchange; ring is kept on purpose: the alternative (aws-lc-rs) needs cmake and a large C
    // build on every machine that builds plotty, for a connection inside the farm's network.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up failed: {e}"))?;
    let roots = match &tls.root_cert {
        Some(path) => Some(Arc::new(read_roots(path)?)),
        None => None,
    };
    let verifier: Arc<dyn ServerCertVerifier> = match (tls.mode, roots) {
        (SslMode::Disable | SslMode::Prefer, _) | (SslMode::Require, None) => {
            Arc::new(Unchecked(Arc::clone(&provider)))
        }
        (SslMode::Require | SslMode::VerifyCa, Some(roots)) => {
            Arc::new(AnyName(webpki(roots, &provider)?))
        }
        (SslMode::VerifyFull, Some(roots)) => webpki(roots, &provider)?,
        // `split_url` refuses a `verify-*` mode without roots.
        (SslMode::VerifyCa | SslMode::VerifyFull, None) => {
            return Err(format!("sslmode={} needs sslrootcert=PATH", tls.mode));
        }
    };
    let config = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

fn webpki(
    roots: Arc<RootCertStore>,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, String> {
    WebPkiServerVerifier::builder_with_provider(roots, Arc::clone(provider))
        .build()
        .map_err(|e| format!("TLS set-up failed: {e}"))
}

/// The certificates of the PEM file at `path`.
fn read_roots(path: &std::path::Path) -> Result<RootCertStore, String> {
    let shown = path.display();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("sslrootcert {shown} cannot be read: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("sslrootcert {shown} is not a PEM certificate file: {e}"))?;
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!("sslrootcert {shown} holds no usable certificate"));
    }
    Ok(roots)
}

/// Encrypts without checking the server's certificate (libpq's `prefer` and `require`): the
/// handshake's signatures are still checked, so the session is with the certificate's holder.
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
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
            &self.0.signature_verification_algorithms,
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
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Checks the chain but not the host name (libpq's `verify-ca`).
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::postgres::with_causes;

    #[test]
    fn libpq_tls_parameters_are_taken_off_the_url() {
        let (rest, tls) = split_url(
            "postgresql://u:p@db.example:5432/plotty?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&connect_timeout=5",
        )
        .unwrap();
        assert_eq!(
            rest,
            "postgresql://u:p@db.example:5432/plotty?connect_timeout=5&sslmode=require"
        );
        assert_eq!(
            tls,
            PgTls {
                mode: SslMode::VerifyFull,
                root_cert: Some("/etc/ca.pem".into())
            }
        );
        rest.parse::<tokio_postgres::Config>().unwrap();
        let (rest, tls) =
            split_url("host=db user=u sslmode=verify-ca sslrootcert='/ca.pem'").unwrap();
        assert_eq!(rest, "host=db user=u sslmode=require");
        assert_eq!(tls.mode, SslMode::VerifyCa);
        rest.parse::<tokio_postgres::Config>().unwrap();
        // No sslmode: libpq's default.
        let (rest, tls) = split_url("postgresql://u@h/db").unwrap();
        assert_eq!(
            (rest.as_str(), tls.mode),
            ("postgresql://u@h/db?sslmode=prefer", SslMode::Prefer)
        );
        let e = split_url("postgresql://u@h/db?sslmode=verify-full").unwrap_err();
        assert!(e.contains("sslrootcert"), "{e}");
        let e = split_url("postgresql://u@h/db?sslmode=always").unwrap_err();
        assert!(e.contains("sslmode=always"), "{e}");
    }

    #[test]
    fn a_root_certificate_file_must_hold_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate").unwrap();
        let tls = PgTls {
            mode: SslMode::VerifyFull,
            root_cert: Some(path),
        };
        let e = connector(&tls).err().unwrap();
        assert!(e.contains("no usable certificate"), "{e}");
        let tls = PgTls {
            mode: SslMode::VerifyFull,
            root_cert: Some(dir.path().join("missing.pem")),
        };
        let e = connector(&tls).err().unwrap();
        assert!(e.contains("cannot be read"), "{e}");
        assert!(connector(&PgTls::default()).is_ok());
    }

    /// Whether the session of `client` is encrypted (`pg_stat_ssl`).
    async fn encrypted(store: &crate::store::PgStore) -> bool {
        let (client, connection) = store.connect_dedicated().await.unwrap();
        tokio::spawn(connection);
        client
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .unwrap()
            .get(0)
    }

    /// Issue 15: `sslmode` against a cluster with TLS on and a certificate made for the test.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connections_are_encrypted_and_checked_as_sslmode_asks() {
        use crate::store::PgStore;
        use crate::testing::postgres::{TlsCluster, Unavailable};
        let test = "store::tls::tests::connections_are_encrypted_and_checked_as_sslmode_asks";
        let cluster = match TlsCluster::start() {
            Ok(c) => c,
            Err(Unavailable::Missing(reason)) => {
                crate::testing::skip(test, &reason, crate::testing::InCi::Provides);
                return;
            }
            Err(Unavailable::Broken(reason)) => panic!("{test}: {reason}"),
        };
        let db = cluster.database().unwrap();
        let url = |host: &str, params: String| {
            format!(
                "postgresql://{}@{host}:{}/{db}?{params}",
                cluster.user(),
                cluster.port
            )
        };
        let ca = cluster.ca.display().to_string();
        let other = cluster.other_ca.display().to_string();
        // The server's certificate, signed by the CA given, for the name connected to.
        let full = url("localhost", format!("sslmode=verify-full&sslrootcert={ca}"));
        let (store, _) = PgStore::connect(&full, 2).await.unwrap();
        assert!(encrypted(&store).await, "verify-full is encrypted");
        assert_eq!(
            store.last_event_id().await.unwrap(),
            0,
            "the pool is usable"
        );
        // Signed by another authority: refused.
        let e = PgStore::connect(
            &url(
                "localhost",
                format!("sslmode=verify-full&sslrootcert={other}"),
            ),
            1,
        )
        .await
        .err()
        .unwrap();
        assert!(
            with_causes(&e).contains("UnknownIssuer"),
            "{}",
            with_causes(&e)
        );
        // The certificate names `localhost`, not 127.0.0.1: verify-full refuses, verify-ca
        // (the chain only) accepts.
        let e = PgStore::connect(
            &url("127.0.0.1", format!("sslmode=verify-full&sslrootcert={ca}")),
            1,
        )
        .await
        .err()
        .unwrap();
        assert!(
            with_causes(&e).contains("not valid for name"),
            "{}",
            with_causes(&e)
        );
        let (store, _) = PgStore::connect(
            &url("127.0.0.1", format!("sslmode=verify-ca&sslrootcert={ca}")),
            1,
        )
        .await
        .unwrap();
        assert!(encrypted(&store).await);
        // require: encrypted, not checked (as libpq without a root certificate); prefer takes
        // the TLS the server offers; disable stays plain.
        let (store, _) = PgStore::connect(&url("127.0.0.1", "sslmode=require".into()), 1)
            .await
            .unwrap();
        assert!(encrypted(&store).await);
        let (store, _) = PgStore::connect(&url("127.0.0.1", String::new()), 1)
            .await
            .unwrap();
        assert!(encrypted(&store).await, "prefer, the default");
        let (store, _) = PgStore::connect(&url("127.0.0.1", "sslmode=disable".into()), 1)
            .await
            .unwrap();
        assert!(!encrypted(&store).await);
    }
}
