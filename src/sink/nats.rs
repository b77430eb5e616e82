//! A NATS JetStream sink: [`NatsSink`].

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage};
use bytes::Bytes;
use parking_lot::Mutex;

use super::{runtime, BoxFuture, Sink, SinkError};
use crate::event::{Event, SharedEvent};
use crate::format::Format;

const DEFAULT_PREFIX: &str = "siem.events";
const DEFAULT_STREAM: &str = "SIEM_EVENTS";
const DEFAULT_DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest event name (in bytes) that goes into a subject.
const MAX_NAME_IN_SUBJECT: usize = 128;
/// Distinct event names whose subjects are remembered; the cache starts over past this.
const SUBJECT_CACHE: usize = 1024;

/// Publishes events to NATS JetStream, one message per event, de-duplicated by event id.
///
/// [`NatsSink`] publishes every event as one JSON message to JetStream, on the subject
/// `<prefix>.<event name>` (`siem.events.auth.failure`, …), so consumers can pick what they want
/// with the usual wildcards (`siem.events.auth.>`, `siem.events.*.failure`).
///
/// - **Exactly once within the duplicate window.** Each message carries the header
///   `Nats-Msg-Id: <event id>` (a UUID v7). When the pipeline retries a batch whose first try
///   reached the server but whose acknowledgements were lost, JetStream recognises the ids and
///   stores nothing twice, as long as the retry comes within the stream's
///   [`duplicate_window`](NatsSink::duplicate_window) (default two minutes, longer than the
///   pipeline's default retries take).
/// - **Acknowledged in batches.** A batch is published as a whole, then every publish
///   acknowledgement is awaited; the batch succeeds only when the stream has acknowledged each
///   message, so "delivered" in the pipeline's counters means "stored by JetStream".
/// - **Stream created when absent.** On the first write the sink creates the stream
///   ([`stream`](NatsSink::stream), default `SIEM_EVENTS`) with the subjects `<prefix>.>`, file
///   storage and the duplicate window, unless it exists already (an existing stream is used
///   as it is) or [`create_stream(false)`](NatsSink::create_stream) leaves that to the operator.
/// - **Formats.** Message bodies are the event's own JSON by default, or Elastic Common Schema
///   or OCSF with [`format`](NatsSink::format) (see [`crate::format`]).
/// - **Subjects are always valid.** Each dot-separated part of an event name becomes one
///   subject token; characters that a token cannot hold (space, `*`, `>`, control characters,
///   anything outside ASCII letters, digits, `-` and `_`) become `_`, an empty part becomes `_`,
///   and names longer than 128 bytes are cut. The name inside the message is the exact one.
/// - **Connection.** The connection opens on the first write, not at construction, and is
///   re-established by the client after an outage; a batch that fails meanwhile is retried by
///   the pipeline.
///
/// # Connection security
///
/// - **TLS.** A `tls://` URL, [`require_tls(true)`](NatsSink::require_tls), a
///   [`tls_root_certificate`](NatsSink::tls_root_certificate) or a
///   [`tls_client_certificate`](NatsSink::tls_client_certificate) make the connection use
///   TLS (rustls with the `ring` provider, no OpenSSL, no cmake), refusing a server that does
///   not offer it; the server's certificate is checked against the system's roots, or only the
///   CA given, and must name the host of the URL. A `nats://` URL without these uses TLS only
///   when the server requires it.
/// - **Credentials.** A user and password in the URL (`nats://user:password@host:4222`,
///   percent-encoded), a token (`nats://token@host:4222` or [`token`](NatsSink::token)), an [`nkey`](NatsSink::nkey) seed, or a
///   [`credentials_file`](NatsSink::credentials_file) (a user JWT and its NKey seed, as `nsc`
///   writes them, for servers in operator mode). Secrets never appear in `Debug` output or in
///   errors written by this sink.
///
/// The sink runs its connection on a small I/O runtime of its own (thread `tower-siem-io`), so it
/// works from the pipeline's worker as well as from any application runtime.
///
/// ```no_run
/// use std::time::Duration;
/// use tower_siem::format::Format;
/// use tower_siem::sink::NatsSink;
/// use tower_siem::Siem;
///
/// let sink = NatsSink::new("nats://127.0.0.1:4222")?
///     .subject_prefix("siem.events")?
///     .stream("SIEM_EVENTS")?
///     .duplicate_window(Duration::from_secs(120))
///     .format(Format::Native);
/// let siem = Siem::builder().sink(sink).build()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct NatsSink {
    config: Arc<Config>,
    state: Arc<State>,
}

