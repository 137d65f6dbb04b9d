//! One request to the endpoint, and what its answer means under OTLP: sent
//! over OTLP/HTTP (reqwest) or OTLP/gRPC (tonic, with a codec that passes
//! the bytes through), never re-encoded.

use std::time::Duration;

use bytes::Bytes;

use super::config::{Compression, ConfigError, Protocol, Resolved};

/// What the endpoint made of one request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Success. `rejected` records of it were refused (`partial_success`);
    /// `message` is the endpoint's explanation, if any.
    Accepted { rejected: u64, message: Option<String>, malformed: bool },
    /// A failure that may pass: try again, after `after` if the endpoint
    /// said so. `reached`: the endpoint answered (a status), rather than
    /// the request failing on the way (no connection, a timeout).
    Retry { after: Option<Duration>, reason: String, reached: bool },
    /// A failure that will not pass (a bad request, too large, ...).
    Refused { reason: String },
}

/// The client of one endpoint.
pub(crate) enum Transport {
    #[cfg(feature = "http")]
    Http(Http),
    #[cfg(feature = "grpc")]
    Grpc(Grpc),
}

impl Transport {
    /// Builds the client. gRPC needs to run inside a Tokio runtime (the
    /// channel's worker is spawned on it).
    pub(crate) fn new(config: &Resolved) -> Result<Self, ConfigError> {
        match config.protocol {
            #[cfg(feature = "http")]
            Protocol::HttpProtobuf => Http::new(config).map(Transport::Http),
            #[cfg(feature = "grpc")]
            Protocol::Grpc => Grpc::new(config).map(Transport::Grpc),
            #[cfg_attr(
                all(feature = "http", feature = "grpc"),
                expect(unreachable_patterns, reason = "with both features every protocol is built")
            )]
            other => Err(ConfigError {
                key: config.protocol_key.clone(),
                message: format!("{other:?} needs the `{}` feature of selftrace-bridge", feature_of(other)),
            }),
        }
    }

    /// Sends one `ExportLogsServiceRequest`.
    pub(crate) async fn send(&mut self, body: Bytes) -> Outcome {
        match self {
            #[cfg(feature = "http")]
            Transport::Http(http) => http.send(body).await,
            #[cfg(feature = "grpc")]
            Transport::Grpc(grpc) => grpc.send(body).await,
        }
    }
}

fn feature_of(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::HttpProtobuf => "http",
        Protocol::Grpc => "grpc",
    }
}

fn tls_error(error: impl std::fmt::Display) -> ConfigError {
    ConfigError { key: "endpoint".into(), message: format!("cannot set TLS up: {error}") }
}

// === impl Http ===

/// OTLP/HTTP: `POST` of `application/x-protobuf` bodies.
#[cfg(feature = "http")]
pub(crate) struct Http {
    client: reqwest::Client,
    url: reqwest::Url,
    headers: http::HeaderMap,
    gzip: bool,
}

#[cfg(feature = "http")]
impl Http {
    fn new(config: &Resolved) -> Result<Self, ConfigError> {
        use rustls_platform_verifier::BuilderVerifierExt;

        // rustls with reqwest's provider (aws-lc-rs) and the platform's
        // roots, given ready-made: nothing process-wide is installed.
        let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?
        .with_platform_verifier()
        .map_err(tls_error)?
        .with_no_client_auth();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .build()
            .map_err(|e| ConfigError {
                key: config.endpoint_key.clone(),
                message: format!("cannot build the HTTP client: {e}"),
            })?;
        let url = reqwest::Url::parse(&config.endpoint.to_string()).map_err(|e| ConfigError {
            key: config.endpoint_key.clone(),
            message: format!("`{}`: {e}", config.endpoint),
        })?;
        let mut headers = http::HeaderMap::new();
        for (name, value) in &config.headers {
            headers.append(name.clone(), value.clone());
        }
        headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/x-protobuf"));
        let gzip = config.compression == Compression::Gzip;
        if gzip {
            headers.insert(http::header::CONTENT_ENCODING, http::HeaderValue::from_static("gzip"));
        }
        Ok(Self { client, url, headers, gzip })
    }

