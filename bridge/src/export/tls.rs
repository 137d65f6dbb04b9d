//! TLS of the native exporter: a private CA, a client certificate (mutual
//! TLS), certificate files reloaded while the exporter runs, and what a
//! failed handshake means.
//!
//! The settings are those of the Collector's `configtls` and of the OTLP
//! exporter specification's variables; rustls does the TLS (with the
//! aws-lc-rs provider reqwest and tonic use), for both transports.

use std::{
    fmt, fs,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use rustls::{
    ClientConfig, DigitallySignedStruct, Error as TlsError, RootCertStore, SignatureScheme,
    client::{
        ResolvesClientCert, WebPkiServerVerifier,
        danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    },
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime, pem::PemObject},
    sign::CertifiedKey,
};
use selftrace::raw::write_raw_note;

use super::{ConfigError, Counters, LABEL, add};

/// How often, by default, the certificate files are checked for a change
/// (the Collector's `reload_interval`; it has none by default, certificates
/// rotated by cert-manager or Vault change every few hours).
pub(crate) const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(60);

/// The lowest TLS version the exporter accepts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsVersion {
    /// TLS 1.2 and 1.3 (the default).
    #[default]
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

impl TlsVersion {
    /// Parses `1.2` or `1.3` (the Collector's `min_version`).
    ///
    /// # Errors
    ///
    /// Any other version (1.0 and 1.1 are not offered).
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "1.2" => Ok(Self::Tls12),
            "1.3" => Ok(Self::Tls13),
            other => Err(format!("unknown TLS version `{other}`; expected `1.2` or `1.3`")),
        }
    }
}

/// TLS settings of an [`OtlpExporter`](super::OtlpExporter), those of the
/// Collector's `configtls`. Each one left unset comes from the environment
/// (`OTEL_EXPORTER_OTLP_LOGS_*`, then `OTEL_EXPORTER_OTLP_*`), else its
/// default: the platform's roots, no client certificate.
///
/// Files are PEM. A client certificate needs its key and the reverse. The
/// files are read at build (an unreadable or malformed file is an error
/// naming it and its setting) and checked again every
/// [`reload_interval`](Self::with_reload_interval): new connections use
/// new files; a change that leaves a broken pair (a certificate without its
/// new key yet) keeps the last good one and says so once.
///
/// # Examples
///
/// ```
/// use selftrace_bridge::{OtlpExporter, export::TlsConfig};
///
/// let dir = std::env::temp_dir();
/// let tls = TlsConfig::new()
///     .with_ca_file(dir.join("ca.pem")) // the private CA of an in-cluster collector
///     .with_cert_file(dir.join("client.pem")) // mutual TLS: our certificate...
///     .with_key_file(dir.join("client.key")); // ...and its key
/// let error = OtlpExporter::builder().with_endpoint("https://collector:4318").with_tls(tls).build().unwrap_err();
/// // Nothing there in this example: the error names the file and the setting.
/// assert!(error.to_string().contains("OTLP exporter"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsConfig {
    pub(crate) ca_file: Option<PathBuf>,
    pub(crate) cert_file: Option<PathBuf>,
    pub(crate) key_file: Option<PathBuf>,
    pub(crate) insecure: Option<bool>,
    pub(crate) insecure_skip_verify: bool,
    pub(crate) server_name: Option<String>,
    pub(crate) min_version: Option<TlsVersion>,
    pub(crate) reload_interval: Option<Duration>,
}

impl TlsConfig {
    /// No setting: everything from the environment, else the defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Trust the CA certificates in this PEM file instead of the platform's
    /// roots (`OTEL_EXPORTER_OTLP_CERTIFICATE`).
    pub fn with_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Present this client certificate chain, PEM, leaf first
    /// (`OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE`); needs
    /// [`with_key_file`](Self::with_key_file).
    pub fn with_cert_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.cert_file = Some(path.into());
        self
    }

    /// The private key of the client certificate, PEM (PKCS #8, PKCS #1 or
    /// SEC1; `OTEL_EXPORTER_OTLP_CLIENT_KEY`).
    pub fn with_key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.key_file = Some(path.into());
        self
    }

    /// OTLP/gRPC to an endpoint written without a scheme: `true` connects
    /// in plaintext, `false` (the default) with TLS
    /// (`OTEL_EXPORTER_OTLP_INSECURE`; the specification's rule: an
    /// `http://` or `https://` endpoint says it itself).
    pub fn with_insecure(mut self, insecure: bool) -> Self {
        self.insecure = Some(insecure);
        self
    }

    /// Accept any server certificate: encrypted, not authenticated. For a
    /// test bench only; a warning says so once.
    pub fn with_insecure_skip_verify(mut self, skip: bool) -> Self {
        self.insecure_skip_verify = skip;
        self
    }

    /// Check the server's certificate against this name instead of the
    /// endpoint's host (the Collector's `server_name_override`).
    pub fn with_server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// The lowest TLS version (default 1.2).
    pub fn with_min_version(mut self, version: TlsVersion) -> Self {
        self.min_version = Some(version);
        self
    }

    /// How often the certificate files are checked for a change (default
    /// 60 s); zero: read once, at build.
    pub fn with_reload_interval(mut self, interval: Duration) -> Self {
        self.reload_interval = Some(interval);
        self
    }
}