#[derive(Clone)]
struct Config {
    url: String,
    /// The server for `Debug` and errors: host and port, no credentials.
    server: String,
    prefix: String,
    stream: String,
    create_stream: bool,
    duplicate_window: Duration,
    max_age: Duration,
    ack_timeout: Duration,
    connect_timeout: Duration,
    format: Format,
    connection: Connection,
}

#[derive(Default)]
struct State {
    /// The JetStream context once connected (and the stream checked).
    context: tokio::sync::Mutex<Option<jetstream::Context>>,
    subjects: Mutex<HashMap<String, async_nats::Subject>>,
}

impl fmt::Debug for NatsSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        f.debug_struct("NatsSink")
            .field("server", &c.server)
            .field("subject_prefix", &c.prefix)
            .field("stream", &c.stream)
            .field("create_stream", &c.create_stream)
            .field("duplicate_window", &c.duplicate_window)
            .field("max_age", &c.max_age)
            .field("ack_timeout", &c.ack_timeout)
            .field("format", &c.format)
            .field("connection", &c.connection)
            .finish()
    }
}

impl NatsSink {
    /// A sink publishing to the NATS server at `url` (`nats://host:4222`, `tls://…`, or
    /// `host:port`). Does not connect yet.
    ///
    /// # Errors
    ///
    /// When `url` is not a valid NATS server address.
    pub fn new(url: impl Into<String>) -> Result<Self, SinkError> {
        let url = url.into();
        let server = server_of(&url).map_err(SinkError::other)?;
        Ok(NatsSink {
            config: Arc::new(Config {
                server,
                url,
                prefix: DEFAULT_PREFIX.to_owned(),
                stream: DEFAULT_STREAM.to_owned(),
                create_stream: true,
                duplicate_window: DEFAULT_DUPLICATE_WINDOW,
                max_age: Duration::ZERO,
                ack_timeout: DEFAULT_ACK_TIMEOUT,
                connect_timeout: DEFAULT_CONNECT_TIMEOUT,
                format: Format::Native,
                connection: Connection::default(),
            }),
            state: Arc::default(),
        })
    }

    fn set(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(Arc::make_mut(&mut self.config));
        // A changed configuration gets its own connection and stream check.
        self.state = Arc::default();
        self
    }

    /// The subject prefix (default `siem.events`): events go to `<prefix>.<event name>`.
    ///
    /// # Errors
    ///
    /// When `prefix` is not a valid literal subject: empty, an empty token (`a..b`, a leading
    /// or trailing dot), a wildcard (`*`, `>`), whitespace or control characters.
    pub fn subject_prefix(self, prefix: impl Into<String>) -> Result<Self, SinkError> {
        let prefix = prefix.into();
        let valid = !prefix.is_empty()
            && prefix.split('.').all(|token| {
                !token.is_empty()
                    && token
                        .chars()
                        .all(|c| !c.is_whitespace() && !c.is_control() && c != '*' && c != '>')
            });
        if !valid {
            return Err(SinkError::other(format!(
                "invalid NATS subject prefix {prefix:?}: tokens must be non-empty, without \
                 wildcards or whitespace"
            )));
        }
        Ok(self.set(|c| c.prefix = prefix))
    }

    /// The JetStream stream to create when absent (default `SIEM_EVENTS`).
    ///
    /// # Errors
    ///
    /// When `name` is empty, longer than 255 bytes, or holds whitespace, control characters,
    /// `.`, `*`, `>`, `/` or `\`.
    pub fn stream(self, name: impl Into<String>) -> Result<Self, SinkError> {
        let name = name.into();
        let valid = !name.is_empty()
            && name.len() <= 255
            && name.chars().all(|c| {
                !c.is_whitespace() && !c.is_control() && !matches!(c, '.' | '*' | '>' | '/' | '\\')
            });
        if !valid {
            return Err(SinkError::other(format!(
                "invalid JetStream stream name {name:?}"
            )));
        }
        Ok(self.set(|c| c.stream = name))
    }