    async fn send(&mut self, body: Bytes) -> Outcome {
        let body = if self.gzip {
            match gzip(&body) {
                Ok(compressed) => compressed,
                Err(e) => return Outcome::Refused { reason: format!("gzip failed: {e}") },
            }
        } else {
            body
        };
        let response = match self.client.post(self.url.clone()).headers(self.headers.clone()).body(body).send().await {
            Ok(response) => response,
            // Unreachable, refused, reset, timed out, a TLS failure: the
            // endpoint may come back.
            Err(e) => return Outcome::Retry { after: None, reason: error_chain(&e), reached: false },
        };
        let status = response.status();
        let retry_after = response.headers().get(http::header::RETRY_AFTER).and_then(|v| retry_after(v.to_str().ok()?));
        let body = response.bytes().await;
        if status.is_success() {
            return match body {
                Ok(body) => accepted(&body),
                Err(_) => Outcome::Accepted { rejected: 0, message: None, malformed: true },
            };
        }
        let detail = body.map(|b| printable(&b)).unwrap_or_default();
        let mut reason = format!("HTTP {status}{}{detail}", if detail.is_empty() { "" } else { ": " });
        if status == http::StatusCode::NOT_FOUND {
            // The most common mistake: a URL whose path is not the logs one.
            reason = format!("{reason} (posted to {}; an OTLP/HTTP endpoint takes logs at `/v1/logs`)", self.url);
        }
        match status.as_u16() {
            // The specification's retryable codes.
            429 | 502 | 503 | 504 => Outcome::Retry { after: retry_after, reason, reached: true },
            _ => Outcome::Refused { reason },
        }
    }
}

#[cfg(feature = "http")]
fn gzip(body: &[u8]) -> std::io::Result<Bytes> {
    use std::io::Write;

    let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 4), flate2::Compression::fast());
    encoder.write_all(body)?;
    Ok(encoder.finish()?.into())
}

/// `Retry-After`: seconds, or an HTTP date.
#[cfg(feature = "http")]
fn retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(std::time::SystemTime::now()).unwrap_or_default())
}

#[cfg(feature = "http")]
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// At most 200 characters of a response body, if it is text.
#[cfg(feature = "http")]
fn printable(body: &[u8]) -> String {
    match std::str::from_utf8(body) {
        Ok(text) => text.chars().filter(|c| !c.is_control()).take(200).collect(),
        Err(_) => format!("{} bytes", body.len()),
    }
}

// === impl Grpc ===

/// OTLP/gRPC: `LogsService/Export` through tonic, bytes passed through.
#[cfg(feature = "grpc")]
pub(crate) struct Grpc {
    client: tonic::client::Grpc<tonic::transport::Channel>,
    metadata: tonic::metadata::MetadataMap,
    timeout: Duration,
}

#[cfg(feature = "grpc")]
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

#[cfg(feature = "grpc")]
impl Grpc {
    fn new(config: &Resolved) -> Result<Self, ConfigError> {
        use tonic::transport::{ClientTlsConfig, Endpoint};

        let bad = |e: &dyn std::fmt::Display| ConfigError {
            key: config.endpoint_key.clone(),
            message: format!("`{}`: {e}", config.endpoint),
        };
        let mut endpoint = Endpoint::from_shared(config.endpoint.to_string())
            .map_err(|e| bad(&e))?
            .timeout(config.timeout)
            .connect_timeout(config.timeout);
        if config.endpoint.scheme_str() == Some("https") {
            endpoint = endpoint.tls_config(ClientTlsConfig::new().with_native_roots()).map_err(tls_error)?;
        }
        let mut client = tonic::client::Grpc::new(endpoint.connect_lazy())
            .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
        if config.compression == Compression::Gzip {
            client = client.send_compressed(tonic::codec::CompressionEncoding::Gzip);
        }
        let mut headers = http::HeaderMap::new();
        for (name, value) in &config.headers {
            headers.append(name.clone(), value.clone());
        }
        let metadata = tonic::metadata::MetadataMap::from_headers(headers);
        Ok(Self { client, metadata, timeout: config.timeout })
    }