/// A file and the setting or variable it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Source {
    pub(crate) path: PathBuf,
    pub(crate) key: String,
}

/// The TLS settings in force.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ResolvedTls {
    pub(crate) ca: Option<Source>,
    /// The certificate chain and its key.
    pub(crate) client: Option<(Source, Source)>,
    pub(crate) skip_verify: bool,
    pub(crate) server_name: Option<String>,
    pub(crate) min_version: TlsVersion,
    pub(crate) reload_interval: Duration,
}

impl Default for ResolvedTls {
    fn default() -> Self {
        Self {
            ca: None,
            client: None,
            skip_verify: false,
            server_name: None,
            min_version: TlsVersion::Tls12,
            reload_interval: DEFAULT_RELOAD_INTERVAL,
        }
    }
}

/// The rustls configuration of `tls` (the caller sets the ALPN protocols
/// its transport speaks).
pub(crate) fn client_config(tls: &ResolvedTls, counters: &Arc<Counters>) -> Result<ClientConfig, ConfigError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = match tls.min_version {
        TlsVersion::Tls12 => rustls::DEFAULT_VERSIONS,
        TlsVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let roots = if tls.skip_verify {
        write_raw_note(
            LABEL,
            format_args!(
                "insecure_skip_verify: the endpoint's certificate is not checked (encrypted, not authenticated)"
            ),
        );
        Some(Roots::Any)
    } else if let Some(ca) = &tls.ca {
        let for_ca = Arc::clone(&provider);
        let load = move |files: &[Source]| load_ca(files, &for_ca);
        Some(Roots::CaFile(Watched::new(std::slice::from_ref(ca), tls.reload_interval, load, counters)?))
    } else {
        None
    };
    let mut verifier: Arc<dyn ServerCertVerifier> = match roots {
        Some(roots) => Arc::new(ServerCheck { provider: Arc::clone(&provider), roots }),
        None => Arc::new(
            rustls_platform_verifier::Verifier::new(Arc::clone(&provider))
                .map_err(|e| ConfigError::new("tls", format!("cannot load the platform's roots: {e}")))?,
        ),
    };
    if let Some(name) = &tls.server_name {
        let name = ServerName::try_from(name.clone())
            .map_err(|_| ConfigError::new("tls.server_name", format!("`{name}` is not a DNS name or an IP address")))?;
        verifier = Arc::new(Renamed { inner: verifier, name });
    }
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions)
        .map_err(|e| ConfigError::new("tls.min_version", e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    Ok(match &tls.client {
        Some((cert, key)) => {
            let files = [cert.clone(), key.clone()];
            let for_client = Arc::clone(&provider);
            let load = move |files: &[Source]| load_client(files, &for_client);
            builder.with_client_cert_resolver(Arc::new(ClientCert(Watched::new(
                &files,
                tls.reload_interval,
                load,
                counters,
            )?)))
        }
        None => builder.with_no_client_auth(),
    })
}

// === Files that are read again when they change ===

/// What files hold, read again when they change (checked at most once per
/// interval, when a handshake needs them); the last good value stays when
/// what they hold now does not load.
struct Watched<T> {
    files: Vec<Source>,
    interval: Duration,
    load: Load<T>,
    counters: Arc<Counters>,
    state: Mutex<WatchState<T>>,
}

struct WatchState<T> {
    value: T,
    checked: Instant,
    /// Each file's modification time and length when last loaded.
    stamps: Vec<Option<(SystemTime, u64)>>,
    /// The last failure reported (said once until something loads).
    failed: Option<String>,
}

/// What reads the files into the value.
type Load<T> = Box<dyn Fn(&[Source]) -> Result<T, ConfigError> + Send + Sync>;

impl<T: Clone> Watched<T> {
    /// Reads `files` with `load` now (an error is the exporter's build
    /// error) and again when they change; reloads counted in `counters`.
    fn new(
        files: &[Source],
        interval: Duration,
        load: impl Fn(&[Source]) -> Result<T, ConfigError> + Send + Sync + 'static,
        counters: &Arc<Counters>,
    ) -> Result<Self, ConfigError> {
        let stamps = stamps(files);
        let value = load(files)?;
        Ok(Self {
            files: files.to_vec(),
            interval,
            load: Box::new(load),
            counters: Arc::clone(counters),
            state: Mutex::new(WatchState { value, checked: Instant::now(), stamps, failed: None }),
        })
    }

    /// The value, read again first when the interval has passed and a file
    /// changed.
    fn current(&self) -> T {
        let (load, counters) = (&self.load, &self.counters);
        let mut state = match self.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        if !self.interval.is_zero() && state.checked.elapsed() >= self.interval {
            state.checked = Instant::now();
            let now = stamps(&self.files);
            if now != state.stamps {
                match load(&self.files) {
                    Ok(value) => {
                        state.value = value;
                        state.stamps = now;
                        state.failed = None;
                        add(&counters.tls_reloads, 1);
                    }
                    // Tried again at the next check: the other half of a
                    // pair may be on its way.
                    Err(e) => {
                        let message = e.to_string();
                        if state.failed.as_ref() != Some(&message) {
                            add(&counters.tls_reload_errors, 1);
                            write_raw_note(
                                LABEL,
                                format_args!("TLS files changed but do not load ({message}); the last good ones stay"),
                            );
                            state.failed = Some(message);
                        }
                    }
                }
            }
        }
        state.value.clone()
    }
}

fn stamps(files: &[Source]) -> Vec<Option<(SystemTime, u64)>> {
    files.iter().map(|f| fs::metadata(&f.path).ok().and_then(|m| Some((m.modified().ok()?, m.len())))).collect()
}

fn read(source: &Source) -> Result<Vec<u8>, ConfigError> {
    fs::read(&source.path)
        .map_err(|e| ConfigError::new(&source.key, format!("cannot read `{}`: {e}", source.path.display())))
}

fn certificates(source: &Source) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let pem = read(source)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ConfigError::new(&source.key, format!("`{}` is not PEM: {e}", source.path.display())))?;
    if certs.is_empty() {
        return Err(ConfigError::new(&source.key, format!("`{}` holds no PEM certificate", source.path.display())));
    }
    Ok(certs)
}