    /// Whether to create the stream when it does not exist (default `true`). With `false`,
    /// publishing fails (and is retried, then counted as dropped) until an operator creates a
    /// stream that captures the subjects.
    pub fn create_stream(self, create: bool) -> Self {
        self.set(|c| c.create_stream = create)
    }

    /// The duplicate window of a stream this sink creates (default 2 minutes): a retried message
    /// with the same `Nats-Msg-Id` within this time is stored once. Has no effect on an
    /// existing stream.
    pub fn duplicate_window(self, window: Duration) -> Self {
        self.set(|c| c.duplicate_window = window)
    }

    /// How long a stream this sink creates keeps messages (default: no limit). Has no effect
    /// on an existing stream.
    pub fn max_age(self, max_age: Duration) -> Self {
        self.set(|c| c.max_age = max_age)
    }

    /// How long to wait for the stream's acknowledgements of a batch, and for JetStream API
    /// replies (default 10 s). A batch not acknowledged in time fails and is retried.
    pub fn ack_timeout(self, timeout: Duration) -> Self {
        self.set(|c| c.ack_timeout = timeout)
    }

    /// How each message body is encoded (default [`Format::Native`], the event's own JSON,
    /// which reads back into an [`Event`]); [`Format::Ecs`] and [`Format::Ocsf`] suit consumers
    /// that feed an existing SIEM. Subjects and `Nats-Msg-Id` do not depend on it.
    pub fn format(self, format: Format) -> Self {
        self.set(|c| c.format = format)
    }

    /// How long to wait for the server when connecting (default 5 s).
    pub fn connect_timeout(self, timeout: Duration) -> Self {
        self.set(|c| c.connect_timeout = timeout)
    }

    /// Refuses to connect without TLS (default: TLS when the URL says `tls://`, a CA or client
    /// certificate is given, or the server requires it).
    pub fn require_tls(self, on: bool) -> Self {
        self.set(|c| c.connection.require_tls = on)
    }

    /// Trusts the certificate authority in `pem` (one or more PEM certificates, a private CA)
    /// instead of the system's roots; implies [`require_tls(true)`](Self::require_tls).
    ///
    /// # Errors
    ///
    /// When `pem` holds no usable certificate.
    pub fn tls_root_certificate(self, pem: impl Into<Vec<u8>>) -> Result<Self, SinkError> {
        let pem = pem.into();
        tls::roots(&pem).map_err(SinkError::other)?;
        Ok(self.set(|c| c.connection.root = Some(Arc::new(pem))))
    }

