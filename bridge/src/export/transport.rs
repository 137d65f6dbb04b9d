//! One request to the endpoint, and what its answer means under OTLP: sent
//! over OTLP/HTTP (reqwest) or OTLP/gRPC (tonic, with a codec that passes
//! the bytes through), never re-encoded.

use std::time::Duration;

use bytes::Bytes;

use std::sync::Arc;

use super::{
    ConfigError, Counters,
    config::{Compression, Protocol, Resolved},
    tls,
};

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
    pub(crate) fn new(config: &Resolved, counters: &Arc<Counters>) -> Result<Self, ConfigError> {
        match config.protocol {
            #[cfg(feature = "http")]
            Protocol::HttpProtobuf | Protocol::HttpJson => Http::new(config, counters).map(Transport::Http),
            #[cfg(feature = "grpc")]
            Protocol::Grpc => Grpc::new(config, counters).map(Transport::Grpc),
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
        Protocol::HttpProtobuf | Protocol::HttpJson => "http",
        Protocol::Grpc => "grpc",
    }
}

// === impl Http ===

/// OTLP/HTTP: `POST` of `application/x-protobuf` bodies.
#[cfg(feature = "http")]
pub(crate) struct Http {
    client: reqwest::Client,
    url: reqwest::Url,
    headers: http::HeaderMap,
    gzip: bool,
    /// `http/json`: bodies as OTLP/JSON, answers read as JSON.
    json: bool,
    counters: Arc<Counters>,
    tls_failures: tls::Failures,
}