    async fn send(&mut self, body: Bytes) -> Outcome {
        if let Err(e) = self.client.ready().await {
            return Outcome::Retry { after: None, reason: format!("gRPC channel not ready: {e}"), reached: false };
        }
        let mut request = tonic::Request::new(body);
        *request.metadata_mut() = self.metadata.clone();
        request.set_timeout(self.timeout);
        let path = http::uri::PathAndQuery::from_static(EXPORT_PATH);
        match self.client.unary(request, path, codec::PassThrough).await {
            Ok(response) => accepted(&response.into_inner()),
            Err(status) => {
                use tonic::Code;
                let reason = format!("gRPC {:?}: {}", status.code(), status.message());
                match status.code() {
                    // The specification's retryable codes.
                    Code::Cancelled
                    | Code::DeadlineExceeded
                    | Code::ResourceExhausted
                    | Code::Aborted
                    | Code::OutOfRange
                    | Code::Unavailable
                    | Code::DataLoss => {
                        // What tonic reports when no answer came: not reached.
                        let reached = !matches!(status.code(), Code::Unavailable | Code::DeadlineExceeded);
                        Outcome::Retry { after: None, reason, reached }
                    }
                    _ => Outcome::Refused { reason },
                }
            }
        }
    }
}

/// A tonic codec whose messages are the encoded bytes themselves: the
/// request goes out as selftrace encoded it, the response comes back as
/// bytes for [`accepted`] to read.
#[cfg(feature = "grpc")]
mod codec {
    use bytes::{Buf, BufMut, Bytes};
    use tonic::{
        Status,
        codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    };

    #[derive(Debug, Clone, Copy, Default)]
    pub(super) struct PassThrough;

    impl Codec for PassThrough {
        type Encode = Bytes;
        type Decode = Bytes;
        type Encoder = PassThrough;
        type Decoder = PassThrough;

        fn encoder(&mut self) -> Self::Encoder {
            PassThrough
        }

        fn decoder(&mut self) -> Self::Decoder {
            PassThrough
        }
    }

    impl Encoder for PassThrough {
        type Item = Bytes;
        type Error = Status;

        fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
            dst.put(item);
            Ok(())
        }
    }

    impl Decoder for PassThrough {
        type Item = Bytes;
        type Error = Status;

        fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
            Ok(Some(src.copy_to_bytes(src.remaining())))
        }
    }
}

// === ExportLogsServiceResponse ===

/// Reads an `ExportLogsServiceResponse`: `partial_success` (1) holds
/// `rejected_log_records` (1, int64) and `error_message` (2, string). A body
/// that does not parse is still a success (the status said so), flagged
/// `malformed`.
fn accepted(body: &[u8]) -> Outcome {
    match partial_success(body) {
        Some((rejected, message)) => {
            Outcome::Accepted { rejected, message: message.filter(|m| !m.is_empty()), malformed: false }
        }
        None => Outcome::Accepted { rejected: 0, message: None, malformed: true },
    }
}

fn partial_success(body: &[u8]) -> Option<(u64, Option<String>)> {
    use selftrace::wire::{Fields, Value, otlp::partial_success as ps, otlp::response};
    let (mut rejected, mut message) = (0u64, None);
    for field in Fields::new(body) {
        let field = field.ok()?;
        let (response::PARTIAL_SUCCESS, Value::Len(partial)) = (field.number, field.value) else {
            continue;
        };
        for field in partial.fields() {
            let field = field.ok()?;
            match (field.number, field.value) {
                // int64: a negative count makes no sense; it counts as 0.
                (ps::REJECTED_LOG_RECORDS, Value::Varint(n)) => rejected = u64::try_from(n as i64).unwrap_or(0),
                (ps::ERROR_MESSAGE, Value::Len(text)) => {
                    message = Some(String::from_utf8_lossy(text.bytes).into_owned());
                }
                (ps::REJECTED_LOG_RECORDS | ps::ERROR_MESSAGE, _) => return None,
                _ => {}
            }
        }
    }
    Some((rejected, message))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn partial_success_is_read_and_garbage_is_flagged() {
        // partial_success { rejected_log_records: 3, error_message: "bad" }
        let body = [0x0a, 0x07, 0x08, 0x03, 0x12, 0x03, b'b', b'a', b'd'];
        assert_eq!(accepted(&body), Outcome::Accepted { rejected: 3, message: Some("bad".into()), malformed: false });
        assert_eq!(accepted(&[]), Outcome::Accepted { rejected: 0, message: None, malformed: false });
        assert_eq!(accepted(b"<html>oops</html>"), Outcome::Accepted { rejected: 0, message: None, malformed: true });
        // rejected_log_records as a string: a wrong wire type.
        assert_eq!(
            accepted(&[0x0a, 0x03, 0x0a, 0x01, b'x']),
            Outcome::Accepted { rejected: 0, message: None, malformed: true }
        );
    }

    #[cfg(feature = "http")]
    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        assert_eq!(retry_after("soon"), None);
    }
}