    /// Presents this client certificate (`cert_pem`, with its chain) and its private key
    /// (`key_pem`) to a server that asks for one (mutual TLS); implies
    /// [`require_tls(true)`](Self::require_tls).
    ///
    /// # Errors
    ///
    /// When `cert_pem` holds no certificate or `key_pem` no private key.
    pub fn tls_client_certificate(
        self,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Result<Self, SinkError> {
        let pair =
            tls::ClientCert::new(cert_pem.into(), key_pem.into()).map_err(SinkError::other)?;
        Ok(self.set(|c| c.connection.client_cert = Some(Arc::new(pair))))
    }

    /// Authenticates with this token (a server's `authorization { token: … }`).
    pub fn token(self, token: impl Into<String>) -> Self {
        let token: Arc<str> = token.into().into();
        self.set(|c| c.connection.token = Some(token))
    }

    /// Authenticates as the NKey user whose seed (`SU…`) this is: the server sends a nonce,
    /// signed with the seed; the seed itself is never sent.
    ///
    /// # Errors
    ///
    /// When `seed` is not a user NKey seed.
    pub fn nkey(self, seed: impl Into<String>) -> Result<Self, SinkError> {
        let seed = seed.into();
        check_seed(&seed).map_err(SinkError::other)?;
        let seed: Arc<str> = seed.into();
        Ok(self.set(|c| c.connection.nkey = Some(seed)))
    }

    /// Authenticates with the credentials file at `path` (a user JWT and its NKey seed, as
    /// `nsc` writes them), read when connecting, for servers in operator mode.
    pub fn credentials_file(self, path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        self.set(|c| c.connection.credentials_file = Some(path))
    }

    /// The subject an event with this name is published on.
    ///
    /// ```
    /// use tower_siem::sink::NatsSink;
    /// let sink = NatsSink::new("nats://127.0.0.1:4222")?;
    /// assert_eq!(sink.subject_for("auth.failure"), "siem.events.auth.failure");
    /// assert_eq!(sink.subject_for("odd name.*..>"), "siem.events.odd_name._._._");
    /// # Ok::<(), tower_siem::sink::SinkError>(())
    /// ```
    pub fn subject_for(&self, event_name: &str) -> String {
        subject(&self.config.prefix, event_name)
    }

    /// Connects and makes sure the stream exists, if that has not happened yet. Writing does
    /// this by itself; call it at startup to fail early on a wrong address or missing rights.
    ///
    /// # Errors
    ///
    /// When the server does not answer, refuses the connection, or the stream cannot be
    /// created (or, with `create_stream(false)`, does not exist).
    pub async fn connect(&self) -> Result<(), SinkError> {
        let config = Arc::clone(&self.config);
        let state = Arc::clone(&self.state);
        runtime::run(async move {
            let mut context = state.context.lock().await;
            if context.is_none() {
                *context = Some(open(&config).await?);
            }
            Ok(())
        })
        .await
    }

    fn subject_cached(&self, name: &str) -> async_nats::Subject {
        let mut cache = self.state.subjects.lock();
        if let Some(s) = cache.get(name) {
            return s.clone();
        }
        if cache.len() >= SUBJECT_CACHE {
            cache.clear();
        }
        let s = async_nats::Subject::from(subject(&self.config.prefix, name));
        cache.insert(name.to_owned(), s.clone());
        s
    }
}

impl Sink for NatsSink {
    fn name(&self) -> &str {
        "nats"
    }

    fn write<'a>(&'a self, batch: &'a [SharedEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            if batch.is_empty() {
                return Ok(());
            }
            // Encode here, on the caller's thread; the I/O runtime only moves bytes.
            let mut buf = Vec::with_capacity(batch.len() * 512);
            let mut spans: Vec<(Range<usize>, &Event)> = Vec::with_capacity(batch.len());
            for event in batch {
                let start = buf.len();
                self.config.format.write_json(event, &mut buf);
                spans.push((start..buf.len(), event));
            }
            let payloads = Bytes::from(buf);
            let messages: Vec<Message> = spans
                .into_iter()
                .map(|(span, event)| Message {
                    subject: self.subject_cached(event.name.as_str()),
                    payload: payloads.slice(span),
                    id: event.id,
                })
                .collect();
            let config = Arc::clone(&self.config);
            let state = Arc::clone(&self.state);
            runtime::run(async move { publish(&config, &state, messages).await }).await
        })
    }
}

/// One encoded event, ready to publish.
struct Message {
    subject: async_nats::Subject,
    payload: Bytes,
    id: uuid::Uuid,
}

/// `<prefix>.<event name>` with every token of the name made valid.
fn subject(prefix: &str, name: &str) -> String {
    let mut name = name;
    if name.len() > MAX_NAME_IN_SUBJECT {
        let mut end = MAX_NAME_IN_SUBJECT;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name = &name[..end];
    }
    let mut out = String::with_capacity(prefix.len() + 1 + name.len().max(1));
    out.push_str(prefix);
    for token in name.split('.') {
        out.push('.');
        if token.is_empty() {
            out.push('_');
        }
        out.extend(token.chars().map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        }));
    }
    out
}

/// How a client reaches NATS beyond its URL: TLS and credentials. Shared by [`NatsSink`] and
/// the fleet detector.
#[derive(Clone, Default)]
pub(crate) struct Connection {
    pub(crate) require_tls: bool,
    /// CA certificates (PEM) trusted instead of the system's.
    pub(crate) root: Option<Arc<Vec<u8>>>,
    pub(crate) client_cert: Option<Arc<tls::ClientCert>>,
    pub(crate) token: Option<Arc<str>>,
    pub(crate) nkey: Option<Arc<str>>,
    pub(crate) credentials_file: Option<PathBuf>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let auth = if self.credentials_file.is_some() {
            "credentials file"
        } else if self.nkey.is_some() {
            "nkey"
        } else if self.token.is_some() {
            "token"
        } else {
            "url or none"
        };
        f.debug_struct("Connection")
            .field("require_tls", &self.tls_required())
            .field("private_ca", &self.root.is_some())
            .field("client_certificate", &self.client_cert.is_some())
            .field("auth", &auth)
            .field("credentials_file", &self.credentials_file)
            .finish()
    }
}