#[cfg(feature = "http")]
impl Http {
    fn new(config: &Resolved, counters: &Arc<Counters>) -> Result<Self, ConfigError> {
        // rustls with reqwest's provider (aws-lc-rs), given ready-made:
        // nothing process-wide is installed.
        let tls = tls::client_config(&config.tls, counters)?;
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
        let json = config.protocol == Protocol::HttpJson;
        if json && config.signal == super::config::Signal::Traces {
            return Err(ConfigError {
                key: config.protocol_key.clone(),
                message: "`http/json` is written for logs only; send traces as `http/protobuf` or `grpc`".into(),
            });
        }
        let content_type = if json { "application/json" } else { "application/x-protobuf" };
        headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(content_type));
        let gzip = config.compression == Compression::Gzip;
        if gzip {
            headers.insert(http::header::CONTENT_ENCODING, http::HeaderValue::from_static("gzip"));
        }
        Ok(Self {
            client,
            url,
            headers,
            gzip,
            json,
            counters: Arc::clone(counters),
            tls_failures: tls::Failures::default(),
        })
    }

    async fn send(&mut self, body: Bytes) -> Outcome {
        let body = if self.json {
            // The batch's bytes, written as OTLP/JSON (checked whole: a
            // batch the merger made always decodes).
            let mut text = String::with_capacity(body.len() * 2);
            match selftrace::json::write_request(&mut text, &body) {
                Ok(_) => Bytes::from(text),
                Err(e) => return Outcome::Refused { reason: format!("the batch cannot be written as JSON: {e}") },
            }
        } else {
            body
        };
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
            Err(e) => {
                let reason = error_chain(&e);
                if let Some(failure) = tls::failure(&e) {
                    self.tls_failures.record(failure, self.url.as_str(), &reason, &self.counters);
                }
                return Outcome::Retry { after: None, reason, reached: false };
            }
        };
        let status = response.status();
        let retry_after = response.headers().get(http::header::RETRY_AFTER).and_then(|v| retry_after(v.to_str().ok()?));
        let body = response.bytes().await;
        if status.is_success() {
            return match body {
                Ok(body) if self.json => accepted_json(&body),
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
    counters: Arc<Counters>,
    url: String,
    /// `LogsService/Export` or `TraceService/Export`.
    method: &'static str,
    /// Shared with the connector, which sees the handshake's own errors.
    failures: Arc<tls::Failures>,
}

#[cfg(feature = "grpc")]
impl Grpc {
    fn new(config: &Resolved, counters: &Arc<Counters>) -> Result<Self, ConfigError> {
        use tonic::transport::Endpoint;

        let bad = |e: &dyn std::fmt::Display| ConfigError {
            key: config.endpoint_key.clone(),
            message: format!("`{}`: {e}", config.endpoint),
        };
        let https = config.endpoint.scheme_str() == Some("https");
        // tonic connects to a plain URI; over `https` the TLS is ours (the
        // exporter's rustls configuration, which tonic's own TLS cannot
        // take: a verifier, a certificate resolver), and the requests still
        // say `https`.
        let plain = match config.endpoint.authority() {
            Some(authority) if https => format!("http://{authority}"),
            _ => config.endpoint.to_string(),
        };
        let endpoint = Endpoint::from_shared(plain)
            .map_err(|e| bad(&e))?
            .origin(config.endpoint.clone())
            .timeout(config.timeout)
            .connect_timeout(config.timeout);
        let failures = Arc::new(tls::Failures::default());
        let channel = if https {
            let mut tls = tls::client_config(&config.tls, counters)?;
            tls.alpn_protocols = vec![b"h2".to_vec()];
            let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
            let host = config.endpoint.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
            let name = rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(|e| bad(&e))?;
            let port = config.endpoint.port_u16().unwrap_or(443);
            let address = format!("{}:{port}", config.endpoint.host().unwrap_or_default());
            let (counters, url, failures) = (Arc::clone(counters), config.endpoint.to_string(), Arc::clone(&failures));
            endpoint.connect_with_connector_lazy(tower::service_fn(move |_: http::Uri| {
                let (connector, name, address) = (connector.clone(), name.clone(), address.clone());
                let (counters, url, failures) = (Arc::clone(&counters), url.clone(), Arc::clone(&failures));
                async move {
                    let tcp = tokio::net::TcpStream::connect(address).await?;
                    let _ = tcp.set_nodelay(true);
                    match connector.connect(name, tcp).await {
                        Ok(stream) => Ok(hyper_util::rt::TokioIo::new(Observed {
                            io: stream,
                            failures,
                            counters,
                            url,
                            heard: false,
                            recorded: false,
                        })),
                        Err(e) => {
                            if let Some(failure) = tls::failure(&e) {
                                failures.record(failure, &url, &e.to_string(), &counters);
                            }
                            Err(e)
                        }
                    }
                }
            }))
        } else {
            endpoint.connect_lazy()
        };
        let mut client = tonic::client::Grpc::new(channel).accept_compressed(tonic::codec::CompressionEncoding::Gzip);
        if config.compression == Compression::Gzip {
            client = client.send_compressed(tonic::codec::CompressionEncoding::Gzip);
        }
        let mut headers = http::HeaderMap::new();
        for (name, value) in &config.headers {
            headers.append(name.clone(), value.clone());
        }
        let metadata = tonic::metadata::MetadataMap::from_headers(headers);
        Ok(Self {
            client,
            metadata,
            timeout: config.timeout,
            counters: Arc::clone(counters),
            url: config.endpoint.to_string(),
            method: config.signal.grpc_method(),
            failures,
        })
    }

    async fn send(&mut self, body: Bytes) -> Outcome {
        if let Err(e) = self.client.ready().await {
            return Outcome::Retry { after: None, reason: format!("gRPC channel not ready: {e}"), reached: false };
        }
        let mut request = tonic::Request::new(body);
        *request.metadata_mut() = self.metadata.clone();
        request.set_timeout(self.timeout);
        let path = http::uri::PathAndQuery::from_static(self.method);
        match self.client.unary(request, path, codec::PassThrough).await {
            Ok(response) => accepted(&response.into_inner()),
            Err(status) => {
                use tonic::Code;
                let reason = format!("gRPC {:?}: {}", status.code(), status.message());
                // Made by the transport, not answered by the server (tonic
                // says `UNKNOWN` for a connection that broke): the endpoint
                // may come back.
                let transport = std::error::Error::source(&status)
                    .is_some_and(|source| source.downcast_ref::<tonic::transport::Error>().is_some());
                // A refusal the server says after the handshake (TLS 1.3:
                // a client certificate it does not take).
                if let Some(failure) = tls::failure(&status) {
                    self.failures.record(failure, &self.url, &reason, &self.counters);
                }
                if transport && status.code() == Code::Unknown {
                    return Outcome::Retry { after: None, reason, reached: false };
                }
                match status.code() {
                    // The specification's retryable codes.
                    Code::Cancelled
                    | Code::DeadlineExceeded
                    | Code::ResourceExhausted
                    | Code::Aborted
                    | Code::OutOfRange
                    | Code::Unavailable
                    | Code::DataLoss => {
                        // What tonic reports when no answer came (a
                        // connection closed under the request is
                        // `CANCELLED`): not reached.
                        let reached =
                            !matches!(status.code(), Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled);
                        Outcome::Retry { after: None, reason, reached }
                    }
                    _ => Outcome::Refused { reason },
                }
            }
        }
    }
}

/// A TLS stream whose read errors are looked at: with TLS 1.3 a server
/// refuses a client certificate after the handshake, in an alert the
/// HTTP/2 connection reads and tonic reports only as a closed connection.
#[cfg(feature = "grpc")]
struct Observed<T> {
    io: T,
    failures: Arc<tls::Failures>,
    counters: Arc<Counters>,
    url: String,
    /// The server sent something since the handshake (an HTTP/2 server
    /// starts with its SETTINGS).
    heard: bool,
    /// A failure of this connection was recorded.
    recorded: bool,
}

#[cfg(feature = "grpc")]
impl<T: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Observed<T> {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = std::pin::Pin::new(&mut this.io).poll_read(cx, buf);
        match &read {
            std::task::Poll::Ready(Ok(())) if buf.filled().len() > before => this.heard = true,
            // Closed before the server said anything: what a server that
            // refuses the client certificate after a TLS 1.3 handshake
            // does (often without the alert).
            std::task::Poll::Ready(Ok(())) if !this.heard => {
                this.refused("closed by the server before it sent anything")
            }
            _ => {}
        }
        this.look(read)
    }
}

