//! Logger providers wired to the usual exporters, for the common cases.
//!
//! Anything else (several exporters, custom processors, other exporters) is
//! an [`SdkLoggerProvider`] built by hand and passed to
//! [`SdkBridge::builder`](crate::SdkBridge::builder).

use opentelemetry_sdk::{Resource, logs::SdkLoggerProvider};

/// A provider that prints every record to stdout as it arrives, through
/// `opentelemetry-stdout` and a simple processor.
///
/// # Examples
///
/// ```
/// use opentelemetry_sdk::Resource;
///
/// let provider = selftrace_bridge::stdout_provider(Resource::builder().with_service_name("my-engine").build());
/// let bridge = selftrace_bridge::SdkBridge::builder(provider).spawn()?;
/// bridge.shutdown()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn stdout_provider(resource: Resource) -> SdkLoggerProvider {
    SdkLoggerProvider::builder()
        .with_resource(resource)
        .with_simple_exporter(opentelemetry_stdout::LogExporter::default())
        .build()
}

/// A provider that batches records and exports them over OTLP/HTTP
/// (protobuf) to `endpoint`, e.g. `http://localhost:4318/v1/logs`.
///
/// The HTTP client is blocking reqwest, running on the batch processor's
/// own thread: no async runtime is needed.
///
/// # Errors
///
/// The exporter could not be built (an invalid endpoint, say).
///
/// # Examples
///
/// ```
/// use opentelemetry_sdk::Resource;
///
/// let resource = Resource::builder().with_service_name("my-engine").build();
/// let provider = selftrace_bridge::otlp_http_provider("http://localhost:4318/v1/logs", resource)?;
/// let bridge = selftrace_bridge::SdkBridge::builder(provider).spawn()?;
/// // ... `bridge.layer()` in the subscriber ...
/// bridge.shutdown()?; // exports what is left
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg(feature = "sdk-otlp-http")]
pub fn otlp_http_provider(
    endpoint: &str,
    resource: Resource,
) -> Result<SdkLoggerProvider, opentelemetry_otlp::ExporterBuildError> {
    let exporter = otlp_http_exporter(endpoint)?;
    Ok(SdkLoggerProvider::builder().with_resource(resource).with_batch_exporter(exporter).build())
}

/// The OTLP/HTTP (protobuf) log exporter of [`otlp_http_provider`], for a
/// provider built by hand. `endpoint` is used as given (the full URL,
/// `/v1/logs` included).
///
/// # Errors
///
/// The exporter could not be built (an invalid endpoint, say).
///
/// # Examples
///
/// ```
/// use opentelemetry_sdk::logs::{BatchLogProcessor, SdkLoggerProvider};
///
/// let exporter = selftrace_bridge::otlp_http_exporter("http://localhost:4318/v1/logs")?;
/// let provider = SdkLoggerProvider::builder()
///     .with_log_processor(BatchLogProcessor::builder(exporter).build())
///     .build();
/// let bridge = selftrace_bridge::SdkBridge::builder(provider).spawn()?;
/// bridge.shutdown()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg(feature = "sdk-otlp-http")]
pub fn otlp_http_exporter(
    endpoint: &str,
) -> Result<opentelemetry_otlp::LogExporter, opentelemetry_otlp::ExporterBuildError> {
    use opentelemetry_otlp::{Protocol, WithExportConfig as _};
    opentelemetry_otlp::LogExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(endpoint)
        .build()
}

/// A provider that batches records and exports them over OTLP/gRPC to
/// `endpoint`, e.g. `http://localhost:4317`.
///
/// tonic needs a Tokio runtime: build the provider inside one, and keep the
/// runtime alive until the bridge has shut down.
///
/// # Errors
///
/// The exporter could not be built (an invalid endpoint, say).
///
/// # Examples
///
/// ```
/// use opentelemetry_sdk::Resource;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let runtime = tokio::runtime::Runtime::new()?;
/// let resource = Resource::builder().with_service_name("my-engine").build();
/// let provider = runtime.block_on(async { selftrace_bridge::otlp_grpc_provider("http://localhost:4317", resource) })?;
/// let bridge = selftrace_bridge::SdkBridge::builder(provider).spawn()?;
/// bridge.shutdown()?; // before the runtime goes
/// drop(runtime);
/// # Ok(())
/// # }
/// ```
#[cfg(feature = "sdk-otlp-grpc")]
pub fn otlp_grpc_provider(
    endpoint: &str,
    resource: Resource,
) -> Result<SdkLoggerProvider, opentelemetry_otlp::ExporterBuildError> {
    let exporter = otlp_grpc_exporter(endpoint)?;
    Ok(SdkLoggerProvider::builder().with_resource(resource).with_batch_exporter(exporter).build())
}

/// The OTLP/gRPC log exporter of [`otlp_grpc_provider`], for a provider
/// built by hand (inside a Tokio runtime).
///
/// # Errors
///
/// The exporter could not be built (an invalid endpoint, say).
///
/// # Examples
///
/// ```
/// use opentelemetry_sdk::logs::SdkLoggerProvider;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let runtime = tokio::runtime::Runtime::new()?;
/// let exporter = runtime.block_on(async { selftrace_bridge::otlp_grpc_exporter("http://localhost:4317") })?;
/// let provider = SdkLoggerProvider::builder().with_batch_exporter(exporter).build();
/// let bridge = selftrace_bridge::SdkBridge::builder(provider).spawn()?;
/// bridge.shutdown()?;
/// # Ok(())
/// # }
/// ```
#[cfg(feature = "sdk-otlp-grpc")]
pub fn otlp_grpc_exporter(
    endpoint: &str,
) -> Result<opentelemetry_otlp::LogExporter, opentelemetry_otlp::ExporterBuildError> {
    use opentelemetry_otlp::WithExportConfig as _;
    opentelemetry_otlp::LogExporter::builder().with_tonic().with_endpoint(endpoint).build()
}