impl Connection {
    fn tls_required(&self) -> bool {
        self.require_tls || self.root.is_some() || self.client_cert.is_some()
    }

    /// The client's options for `url`: its user and password (or token), and TLS and
    /// credentials as configured. Errors name no secret.
    pub(crate) async fn options(&self, url: &str) -> Result<async_nats::ConnectOptions, String> {
        let mut options = async_nats::ConnectOptions::new();
        // async-nats does not send the URL's user part by itself.
        let addr: async_nats::ServerAddr = url
            .parse()
            .map_err(|e: std::io::Error| format!("invalid NATS server address ({:?})", e.kind()))?;
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        match (addr.username(), addr.password()) {
            (Some(user), Some(password)) => {
                options = options.user_and_password(decode(user), decode(password));
            }
            // NATS's convention: a user part alone is a token.
            (Some(token), None) => options = options.token(decode(token)),
            _ => {}
        }
        if let Some(path) = &self.credentials_file {
            options = options.credentials_file(path).await.map_err(|e| {
                // The parser's message may quote the file's contents; say only its kind.
                format!(
                    "cannot use the NATS credentials file {}: {}",
                    path.display(),
                    if e.kind() == std::io::ErrorKind::NotFound {
                        "not found".to_owned()
                    } else {
                        format!("{:?}", e.kind())
                    }
                )
            })?;
        }
        if let Some(seed) = &self.nkey {
            options = options.nkey(seed.to_string());
        }
        if let Some(token) = &self.token {
            options = options.token(token.to_string());
        }
        if self.root.is_some() || self.client_cert.is_some() {
            let config = tls::client_config(
                self.root.as_deref().map(Vec::as_slice),
                self.client_cert.as_deref(),
            )?;
            options = options.tls_client_config(config);
        }
        if self.tls_required() {
            options = options.require_tls(true);
        }
        Ok(options)
    }
}

/// A connection error without secrets: its kind, and for TLS and I/O its cause (a certificate
/// or socket error).
pub(crate) fn connect_error(e: &async_nats::ConnectError) -> String {
    use async_nats::ConnectErrorKind as Kind;
    match e.kind() {
        Kind::Tls | Kind::Io | Kind::TimedOut => e.to_string(),
        kind => kind.to_string(),
    }
}

/// The `host:port` of a NATS URL, without credentials.
pub(crate) fn server_of(url: &str) -> Result<String, String> {
    let addr: async_nats::ServerAddr = url.parse().map_err(|e: std::io::Error| {
        // The parser's message may quote the URL, credentials and all.
        format!("invalid NATS server address ({:?})", e.kind())
    })?;
    Ok(format!("{}:{}", addr.host(), addr.port()))
}

/// Refuses what is not a user NKey seed, without quoting it.
pub(crate) fn check_seed(seed: &str) -> Result<(), String> {
    let plausible = seed.len() == 58
        && seed.starts_with("SU")
        && seed
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b));
    if plausible {
        Ok(())
    } else {
        Err("not a NATS user NKey seed (58 characters of base32 starting with SU)".to_owned())
    }
}

/// Rustls client configurations on the `ring` provider.
pub(crate) mod tls {
    use std::sync::Arc;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use rustls::{ClientConfig, RootCertStore};

    /// A client certificate chain and its key, checked when given.
    pub(crate) struct ClientCert {
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    }

