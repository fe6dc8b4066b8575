//! Opening an authenticated IMAP session: TCP, then TLS (implicit or STARTTLS) with
//! rustls and the webpki roots, or plain for tests, then LOGIN.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

use crate::config::{MailboxConfig, TlsMode};
use crate::error::Error;

/// How long connecting, the TLS handshake and login may take together.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The byte stream under an IMAP session: plain TCP or TLS over TCP.
#[derive(Debug)]
pub enum Stream {
    /// Unencrypted (tests).
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream<TcpStream>>),
}

/// An authenticated IMAP session.
pub type Session = async_imap::Session<Stream>;

/// Connects and logs in, within [`CONNECT_TIMEOUT`].
pub async fn login(config: &MailboxConfig) -> Result<Session, Error> {
    let addr = format!("{}:{}", config.host, config.port());
    tokio::time::timeout(CONNECT_TIMEOUT, login_inner(config, &addr))
        .await
        .map_err(|_| Error::Timeout {
            what: format!("connect and login to {addr}"),
            after: CONNECT_TIMEOUT,
        })?
}

async fn login_inner(config: &MailboxConfig, addr: &str) -> Result<Session, Error> {
    let password = config.password().map_err(|e| Error::Config(e.reason))?;
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|source| Error::Connect {
            addr: addr.to_owned(),
            source,
        })?;
    let _ = tcp.set_nodelay(true);
    let imap = |op: &'static str| {
        let addr = addr.to_owned();
        move |source| Error::Imap { op, addr, source }
    };
    let client = match config.tls {
        TlsMode::Plain => {
            let mut client = async_imap::Client::new(Stream::Plain(tcp));
            greeting(&mut client, addr).await?;
            client
        }
        TlsMode::Implicit => {
            let tls = handshake(config, tcp).await?;
            let mut client = async_imap::Client::new(Stream::Tls(Box::new(tls)));
            greeting(&mut client, addr).await?;
            client
        }
        TlsMode::Starttls => {
            let mut client = async_imap::Client::new(Stream::Plain(tcp));
            greeting(&mut client, addr).await?;
            client
                .run_command_and_check_ok("STARTTLS", None)
                .await
                .map_err(imap("STARTTLS"))?;
            let Stream::Plain(tcp) = client.into_inner() else {
                return Err(Error::Protocol(
                    "STARTTLS on a stream that is not plain".into(),
                ));
            };
            let tls = handshake(config, tcp).await?;
            // No greeting after STARTTLS (RFC 3501 6.2.1).
            async_imap::Client::new(Stream::Tls(Box::new(tls)))
        }
    };
    client
        .login(&config.username, password.expose())
        .await
        .map_err(|(source, _)| Error::Login {
            addr: addr.to_owned(),
            username: config.username.clone(),
            source,
        })
}

async fn greeting(client: &mut async_imap::Client<Stream>, addr: &str) -> Result<(), Error> {
    match client.read_response().await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(Error::Protocol(format!(
            "{addr} closed the connection before its greeting"
        ))),
        Err(source) => Err(Error::Connect {
            addr: addr.to_owned(),
            source,
        }),
    }
}

/// The certificates in a PEM file (a private CA).
pub fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| e.to_string())?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not PEM certificates: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate in the file".into());
    }
    Ok(certs)
}

fn tls_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
    static DEFAULT: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    let build = |extra: Vec<CertificateDer<'static>>| -> Result<Arc<ClientConfig>, String> {
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        for cert in extra {
            roots
                .add(cert)
                .map_err(|e| format!("a CA certificate: {e}"))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Ok(Arc::new(
            ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots)
                .with_no_client_auth(),
        ))
    };
    match ca_file {
        Some(path) => {
            build(read_ca_file(path).map_err(|e| format!("ca_file {}: {e}", path.display()))?)
        }
        None => {
            if let Some(c) = DEFAULT.get() {
                return Ok(c.clone());
            }
            let c = build(Vec::new())?;
            Ok(DEFAULT.get_or_init(|| c).clone())
        }
    }
}

async fn handshake(config: &MailboxConfig, tcp: TcpStream) -> Result<TlsStream<TcpStream>, Error> {
    let host = &config.host;
    let tls_error = |e: String| Error::Tls {
        host: host.to_owned(),
        source: io::Error::new(io::ErrorKind::InvalidInput, e),
    };
    let name = ServerName::try_from(host.to_owned()).map_err(|e| tls_error(e.to_string()))?;
    let tls = tls_config(config.ca_file.as_deref()).map_err(tls_error)?;
    TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .map_err(|source| Error::Tls {
            host: host.to_owned(),
            source,
        })
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
