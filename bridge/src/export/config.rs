//! Where and how the exporter sends: the builder's settings, the standard
//! `OTEL_EXPORTER_OTLP_*` environment variables, and their precedence.

use std::{path::PathBuf, time::Duration};

use super::{
    ConfigError,
    tls::{ResolvedTls, Source, TlsConfig},
};

/// `OTEL_EXPORTER_OTLP_ENDPOINT`: base URL for every signal.
pub(crate) const OTEL_EXPORTER_OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`: the logs URL, used as it is.
pub(crate) const OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT";
/// `OTEL_EXPORTER_OTLP_HEADERS`: `key=value` pairs, comma separated, values percent-encoded.
pub(crate) const OTEL_EXPORTER_OTLP_HEADERS: &str = "OTEL_EXPORTER_OTLP_HEADERS";
/// `OTEL_EXPORTER_OTLP_LOGS_HEADERS`.
pub(crate) const OTEL_EXPORTER_OTLP_LOGS_HEADERS: &str = "OTEL_EXPORTER_OTLP_LOGS_HEADERS";
/// `OTEL_EXPORTER_OTLP_TIMEOUT`: milliseconds per request.
pub(crate) const OTEL_EXPORTER_OTLP_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_TIMEOUT";
/// `OTEL_EXPORTER_OTLP_LOGS_TIMEOUT`.
pub(crate) const OTEL_EXPORTER_OTLP_LOGS_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT";
/// `OTEL_EXPORTER_OTLP_COMPRESSION`: `gzip` or `none`.
pub(crate) const OTEL_EXPORTER_OTLP_COMPRESSION: &str = "OTEL_EXPORTER_OTLP_COMPRESSION";
/// `OTEL_EXPORTER_OTLP_LOGS_COMPRESSION`.
pub(crate) const OTEL_EXPORTER_OTLP_LOGS_COMPRESSION: &str = "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION";
/// `OTEL_EXPORTER_OTLP_PROTOCOL`: `http/protobuf`, `http/json` or `grpc`.
pub(crate) const OTEL_EXPORTER_OTLP_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
/// `OTEL_EXPORTER_OTLP_LOGS_PROTOCOL`.
pub(crate) const OTEL_EXPORTER_OTLP_LOGS_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL";

/// `OTEL_EXPORTER_OTLP_CERTIFICATE`: the CA file.
pub(crate) const OTEL_EXPORTER_OTLP_CERTIFICATE: &str = "OTEL_EXPORTER_OTLP_CERTIFICATE";
/// `OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE`.
pub(crate) const OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE: &str = "OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE";
/// `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE`: the client certificate file.
pub(crate) const OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: &str = "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE";
/// `OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE`.
pub(crate) const OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE: &str = "OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE";
/// `OTEL_EXPORTER_OTLP_CLIENT_KEY`: the client key file.
pub(crate) const OTEL_EXPORTER_OTLP_CLIENT_KEY: &str = "OTEL_EXPORTER_OTLP_CLIENT_KEY";
/// `OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY`.
pub(crate) const OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY: &str = "OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY";
/// `OTEL_EXPORTER_OTLP_INSECURE`: gRPC in plaintext to an endpoint without a scheme.
pub(crate) const OTEL_EXPORTER_OTLP_INSECURE: &str = "OTEL_EXPORTER_OTLP_INSECURE";
/// `OTEL_EXPORTER_OTLP_LOGS_INSECURE`.
pub(crate) const OTEL_EXPORTER_OTLP_LOGS_INSECURE: &str = "OTEL_EXPORTER_OTLP_LOGS_INSECURE";

/// Default OTLP/HTTP logs URL.
pub(crate) const DEFAULT_HTTP_ENDPOINT: &str = "http://localhost:4318/v1/logs";
/// Default OTLP/gRPC URL.
pub(crate) const DEFAULT_GRPC_ENDPOINT: &str = "http://localhost:4317";
/// Default time one request may take (the specification's 10 s).
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// What an exporter sends: its signal-specific variables, its path and
/// its gRPC service.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Signal {
    /// `ExportLogsServiceRequest`s (the default).
    #[default]
    Logs,
    /// `ExportTraceServiceRequest`s.
    #[cfg_attr(
        not(feature = "traces"),
        allow(dead_code, reason = "made by OtlpExporter::traces_builder; read by the OTLP/HTTP transport only")
    )]
    Traces,
}

/// The signal-specific variables of a [`Signal`] (the generic ones are
/// shared).
pub(crate) struct SignalVars {
    pub(crate) endpoint: &'static str,
    pub(crate) headers: &'static str,
    pub(crate) timeout: &'static str,
    pub(crate) compression: &'static str,
    pub(crate) protocol: &'static str,
    pub(crate) certificate: &'static str,
    pub(crate) client_certificate: &'static str,
    pub(crate) client_key: &'static str,
    pub(crate) insecure: &'static str,
}

impl Signal {
    /// The signal's variables.
    pub(crate) const fn vars(self) -> &'static SignalVars {
        match self {
            Signal::Logs => &SignalVars {
                endpoint: OTEL_EXPORTER_OTLP_LOGS_ENDPOINT,
                headers: OTEL_EXPORTER_OTLP_LOGS_HEADERS,
                timeout: OTEL_EXPORTER_OTLP_LOGS_TIMEOUT,
                compression: OTEL_EXPORTER_OTLP_LOGS_COMPRESSION,
                protocol: OTEL_EXPORTER_OTLP_LOGS_PROTOCOL,
                certificate: OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE,
                client_certificate: OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE,
                client_key: OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY,
                insecure: OTEL_EXPORTER_OTLP_LOGS_INSECURE,
            },
            Signal::Traces => &SignalVars {
                endpoint: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                headers: "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                timeout: "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
                compression: "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
                protocol: "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                certificate: "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
                client_certificate: "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
                client_key: "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
                insecure: "OTEL_EXPORTER_OTLP_TRACES_INSECURE",
            },
        }
    }

    /// The OTLP/HTTP path: `/v1/logs`, `/v1/traces`.
    pub(crate) const fn path(self) -> &'static str {
        match self {
            Signal::Logs => "/v1/logs",
            Signal::Traces => "/v1/traces",
        }
    }

    /// The gRPC method.
    #[cfg_attr(not(feature = "grpc"), expect(dead_code, reason = "the gRPC transport's"))]
    pub(crate) const fn grpc_method(self) -> &'static str {
        match self {
            Signal::Logs => "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
            Signal::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        }
    }
}

/// The OTLP transport.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocol {
    /// OTLP/HTTP with binary protobuf bodies (`http/protobuf`), the default.
    #[default]
    HttpProtobuf,
    /// OTLP/HTTP with OTLP/JSON bodies (`http/json`): each batch written
    /// from its bytes by selftrace's JSON writer, `application/json`.
    HttpJson,
    /// OTLP/gRPC (`grpc`): needs the `otlp-grpc` feature of
    /// `selftrace-bridge` (of `selftrace-itr` for the YAML); without it,
    /// an error at build names the feature.
    Grpc,
}

impl Protocol {
    /// Parses the names the specification uses: `http/protobuf`,
    /// `http/json`, `grpc`.
    ///
    /// # Errors
    ///
    /// Any other name is an error that says which are known.
    pub fn parse(name: &str) -> Result<Self, String> {
        match name.trim() {
            "http/protobuf" => Ok(Self::HttpProtobuf),
            "http/json" => Ok(Self::HttpJson),
            "grpc" => Ok(Self::Grpc),
            other => Err(format!("unknown protocol `{other}`; expected `http/protobuf`, `http/json` or `grpc`")),
        }
    }
}

/// Compression of request bodies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compression {
    /// Bodies as they are (the default).
    #[default]
    None,
    /// gzip (`Content-Encoding: gzip`; `grpc-encoding: gzip`).
    Gzip,
}

impl Compression {
    /// Parses `gzip` or `none`.
    ///
    /// # Errors
    ///
    /// Any other name.
    pub fn parse(name: &str) -> Result<Self, String> {
        match name.trim() {
            "gzip" => Ok(Self::Gzip),
            "none" | "" => Ok(Self::None),
            other => Err(format!("unknown compression `{other}`; expected `gzip` or `none`")),
        }
    }
}

/// What the builder was given; `None` means "from the environment, else the
/// default".
#[derive(Clone, Debug, Default)]
pub(crate) struct Settings {
    pub(crate) endpoint: Option<String>,
    pub(crate) protocol: Option<Protocol>,
    pub(crate) headers: Option<Vec<(String, String)>>,
    pub(crate) compression: Option<Compression>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) tls: TlsConfig,
    pub(crate) signal: Signal,
}

/// The settings in force, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Resolved {
    pub(crate) endpoint: http::Uri,
    /// Where the endpoint came from (`endpoint` or a variable's name), for
    /// errors found when the client is built.
    pub(crate) endpoint_key: String,
    pub(crate) protocol: Protocol,
    /// Where the protocol came from.
    pub(crate) protocol_key: String,
    pub(crate) headers: Vec<(http::HeaderName, http::HeaderValue)>,
    pub(crate) compression: Compression,
    pub(crate) timeout: Duration,
    pub(crate) tls: ResolvedTls,
    pub(crate) signal: Signal,
}

impl Settings {
    /// Resolves each setting: the builder's, else the logs-specific
    /// variable, else the generic one, else the default (the OTLP exporter
    /// specification's precedence). `env` reads a variable.
    pub(crate) fn resolve(&self, env: impl Fn(&str) -> Option<String>) -> Result<Resolved, ConfigError> {
        // An empty variable is as if it were not set.
        let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let pick = |signal: &str, generic: &str| {
            env(signal).map(|v| (signal.to_owned(), v)).or_else(|| env(generic).map(|v| (generic.to_owned(), v)))
        };

        let (signal, vars) = (self.signal, self.signal.vars());
        let (protocol_key, protocol) = match self.protocol {
            Some(protocol) => ("protocol".to_owned(), protocol),
            None => match pick(vars.protocol, OTEL_EXPORTER_OTLP_PROTOCOL) {
                Some((key, value)) => {
                    let protocol = Protocol::parse(&value).map_err(|m| ConfigError::new(&key, m))?;
                    (key, protocol)
                }
                None => ("protocol".to_owned(), Protocol::default()),
            },
        };

        // One rule for OTLP/HTTP: a URL with a path is used as it is; one
        // without (or with `/` only) gets `/v1/logs`, whether it came from
        // the builder, the YAML or `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`.
        // `OTEL_EXPORTER_OTLP_ENDPOINT` is a base URL: `/v1/logs` is always
        // appended to it (the specification's rule).
        let http = protocol != Protocol::Grpc;
        let insecure = match self.tls.insecure {
            Some(insecure) => insecure,
            None => match pick(vars.insecure, OTEL_EXPORTER_OTLP_INSECURE) {
                Some((key, value)) => parse_bool(&value).map_err(|m| ConfigError::new(&key, m))?,
                None => false,
            },
        };
        // gRPC to an endpoint written without a scheme: TLS unless
        // `insecure` (the specification's rule).
        let scheme = |url: &str| -> String {
            let url = url.trim();
            match (http, url.contains("://"), insecure) {
                (false, false, true) => format!("http://{url}"),
                (false, false, false) => format!("https://{url}"),
                _ => url.to_owned(),
            }
        };
        let (key, endpoint) = match (&self.endpoint, env(vars.endpoint), env(OTEL_EXPORTER_OTLP_ENDPOINT)) {
            (Some(endpoint), _, _) => ("endpoint", signal_url(&scheme(endpoint), http, false, signal)),
            (None, Some(endpoint), _) => (vars.endpoint, signal_url(&scheme(&endpoint), http, false, signal)),
            (None, None, Some(base)) => (OTEL_EXPORTER_OTLP_ENDPOINT, signal_url(&scheme(&base), http, true, signal)),
            (None, None, None) => match protocol {
                Protocol::HttpProtobuf | Protocol::HttpJson => (
                    "endpoint",
                    parse_endpoint(&format!("{}{}", DEFAULT_HTTP_ENDPOINT.trim_end_matches("/v1/logs"), signal.path())),
                ),
                Protocol::Grpc => ("endpoint", parse_endpoint(DEFAULT_GRPC_ENDPOINT)),
            },
        };
        let endpoint = endpoint.map_err(|m| ConfigError::new(key, m))?;

        let headers = match &self.headers {
            Some(headers) => headers
                .iter()
                .map(|(k, v)| header(k, v).map_err(|m| ConfigError::new("headers", m)))
                .collect::<Result<_, _>>()?,
            None => match pick(vars.headers, OTEL_EXPORTER_OTLP_HEADERS) {
                Some((key, value)) => parse_headers(&value).map_err(|m| ConfigError::new(&key, m))?,
                None => Vec::new(),
            },
        };

        let compression = match self.compression {
            Some(compression) => compression,
            None => match pick(vars.compression, OTEL_EXPORTER_OTLP_COMPRESSION) {
                Some((key, value)) => Compression::parse(&value).map_err(|m| ConfigError::new(&key, m))?,
                None => Compression::None,
            },
        };

        let timeout = match self.timeout {
            Some(timeout) if timeout.is_zero() => return Err(ConfigError::new("timeout", "must be more than 0")),
            Some(timeout) => timeout,
            None => match pick(vars.timeout, OTEL_EXPORTER_OTLP_TIMEOUT) {
                Some((key, value)) => match value.trim().parse::<u64>() {
                    Ok(ms) if ms > 0 => Duration::from_millis(ms),
                    _ => {
                        return Err(ConfigError::new(
                            &key,
                            format!("`{value}` is not a positive number of milliseconds"),
                        ));
                    }
                },
                None => DEFAULT_TIMEOUT,
            },
        };

        let file = |set: &Option<PathBuf>, setting: &str, signal: &str, generic: &str| match set {
            Some(path) => Some(Source { path: path.clone(), key: setting.to_owned() }),
            None => pick(signal, generic).map(|(key, value)| Source { path: PathBuf::from(value.trim()), key }),
        };
        let ca = file(&self.tls.ca_file, "tls.ca_file", vars.certificate, OTEL_EXPORTER_OTLP_CERTIFICATE);
        let cert =
            file(&self.tls.cert_file, "tls.cert_file", vars.client_certificate, OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE);
        let key_file = file(&self.tls.key_file, "tls.key_file", vars.client_key, OTEL_EXPORTER_OTLP_CLIENT_KEY);
        let client = match (cert, key_file) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            (Some(cert), None) => {
                return Err(ConfigError::new(
                    &cert.key,
                    format!(
                        "a client certificate needs its key: set tls.key_file ({OTEL_EXPORTER_OTLP_CLIENT_KEY}) too, or neither"
                    ),
                ));
            }
            (None, Some(key)) => {
                return Err(ConfigError::new(
                    &key.key,
                    format!(
                        "a client key needs its certificate: set tls.cert_file ({OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE}) too, or neither"
                    ),
                ));
            }
        };
        let defaults = ResolvedTls::default();
        let tls = ResolvedTls {
            ca,
            client,
            skip_verify: self.tls.insecure_skip_verify,
            server_name: self.tls.server_name.clone(),
            min_version: self.tls.min_version.unwrap_or(defaults.min_version),
            reload_interval: self.tls.reload_interval.unwrap_or(defaults.reload_interval),
        };

        Ok(Resolved {
            endpoint,
            endpoint_key: key.to_owned(),
            protocol,
            protocol_key,
            headers,
            compression,
            timeout,
            tls,
            signal,
        })
    }
}

/// The share of traces an exporter's span layer samples, from
/// `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG` (the SDK's
/// variables): `always_on`, `always_off`, `traceidratio` and their
/// `parentbased_` forms (selftrace's sampler is always parent-based: a
/// local child follows its parent, and a trace id ratio decides the same
/// for every span of a trace); the argument, a ratio in `0..=1`, for the
/// ratio ones (default 1). 1 when the variable is not set.
#[cfg(feature = "traces")]
pub(crate) fn trace_sample_ratio(env: impl Fn(&str) -> Option<String>) -> Result<f64, ConfigError> {
    const SAMPLER: &str = "OTEL_TRACES_SAMPLER";
    const ARG: &str = "OTEL_TRACES_SAMPLER_ARG";
    let env = |name: &str| env(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let Some(sampler) = env(SAMPLER) else { return Ok(1.0) };
    match sampler.to_ascii_lowercase().as_str() {
        "always_on" | "parentbased_always_on" => Ok(1.0),
        "always_off" | "parentbased_always_off" => Ok(0.0),
        "traceidratio" | "parentbased_traceidratio" => match env(ARG) {
            None => Ok(1.0),
            Some(arg) => match arg.parse::<f64>() {
                Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(ratio),
                _ => Err(ConfigError::new(ARG, format!("a ratio from 0 to 1 is expected, got {arg:?}"))),
            },
        },
        other => Err(ConfigError::new(
            SAMPLER,
            format!(
                "{other:?} is not supported: always_on, always_off, traceidratio (or parentbased_always_on, parentbased_always_off, parentbased_traceidratio)"
            ),
        )),
    }
}

/// `true` or `false` (any case), as the specification's booleans.
fn parse_bool(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(format!("`{other}` is not `true` or `false`")),
    }
}

/// The URL to send to: `url` checked, with `/v1/logs` appended for
/// OTLP/HTTP when it has no path, or always when it is a `base`.
fn signal_url(url: &str, http: bool, base: bool, signal: Signal) -> Result<http::Uri, String> {
    let uri = parse_endpoint(url)?;
    let bare = matches!(uri.path(), "" | "/");
    if !http || !(base || bare) {
        return Ok(uri);
    }
    let joined = format!("{}{}", url.trim_end_matches('/'), signal.path());
    joined.parse().map_err(|e| format!("`{joined}` is not a URL: {e}"))
}

/// An `http` or `https` URL with a host and, if any, a port that is one.
fn parse_endpoint(url: &str) -> Result<http::Uri, String> {
    if !url.contains("://") {
        // Advice only when the advice is a URL itself.
        let advice = format!("http://{url}");
        return Err(match advice.parse::<http::Uri>() {
            Ok(_) if !url.contains(char::is_whitespace) => {
                format!("`{url}` has no scheme; write `http://{url}` or `https://{url}`")
            }
            _ => format!("`{url}` is not a URL (expected `http://host:port` or `https://host:port`)"),
        });
    }
    let uri: http::Uri = url.parse().map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(other) => return Err(format!("`{url}`: scheme `{other}` is not supported; use `http` or `https`")),
        None => return Err(format!("`{url}` has no scheme")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("`{url}` has no host"));
    }
    // `http::Uri` keeps a port as text; a client refuses one past 65535.
    if let Some(port) = uri.authority().and_then(|a| a.as_str().rsplit_once(':')).map(|(_, p)| p)
        && !port.contains(']')
        && port.parse::<u16>().is_err()
    {
        return Err(format!("`{url}`: `{port}` is not a port (0 to 65535)"));
    }
    Ok(uri)
}