#[cfg(feature = "grpc")]
impl<T> Observed<T> {
    /// Counts and notes a TLS failure `result` carries.
    fn look<R>(&mut self, result: std::task::Poll<std::io::Result<R>>) -> std::task::Poll<std::io::Result<R>> {
        if let std::task::Poll::Ready(Err(e)) = &result {
            use std::io::ErrorKind::{BrokenPipe, ConnectionReset, UnexpectedEof};
            if let Some(failure) = tls::failure(e) {
                self.record(failure, &e.to_string());
            } else if !self.heard && matches!(e.kind(), UnexpectedEof | BrokenPipe | ConnectionReset) {
                self.refused(&e.to_string());
            }
        }
        result
    }

    fn refused(&mut self, detail: &str) {
        self.record(tls::Failure::Refused, detail);
    }

    fn record(&mut self, failure: tls::Failure, detail: &str) {
        if !std::mem::replace(&mut self.recorded, true) {
            self.failures.record(failure, &self.url, detail, &self.counters);
        }
    }
}

#[cfg(feature = "grpc")]
impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Observed<T> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let written = std::pin::Pin::new(&mut this.io).poll_write(cx, buf);
        this.look(written)
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let flushed = std::pin::Pin::new(&mut this.io).poll_flush(cx);
        this.look(flushed)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let written = std::pin::Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.look(written)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
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

/// Reads an `ExportLogsServiceResponse` in OTLP/JSON:
/// `{"partialSuccess":{"rejectedLogRecords":"3","errorMessage":"..."}}`
/// (the count a string or a number, as protobuf's JSON parsers take it; an
/// empty body is an empty response).
#[cfg(feature = "http")]
fn accepted_json(body: &[u8]) -> Outcome {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Outcome::Accepted { rejected: 0, message: None, malformed: false };
    }
    let read = |value: &serde_json::Value| -> Option<(u64, Option<String>)> {
        let object = value.as_object()?;
        let Some(partial) = object.get("partialSuccess").or_else(|| object.get("partial_success")) else {
            return Some((0, None));
        };
        let partial = partial.as_object()?;
        let rejected = match partial.get("rejectedLogRecords").or_else(|| partial.get("rejected_log_records")) {
            None => 0,
            Some(serde_json::Value::String(text)) => text.parse::<i64>().ok()?.max(0).unsigned_abs(),
            Some(number) => number.as_i64()?.max(0).unsigned_abs(),
        };
        let message = match partial.get("errorMessage").or_else(|| partial.get("error_message")) {
            None => None,
            Some(text) => Some(text.as_str()?.to_owned()),
        };
        Some((rejected, message))
    };
    match serde_json::from_slice::<serde_json::Value>(body).ok().as_ref().and_then(read) {
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
    fn a_json_partial_success_is_read_and_garbage_is_flagged() {
        let ok = |rejected, message: Option<&str>| Outcome::Accepted {
            rejected,
            message: message.map(str::to_owned),
            malformed: false,
        };
        assert_eq!(
            accepted_json(br#"{"partialSuccess":{"rejectedLogRecords":"3","errorMessage":"bad"}}"#),
            ok(3, Some("bad"))
        );
        assert_eq!(accepted_json(br#"{"partialSuccess":{"rejectedLogRecords":2}}"#), ok(2, None));
        assert_eq!(accepted_json(b"{}"), ok(0, None));
        assert_eq!(accepted_json(b" \n"), ok(0, None));
        assert_eq!(accepted_json(br#"{"partialSuccess":{"rejectedLogRecords":"-1"}}"#), ok(0, None));
        let malformed = Outcome::Accepted { rejected: 0, message: None, malformed: true };
        assert_eq!(accepted_json(b"<html>oops</html>"), malformed);
        assert_eq!(accepted_json(br#"{"partialSuccess":{"rejectedLogRecords":"many"}}"#), malformed);
        assert_eq!(accepted_json(br#"[1]"#), malformed);
    }

    #[cfg(feature = "http")]
    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        assert_eq!(retry_after("soon"), None);
    }
}