fn load_ca(files: &[Source], provider: &Arc<CryptoProvider>) -> Result<Arc<WebPkiServerVerifier>, ConfigError> {
    let source = &files[0];
    let mut roots = RootCertStore::empty();
    for cert in certificates(source)? {
        roots.add(cert).map_err(|e| {
            ConfigError::new(
                &source.key,
                format!("`{}` holds a certificate that is not a CA: {e}", source.path.display()),
            )
        })?;
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider))
        .build()
        .map_err(|e| ConfigError::new(&source.key, format!("`{}`: {e}", source.path.display())))
}

fn load_client(files: &[Source], provider: &Arc<CryptoProvider>) -> Result<Arc<CertifiedKey>, ConfigError> {
    let (cert, key) = (&files[0], &files[1]);
    let chain = certificates(cert)?;
    let pem = read(key)?;
    let der = PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| ConfigError::new(&key.key, format!("`{}` holds no PEM private key: {e}", key.path.display())))?;
    let certified = CertifiedKey::from_der(chain, der, provider).map_err(|e| {
        ConfigError::new(
            &key.key,
            format!(
                "`{}` is not the key of the certificate in `{}` ({}): {e}",
                key.path.display(),
                cert.path.display(),
                cert.key
            ),
        )
    })?;
    Ok(Arc::new(certified))
}

// === The client certificate ===

/// Hands rustls the client certificate, read again when its files change.
struct ClientCert(Watched<Arc<CertifiedKey>>);

impl fmt::Debug for ClientCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCert").field("files", &self.0.files).finish()
    }
}

impl ResolvesClientCert for ClientCert {
    fn resolve(&self, _: &[&[u8]], schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        let key = self.0.current();
        // A key the server cannot check is not worth sending.
        key.key.choose_scheme(schemes).is_some().then_some(key)
    }