    impl ClientCert {
        pub(crate) fn new(cert_pem: Vec<u8>, key_pem: Vec<u8>) -> Result<Self, String> {
            let chain = CertificateDer::pem_slice_iter(&cert_pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("NATS TLS: invalid client certificate: {e}"))?;
            if chain.is_empty() {
                return Err("NATS TLS: the client certificate holds no certificate".to_owned());
            }
            // Not the parser's message: it might quote the key.
            let key = PrivateKeyDer::from_pem_slice(&key_pem)
                .map_err(|_| "NATS TLS: no private key in the client key PEM".to_owned())?;
            Ok(ClientCert { chain, key })
        }
    }

    pub(crate) fn roots(pem: &[u8]) -> Result<RootCertStore, String> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| format!("NATS TLS: invalid root certificate: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("NATS TLS: unusable root certificate: {e}"))?;
        }
        if roots.is_empty() {
            return Err("NATS TLS: the root certificate holds no certificate".to_owned());
        }
        Ok(roots)
    }

    fn system_roots() -> Result<RootCertStore, String> {
        let found = rustls_native_certs::load_native_certs();
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(found.certs);
        if roots.is_empty() {
            return Err(format!(
                "NATS TLS: no system root certificates found ({} errors)",
                found.errors.len()
            ));
        }
        Ok(roots)
    }

    /// Trusting `root` (or the system's roots), presenting `client` if given.
    pub(crate) fn client_config(
        root: Option<&[u8]>,
        client: Option<&ClientCert>,
    ) -> Result<ClientConfig, String> {
        let roots = match root {
            Some(pem) => roots(pem)?,
            None => system_roots()?,
        };
        let builder =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("NATS TLS: {e}"))?
                .with_root_certificates(roots);
        match client {
            Some(c) => builder
                .with_client_auth_cert(c.chain.clone(), c.key.clone_key())
                .map_err(|e| format!("NATS TLS: unusable client certificate or key: {e}")),
            None => Ok(builder.with_no_client_auth()),
        }
    }
}

async fn open(config: &Config) -> Result<jetstream::Context, SinkError> {
    let options = config
        .connection
        .options(&config.url)
        .await
        .map_err(SinkError::unavailable)?;
    let client = options
        .name("tower-siem")
        .connection_timeout(config.connect_timeout)
        .max_reconnects(None)
        .connect(config.url.as_str())
        .await
        .map_err(|e| {
            SinkError::unavailable(format!(
                "cannot connect to NATS at {}: {}",
                config.server,
                connect_error(&e)
            ))
        })?;
    let context = jetstream::ContextBuilder::new()
        .timeout(config.ack_timeout)
        .ack_timeout(config.ack_timeout)
        .backpressure_on_inflight(true)
        .build(client);
    if config.create_stream {
        let stream = jetstream::stream::Config {
            name: config.stream.clone(),
            subjects: vec![format!("{}.>", config.prefix)],
            duplicate_window: config.duplicate_window,
            max_age: config.max_age,
            storage: jetstream::stream::StorageType::File,
            ..Default::default()
        };
        context.get_or_create_stream(stream).await.map_err(|e| {
            SinkError::unavailable(format!(
                "cannot create or look up JetStream stream {:?} on {}: {e}",
                config.stream, config.server
            ))
        })?;
    }
    Ok(context)
}

async fn publish(config: &Config, state: &State, messages: Vec<Message>) -> Result<(), SinkError> {
    let context = {
        let mut slot = state.context.lock().await;
        match &*slot {
            Some(context) => context.clone(),
            None => {
                let context = open(config).await?;
                *slot = Some(context.clone());
                context
            }
        }
    };
    let mut acks = Vec::with_capacity(messages.len());
    let mut id = [0; 36];
    for message in messages {
        let id = crate::event::id::hyphenated_str(&message.id, &mut id);
        let publish = PublishMessage::build()
            .payload(message.payload)
            .message_id(id);
        match context.send_publish(message.subject, publish).await {
            Ok(ack) => acks.push(ack),
            Err(e) => return Err(publish_error(config, state, e).await),
        }
    }
    // Each ack future times out on its own only once awaited; one deadline bounds them all.
    let all = async {
        let mut failed = None;
        for ack in acks {
            if let Err(e) = ack.await {
                failed.get_or_insert(e);
            }
        }
        failed
    };
    match tokio::time::timeout(config.ack_timeout, all).await {
        Ok(None) => Ok(()),
        Ok(Some(e)) => Err(publish_error(config, state, e).await),
        Err(_) => Err(SinkError::unavailable(format!(
            "JetStream on {} (stream {:?}) did not acknowledge a batch within {:?}",
            config.server, config.stream, config.ack_timeout
        ))),
    }
}

