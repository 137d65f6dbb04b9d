//! The processors that go through the OpenTelemetry SDK: a provider built
//! from `processors`.

use opentelemetry_sdk::{
    Resource,
    logs::{LogExporter, LoggerProviderBuilder, SdkLoggerProvider},
};

use super::{LOGS, SetupError};
use crate::config::{LogsConfig, OtlpProtocol, SdkExporter, SdkProcessor};

/// A provider with one processor per entry of `processors` (those that
/// go through the SDK).
pub(super) fn provider(
    logs: &LogsConfig,
    processors: &[(usize, &SdkProcessor)],
    resource: Resource,
) -> Result<SdkLoggerProvider, SetupError> {
    let mut builder = SdkLoggerProvider::builder().with_resource(resource);
    for &(i, processor) in processors {
        let batch = matches!(processor, SdkProcessor::Batch(_));
        let path = format!("{LOGS}.processors[{i}].{}", if batch { "batch" } else { "simple" });
        builder = match processor.exporter() {
            SdkExporter::Console(_) => add(builder, batch, opentelemetry_stdout::LogExporter::default()),
            SdkExporter::Otlp(otlp) if otlp.spool.is_some() || otlp.max_queue_bytes.is_some() || otlp.tls.is_some() => {
                let key = if otlp.spool.is_some() {
                    "spool"
                } else if otlp.tls.is_some() {
                    "tls"
                } else {
                    "max_queue_bytes"
                };
                return Err(SetupError::new(
                    format!("{path}.exporter.otlp.{key}"),
                    logs.processors_location(),
                    format!(
                        "`{key}` is for selftrace's own exporter: use a `batch` processor (a `simple` one goes through the SDK)"
                    ),
                ));
            }
            SdkExporter::Otlp(otlp) => match otlp.protocol.unwrap_or_default() {
                OtlpProtocol::HttpJson => {
                    return Err(SetupError::new(
                        format!("{path}.exporter.otlp.protocol"),
                        logs.processors_location(),
                        "`http/json` is written by selftrace's own exporter: use a `batch` processor (a `simple` one goes through the SDK)",
                    ));
                }
                OtlpProtocol::HttpProtobuf => {
                    #[cfg(feature = "otlp-http")]
                    {
                        let endpoint = with_logs_path(otlp.endpoint.as_deref().unwrap_or("http://localhost:4318"));
                        let exporter = selftrace_bridge::otlp_http_exporter(&endpoint)
                            .map_err(|e| bad_endpoint(&path, logs, e))?;
                        add(builder, batch, exporter)
                    }
                    #[cfg(not(feature = "otlp-http"))]
                    return Err(missing(&path, logs, "http/protobuf", "otlp-http"));
                }
                OtlpProtocol::Grpc => {
                    #[cfg(feature = "otlp-grpc")]
                    {
                        let endpoint = otlp.endpoint.as_deref().unwrap_or("http://localhost:4317");
                        let exporter =
                            selftrace_bridge::otlp_grpc_exporter(endpoint).map_err(|e| bad_endpoint(&path, logs, e))?;
                        add(builder, batch, exporter)
                    }
                    #[cfg(not(feature = "otlp-grpc"))]
                    return Err(missing(&path, logs, "grpc", "otlp-grpc"));
                }
            },
        };
    }
    Ok(builder.build())
}

#[allow(dead_code, reason = "used when a transport feature is on")]
fn bad_endpoint(path: &str, logs: &LogsConfig, error: impl std::fmt::Display) -> SetupError {
    SetupError::new(format!("{path}.exporter.otlp.endpoint"), logs.processors_location(), error.to_string())
}

#[allow(dead_code, reason = "used when a transport feature is off")]
fn missing(path: &str, logs: &LogsConfig, protocol: &str, feature: &str) -> SetupError {
    SetupError::new(
        format!("{path}.exporter.otlp.protocol"),
        logs.processors_location(),
        format!("protocol `{protocol}` needs the `{feature}` feature of selftrace-itr"),
    )
}

fn add<E: LogExporter + 'static>(builder: LoggerProviderBuilder, batch: bool, exporter: E) -> LoggerProviderBuilder {
    if batch { builder.with_batch_exporter(exporter) } else { builder.with_simple_exporter(exporter) }
}

/// `http://host:4318` → `http://host:4318/v1/logs`; a URL with a path
/// is kept.
#[allow(dead_code, reason = "used with the otlp-http feature")]
pub(super) fn with_logs_path(endpoint: &str) -> String {
    // Without a scheme it is not a URL: kept, for the error to show it.
    let Some((_, after_scheme)) = endpoint.split_once("://") else { return endpoint.to_owned() };
    match after_scheme.find('/') {
        None => format!("{endpoint}/v1/logs"),
        Some(i) if after_scheme[i..] == *"/" => format!("{endpoint}v1/logs"),
        Some(_) => endpoint.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn endpoints_get_the_logs_path_when_they_have_none() {
        assert_eq!(super::with_logs_path("http://h:4318"), "http://h:4318/v1/logs");
        assert_eq!(super::with_logs_path("http://h:4318/"), "http://h:4318/v1/logs");
        assert_eq!(super::with_logs_path("http://h:4318/custom/logs"), "http://h:4318/custom/logs");
        assert_eq!(super::with_logs_path("h:4318"), "h:4318");
    }
}