fn header(key: &str, value: &str) -> Result<(http::HeaderName, http::HeaderValue), String> {
    let name = http::HeaderName::from_bytes(key.trim().as_bytes())
        .map_err(|_| format!("`{key}` is not a valid header name"))?;
    let value = http::HeaderValue::from_str(value.trim())
        .map_err(|_| format!("the value of `{key}` is not a valid header value"))?;
    Ok((name, value))
}

/// `key1=value1,key2=value2`, values percent-decoded (the W3C baggage
/// format the specification names).
fn parse_headers(text: &str) -> Result<Vec<(http::HeaderName, http::HeaderValue)>, String> {
    let mut headers = Vec::new();
    for pair in text.split(',').filter(|p| !p.trim().is_empty()) {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(format!("`{}` is not `key=value`", pair.trim()));
        };
        let value = percent_decode(value.trim())
            .ok_or_else(|| format!("the value of `{}` is not valid percent-encoded UTF-8", key.trim()))?;
        headers.push(header(key, &value)?);
    }
    Ok(headers)
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[cfg(feature = "traces")]
    #[test]
    fn the_trace_sampler_variables_give_a_ratio_or_a_precise_error() {
        let ratio = |vars: &[(&str, &str)]| {
            let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
            trace_sample_ratio(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
        };
        assert_eq!(ratio(&[]), Ok(1.0));
        assert_eq!(ratio(&[("OTEL_TRACES_SAMPLER", "always_off")]), Ok(0.0));
        assert_eq!(ratio(&[("OTEL_TRACES_SAMPLER", "parentbased_always_on")]), Ok(1.0));
        assert_eq!(ratio(&[("OTEL_TRACES_SAMPLER", "traceidratio")]), Ok(1.0));
        let tenth = [("OTEL_TRACES_SAMPLER", "ParentBased_TraceIdRatio"), ("OTEL_TRACES_SAMPLER_ARG", " 0.1 ")];
        assert_eq!(ratio(&tenth), Ok(0.1));
        let too_much = ratio(&[("OTEL_TRACES_SAMPLER", "traceidratio"), ("OTEL_TRACES_SAMPLER_ARG", "2")]);
        assert_eq!(
            too_much.expect_err("out of range").to_string(),
            r#"OTEL_TRACES_SAMPLER_ARG: a ratio from 0 to 1 is expected, got "2""#
        );
        let jaeger = ratio(&[("OTEL_TRACES_SAMPLER", "jaeger_remote")]).expect_err("not supported").to_string();
        assert!(jaeger.starts_with(r#"OTEL_TRACES_SAMPLER: "jaeger_remote" is not supported"#), "{jaeger}");
    }

    fn resolve(settings: Settings, vars: &[(&str, &str)]) -> Result<Resolved, ConfigError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        settings.resolve(|name| vars.get(name).cloned())
    }

    #[test]
    fn tls_files_follow_the_same_precedence_and_a_pair_is_whole() {
        let vars = [
            (OTEL_EXPORTER_OTLP_CERTIFICATE, "/generic/ca.pem"),
            (OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE, "/logs/ca.pem"),
            (OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE, "/generic/client.pem"),
            (OTEL_EXPORTER_OTLP_CLIENT_KEY, "/generic/client.key"),
        ];
        let tls = resolve(Settings::default(), &vars).unwrap().tls;
        let source = |path: &str, key: &str| Source { path: path.into(), key: key.into() };
        assert_eq!(tls.ca, Some(source("/logs/ca.pem", OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE)));
        assert_eq!(
            tls.client,
            Some((
                source("/generic/client.pem", OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE),
                source("/generic/client.key", OTEL_EXPORTER_OTLP_CLIENT_KEY)
            ))
        );
        // The builder's file wins and names its setting.
        let settings = Settings { tls: TlsConfig::new().with_ca_file("/mine/ca.pem"), ..Settings::default() };
        assert_eq!(resolve(settings, &vars).unwrap().tls.ca, Some(source("/mine/ca.pem", "tls.ca_file")));
        // Half a pair, from the environment: named by its variable.
        let error = resolve(Settings::default(), &[(OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY, "/k")]).unwrap_err();
        assert_eq!(error.key, OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY);
        assert!(error.message.starts_with("a client key needs its certificate"), "{error}");
        assert_eq!(resolve(Settings::default(), &[]).unwrap().tls, ResolvedTls::default());
    }

    #[test]
    fn http_json_is_a_protocol_with_the_http_endpoint_rule() {
        let json = resolve(Settings::default(), &[(OTEL_EXPORTER_OTLP_LOGS_PROTOCOL, "http/json")]).unwrap();
        assert_eq!((json.protocol, json.endpoint.to_string()), (Protocol::HttpJson, DEFAULT_HTTP_ENDPOINT.to_owned()));
        let base = resolve(
            Settings::default(),
            &[(OTEL_EXPORTER_OTLP_PROTOCOL, "http/json"), (OTEL_EXPORTER_OTLP_ENDPOINT, "https://c:4318")],
        )
        .unwrap();
        assert_eq!(base.endpoint, "https://c:4318/v1/logs");
        let error = resolve(Settings::default(), &[(OTEL_EXPORTER_OTLP_PROTOCOL, "http/xml")]).unwrap_err();
        assert_eq!(error.message, "unknown protocol `http/xml`; expected `http/protobuf`, `http/json` or `grpc`");
    }

    #[test]
    fn insecure_decides_the_scheme_of_a_grpc_endpoint_written_without_one() {
        let grpc = |vars: &[(&str, &str)]| {
            let mut all = vec![(OTEL_EXPORTER_OTLP_PROTOCOL, "grpc"), (OTEL_EXPORTER_OTLP_ENDPOINT, "collector:4317")];
            all.extend_from_slice(vars);
            resolve(Settings::default(), &all)
        };
        assert_eq!(grpc(&[]).unwrap().endpoint, "https://collector:4317/");
        assert_eq!(grpc(&[(OTEL_EXPORTER_OTLP_INSECURE, "true")]).unwrap().endpoint, "http://collector:4317/");
        assert_eq!(grpc(&[(OTEL_EXPORTER_OTLP_LOGS_INSECURE, "FALSE")]).unwrap().endpoint, "https://collector:4317/");
        let error = grpc(&[(OTEL_EXPORTER_OTLP_INSECURE, "yes")]).unwrap_err();
        assert_eq!(
            (error.key.as_str(), error.message.as_str()),
            (OTEL_EXPORTER_OTLP_INSECURE, "`yes` is not `true` or `false`")
        );
        // A scheme says it itself; OTLP/HTTP still needs one.
        assert_eq!(
            grpc(&[(OTEL_EXPORTER_OTLP_ENDPOINT, "http://c:4317"), (OTEL_EXPORTER_OTLP_INSECURE, "false")])
                .map(|r| r.endpoint)
                .ok(),
            Some("http://c:4317/".parse().unwrap())
        );
        let http = resolve(Settings::default(), &[(OTEL_EXPORTER_OTLP_ENDPOINT, "collector:4318")]).unwrap_err();
        assert!(http.message.contains("has no scheme"), "{http}");
    }

    #[test]
    fn defaults_per_protocol() {
        let http = resolve(Settings::default(), &[]).unwrap();
        assert_eq!(http.endpoint, DEFAULT_HTTP_ENDPOINT);
        assert_eq!(
            (http.protocol, http.compression, http.timeout),
            (Protocol::HttpProtobuf, Compression::None, DEFAULT_TIMEOUT)
        );
        let grpc = resolve(Settings::default(), &[(OTEL_EXPORTER_OTLP_PROTOCOL, "grpc")]).unwrap();
        assert_eq!(grpc.endpoint, DEFAULT_GRPC_ENDPOINT);
    }

    #[test]
    fn the_base_endpoint_gets_the_logs_path_and_the_logs_endpoint_is_used_as_is() {
        let base = resolve(Settings::default(), &[(OTEL_EXPORTER_OTLP_ENDPOINT, "http://collector:4318/")]).unwrap();
        assert_eq!(base.endpoint, "http://collector:4318/v1/logs");
        let both = resolve(
            Settings::default(),
            &[
                (OTEL_EXPORTER_OTLP_ENDPOINT, "http://a:4318"),
                (OTEL_EXPORTER_OTLP_LOGS_ENDPOINT, "http://b:9999/custom"),
            ],
        )
        .unwrap();
        assert_eq!(both.endpoint, "http://b:9999/custom");
        let grpc = resolve(
            Settings::default(),
            &[(OTEL_EXPORTER_OTLP_ENDPOINT, "http://a:4317"), (OTEL_EXPORTER_OTLP_PROTOCOL, "grpc")],
        )
        .unwrap();
        assert_eq!(grpc.endpoint, "http://a:4317/");
    }

    #[test]
    fn the_builder_wins_over_the_environment_and_signal_variables_over_generic_ones() {
        let settings = Settings {
            endpoint: Some("http://builder:1/v1/logs".into()),
            timeout: Some(Duration::from_millis(250)),
            ..Settings::default()
        };
        let resolved = resolve(
            settings,
            &[
                (OTEL_EXPORTER_OTLP_LOGS_ENDPOINT, "http://env:2/v1/logs"),
                (OTEL_EXPORTER_OTLP_TIMEOUT, "5000"),
                (OTEL_EXPORTER_OTLP_COMPRESSION, "none"),
                (OTEL_EXPORTER_OTLP_LOGS_COMPRESSION, "gzip"),
                (OTEL_EXPORTER_OTLP_HEADERS, "a=1"),
                (OTEL_EXPORTER_OTLP_LOGS_HEADERS, "api-key=se%20cret, tenant = t1"),
            ],
        )
        .unwrap();
        assert_eq!(resolved.endpoint, "http://builder:1/v1/logs");
        assert_eq!(resolved.timeout, Duration::from_millis(250));
        assert_eq!(resolved.compression, Compression::Gzip);
        let headers: Vec<_> = resolved.headers.iter().map(|(k, v)| (k.as_str(), v.to_str().unwrap())).collect();
        assert_eq!(headers, [("api-key", "se cret"), ("tenant", "t1")]);
    }

    #[test]
    fn one_rule_for_http_endpoints_without_a_path() {
        let builder = |url: &str| Settings { endpoint: Some(url.into()), ..Settings::default() };
        let cases = [
            (resolve(builder("http://127.0.0.1:4318"), &[]), "http://127.0.0.1:4318/v1/logs"),
            (resolve(builder("http://127.0.0.1:4318/"), &[]), "http://127.0.0.1:4318/v1/logs"),
            (resolve(builder("http://127.0.0.1:4318/custom"), &[]), "http://127.0.0.1:4318/custom"),
            (
                resolve(Settings::default(), &[(OTEL_EXPORTER_OTLP_LOGS_ENDPOINT, "http://c:4318")]),
                "http://c:4318/v1/logs",
            ),
            (
                resolve(Settings::default(), &[(OTEL_EXPORTER_OTLP_ENDPOINT, "http://c:4318/base")]),
                "http://c:4318/base/v1/logs",
            ),
        ];
        for (resolved, expected) in cases {
            assert_eq!(resolved.map(|r| r.endpoint.to_string()).ok().as_deref(), Some(expected));
        }
        // A protocol from a variable names the variable in later errors.
        let grpc = resolve(Settings::default(), &[(OTEL_EXPORTER_OTLP_PROTOCOL, "grpc")]).unwrap();
        assert_eq!((grpc.protocol_key.as_str(), grpc.endpoint_key.as_str()), (OTEL_EXPORTER_OTLP_PROTOCOL, "endpoint"));
    }

    #[test]
    fn bad_values_name_their_variable_or_setting() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[(OTEL_EXPORTER_OTLP_ENDPOINT, "not a url")],
                "OTEL_EXPORTER_OTLP_ENDPOINT: `not a url` is not a URL (expected `http://host:port` or `https://host:port`)",
            ),
            (
                &[(OTEL_EXPORTER_OTLP_ENDPOINT, "collector:4318")],
                "OTEL_EXPORTER_OTLP_ENDPOINT: `collector:4318` has no scheme; write `http://collector:4318` or `https://collector:4318`",
            ),
            (
                &[(OTEL_EXPORTER_OTLP_ENDPOINT, "http://bad host")],
                "OTEL_EXPORTER_OTLP_ENDPOINT: `http://bad host` is not a URL",
            ),
            (
                &[(OTEL_EXPORTER_OTLP_ENDPOINT, "http://127.0.0.1:99999")],
                "OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:99999`: `99999` is not a port (0 to 65535)",
            ),
            (
                &[(OTEL_EXPORTER_OTLP_LOGS_ENDPOINT, "ftp://x/v1/logs")],
                "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: `ftp://x/v1/logs`: scheme `ftp` is not supported; use `http` or `https`",
            ),
            (
                &[(OTEL_EXPORTER_OTLP_LOGS_ENDPOINT, "localhost:4318")],
                "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: `localhost:4318`",
            ),
            (&[(OTEL_EXPORTER_OTLP_HEADERS, "novalue")], "OTEL_EXPORTER_OTLP_HEADERS: `novalue` is not `key=value`"),
            (
                &[(OTEL_EXPORTER_OTLP_HEADERS, "bad key=1")],
                "OTEL_EXPORTER_OTLP_HEADERS: `bad key` is not a valid header name",
            ),
            (
                &[(OTEL_EXPORTER_OTLP_LOGS_HEADERS, "k=%zz")],
                "OTEL_EXPORTER_OTLP_LOGS_HEADERS: the value of `k` is not valid percent-encoded UTF-8",
            ),
            (
                &[(OTEL_EXPORTER_OTLP_TIMEOUT, "10s")],
                "OTEL_EXPORTER_OTLP_TIMEOUT: `10s` is not a positive number of milliseconds",
            ),
            (
                &[(OTEL_EXPORTER_OTLP_COMPRESSION, "zstd")],
                "OTEL_EXPORTER_OTLP_COMPRESSION: unknown compression `zstd`; expected `gzip` or `none`",
            ),
            (
                &[(OTEL_EXPORTER_OTLP_PROTOCOL, "json")],
                "OTEL_EXPORTER_OTLP_PROTOCOL: unknown protocol `json`; expected `http/protobuf`, `http/json` or `grpc`",
            ),
        ];
        for (vars, expected) in cases {
            let error = resolve(Settings::default(), vars).unwrap_err().to_string();
            assert!(error.starts_with(expected), "{error:?} does not start with {expected:?}");
        }
        let settings = Settings { headers: Some(vec![("x".into(), "line\nbreak".into())]), ..Settings::default() };
        assert_eq!(
            resolve(settings, &[]).unwrap_err().to_string(),
            "headers: the value of `x` is not a valid header value"
        );
    }
}