async fn publish_error(
    config: &Config,
    state: &State,
    error: jetstream::context::PublishError,
) -> SinkError {
    use jetstream::context::PublishErrorKind as Kind;
    if matches!(error.kind(), Kind::StreamNotFound | Kind::BrokenPipe) {
        // The stream was deleted or the client gave up: open afresh on the next attempt.
        *state.context.lock().await = None;
    }
    SinkError::unavailable(format!(
        "publishing to JetStream on {} (stream {:?}) failed: {error}",
        config.server, config.stream
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_valid_tokens() {
        assert_eq!(
            subject("siem.events", "http.request"),
            "siem.events.http.request"
        );
        assert_eq!(subject("p", ""), "p._");
        assert_eq!(subject("p", "a b\tc.d*e.>"), "p.a_b_c.d_e._");
        assert_eq!(subject("p", ".x."), "p._.x._");
        assert_eq!(subject("p", "ünï.cødé"), "p._n_.c_d_");
        let long = "é".repeat(200);
        let s = subject("p", &long);
        assert!(s.len() <= 2 + MAX_NAME_IN_SUBJECT);
        for token in s.split('.') {
            assert!(!token.is_empty());
            assert!(token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        }
    }

    #[test]
    fn bad_prefix_and_stream_names_are_refused() {
        let sink = NatsSink::new("nats://127.0.0.1:4222").unwrap();
        for bad in ["", "a..b", ".a", "a.", "a.*", "a.>", "a b", "a\nb"] {
            assert!(sink.clone().subject_prefix(bad).is_err(), "{bad:?}");
        }
        assert!(sink.clone().subject_prefix("app.siem").is_ok());
        for bad in ["", "A.B", "A B", "A*", "A>", "A/B", "A\\B"] {
            assert!(sink.clone().stream(bad).is_err(), "{bad:?}");
        }
        assert!(sink.stream("APP_SIEM-1").is_ok());
    }

    #[test]
    fn debug_hides_credentials() {
        let sink = NatsSink::new("nats://alice:s3cr3t-pw@127.0.0.1:4222").unwrap();
        let debug = format!("{sink:?}");
        assert!(!debug.contains("s3cr3t-pw"), "{debug}");
        assert!(!debug.contains("alice"), "{debug}");
        assert!(debug.contains("127.0.0.1:4222"), "{debug}");
    }

    #[test]
    fn credentials_and_tls_settings_are_checked_and_hidden() {
        let seed = "SUANQDPB2RUOE4ETUA26CNX7FUKE5ZZKFCQIIW63OX225F2CO7UEXTM7ZY";
        let sink = NatsSink::new("tls://127.0.0.1:4222")
            .unwrap()
            .token("tok-s3cr3t")
            .nkey(seed)
            .unwrap()
            .credentials_file("/run/secrets/siem.creds");
        let debug = format!("{sink:?}");
        assert!(!debug.contains("tok-s3cr3t"), "{debug}");
        assert!(!debug.contains(seed), "{debug}");
        assert!(debug.contains("siem.creds"), "{debug}");
        let err = NatsSink::new("nats://h:4222")
            .unwrap()
            .nkey("SUnot-a-seed")
            .unwrap_err();
        assert!(!err.to_string().contains("not-a-seed"), "{err}");
        let err = NatsSink::new("nats://h:4222")
            .unwrap()
            .tls_root_certificate(b"no pem here".to_vec())
            .unwrap_err();
        assert!(err.to_string().contains("root certificate"), "{err}");
        let err = NatsSink::new("nats://h:4222")
            .unwrap()
            .tls_client_certificate(b"".to_vec(), b"".to_vec())
            .unwrap_err();
        assert!(err.to_string().contains("client certificate"), "{err}");
    }

    #[test]
    fn bad_url_is_refused_without_echoing_it() {
        let err = NatsSink::new("nats://bob:pw-123@[::1").unwrap_err();
        assert!(!err.to_string().contains("pw-123"), "{err}");
    }
}