    fn has_certs(&self) -> bool {
        true
    }
}

// === Server certificate verifiers ===

/// Checks the server's certificate against a CA file (read again when it
/// changes), or not at all (`insecure_skip_verify`); the handshake's
/// signatures are checked either way (the peer holds the key of the
/// certificate it sent).
struct ServerCheck {
    provider: Arc<CryptoProvider>,
    roots: Roots,
}

enum Roots {
    /// `insecure_skip_verify`.
    Any,
    CaFile(Watched<Arc<WebPkiServerVerifier>>),
}

impl fmt::Debug for ServerCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.roots {
            Roots::Any => f.write_str("ServerCheck(any)"),
            Roots::CaFile(watched) => f.debug_tuple("ServerCheck").field(&watched.files).finish(),
        }
    }
}

impl ServerCertVerifier for ServerCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        match &self.roots {
            Roots::Any => Ok(ServerCertVerified::assertion()),
            Roots::CaFile(watched) => {
                watched.current().verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// Checks the server's certificate against another name than the
/// endpoint's host.
#[derive(Debug)]
struct Renamed {
    inner: Arc<dyn ServerCertVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for Renamed {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        self.inner.verify_server_cert(end_entity, intermediates, &self.name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

// === Handshake failures ===

/// Why a handshake failed, by kind: each kind is noted once, with what to
/// check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Failure {
    UnknownIssuer,
    Expired,
    WrongName,
    Refused,
    Other,
}

impl Failure {
    /// What to check for this kind of failure.
    pub(crate) fn advice(self) -> &'static str {
        match self {
            Self::UnknownIssuer => {
                "the server's certificate is not signed by a CA the exporter trusts: check tls.ca_file (OTEL_EXPORTER_OTLP_CERTIFICATE)"
            }
            Self::Expired => "the server's certificate has expired (or is not valid yet): renew it on the server",
            Self::WrongName => {
                "the server's certificate is not for the endpoint's host: check the endpoint or tls.server_name"
            }
            Self::Refused => {
                "the server refused the handshake: it may require a client certificate (tls.cert_file and tls.key_file, OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY) or not trust the one sent"
            }
            Self::Other => "the TLS handshake failed",
        }
    }
}

/// The TLS failure somewhere in `error`'s chain, if any.
pub(crate) fn failure(error: &(dyn std::error::Error + 'static)) -> Option<Failure> {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(tls) = error.downcast_ref::<TlsError>() {
            return Some(classify(tls));
        }
        // `io::Error::source` skips the error it wraps (which may be an
        // `io::Error` again, around rustls's): step into it instead.
        next = match error.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => error.source(),
        };
    }
    None
}

fn classify(error: &TlsError) -> Failure {
    use rustls::{AlertDescription as Alert, CertificateError as Cert};
    match error {
        TlsError::InvalidCertificate(Cert::UnknownIssuer) => Failure::UnknownIssuer,
        TlsError::InvalidCertificate(
            Cert::Expired | Cert::ExpiredContext { .. } | Cert::NotValidYet | Cert::NotValidYetContext { .. },
        ) => Failure::Expired,
        TlsError::InvalidCertificate(Cert::NotValidForName | Cert::NotValidForNameContext { .. }) => Failure::WrongName,
        TlsError::AlertReceived(
            Alert::CertificateRequired
            | Alert::HandshakeFailure
            | Alert::BadCertificate
            | Alert::UnknownCA
            | Alert::CertificateUnknown
            | Alert::AccessDenied,
        ) => Failure::Refused,
        _ => Failure::Other,
    }
}

/// Notes each kind of handshake failure once, and counts every one.
#[derive(Debug, Default)]
pub(crate) struct Failures {
    noted: Mutex<Vec<Failure>>,
}

impl Failures {
    /// Counts a failed handshake with `endpoint`; notes it when it is the
    /// first of its kind.
    pub(crate) fn record(&self, failure: Failure, endpoint: &str, detail: &str, counters: &Counters) {
        add(&counters.tls_failures, 1);
        let mut noted = match self.noted.lock() {
            Ok(noted) => noted,
            Err(poisoned) => poisoned.into_inner(),
        };
        if !noted.contains(&failure) {
            noted.push(failure);
            write_raw_note(LABEL, format_args!("TLS with {endpoint} failed: {}; {detail}", failure.advice()));
        }
    }
}
