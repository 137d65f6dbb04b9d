//! The exporting side of the SDK modes: selftrace's own exporter for each
//! `batch` processor with an `otlp` exporter (the bytes as they are), the
//! SDK bridge for the others (or for the engine's own provider), and the one
//! destination they make together.

use selftrace::{Destination, NodeLogs};

use super::{LOGS, SetupError};
#[cfg(feature = "sdk")]
use super::{Resource, fanout};
use crate::config::LogsConfig;

/// `processors` entries with their index.
#[cfg(feature = "sdk")]
type Processors<'a> = Vec<(usize, &'a crate::config::SdkProcessor)>;

/// What the SDK modes export through.
pub(super) struct Exporting {
    /// The native exporters, in `processors` order.
    #[cfg(any(feature = "otlp-http", feature = "otlp-grpc"))]
    pub(super) exporters: Vec<selftrace_bridge::OtlpExporter>,
    /// The SDK bridge, when a processor goes through the SDK.
    #[cfg(feature = "sdk")]
    pub(super) bridge: Option<selftrace_bridge::SdkBridge>,
    /// Where the processors take requests: one exporter or the bridge as it
    /// is, several through a fan-out; none without processors.
    pub(super) destination: Option<Destination>,
    /// One native exporter and nothing else: its per-thread buffers, which
    /// the layer and the node logs log into and it flushes.
    pub(super) buffers: Option<NodeLogs>,
}

impl Exporting {
    /// The processors of `logs` (with `provider`, the engine's own: every
    /// processor goes through it), built.
    #[cfg(feature = "sdk")]
    pub(super) fn build(
        logs: &LogsConfig,
        resource: &Resource,
        encoding: &selftrace::encoder::EncoderSettings,
        provider: Option<opentelemetry_sdk::logs::SdkLoggerProvider>,
    ) -> Result<Self, SetupError> {
        let own_provider = provider.is_some();
        // `console: { format: otlp_json }`: lines written from the bytes.
        let (json, processors): (Processors<'_>, Processors<'_>) =
            logs.processors().iter().enumerate().partition(|(_, p)| !own_provider && p.otlp_json_console().is_some());
        let (native, through_sdk): (Processors<'_>, Processors<'_>) =
            processors.into_iter().partition(|(_, p)| !own_provider && p.is_native_export());
        #[cfg(any(feature = "otlp-http", feature = "otlp-grpc"))]
        let exporters = native
            .iter()
            .map(|(i, p)| {
                let builder = selftrace_bridge::OtlpExporter::builder().with_encoder_settings(encoding.clone());
                super::native::exporter(logs, *i, p.exporter(), builder)
            })
            .collect::<Result<Vec<_>, _>>()?;
        #[cfg(not(any(feature = "otlp-http", feature = "otlp-grpc")))]
        if let Some((i, _)) = native.first() {
            let _ = encoding;
            return Err(SetupError::new(
                format!("{LOGS}.processors[{i}].batch.exporter.otlp"),
                logs.processors_location(),
                "the `otlp` exporter needs the `otlp-http` or `otlp-grpc` feature of selftrace-itr",
            ));
        }
        let bridge = if through_sdk.is_empty() && !own_provider {
            None
        } else {
            let provider = match provider {
                Some(provider) => provider,
                None => super::sdk::provider(logs, &through_sdk, resource.sdk_resource())?,
            };
            let bridge = selftrace_bridge::SdkBridge::builder(provider)
                .spawn()
                .map_err(|e| SetupError::from_error(format!("{LOGS}.processors"), logs.processors_location(), e))?;
            Some(bridge)
        };
        let mut exporting: Vec<Destination> = Vec::new();
        #[cfg(any(feature = "otlp-http", feature = "otlp-grpc"))]
        exporting.extend(exporters.iter().map(|e| e.destination()));
        exporting.extend(bridge.as_ref().map(|b| b.destination()));
        exporting.extend(json.iter().filter_map(|(_, p)| p.otlp_json_console()).map(Destination::OtlpJson));
        #[cfg(any(feature = "otlp-http", feature = "otlp-grpc"))]
        let buffers = match &exporters[..] {
            [exporter] if bridge.is_none() && json.is_empty() => Some(exporter.node_logs()),
            _ => None,
        };
        #[cfg(not(any(feature = "otlp-http", feature = "otlp-grpc")))]
        let buffers = None;
        Ok(Self {
            #[cfg(any(feature = "otlp-http", feature = "otlp-grpc"))]
            exporters,
            bridge,
            destination: fanout::destination(exporting),
            buffers,
        })
    }

    /// Without the `sdk` feature there is nothing to export through: a
    /// configuration with processors is an error.
    #[cfg(not(feature = "sdk"))]
    pub(super) fn build(logs: &LogsConfig) -> Result<Self, SetupError> {
        if let Some(i) = logs.processors().iter().position(|p| p.is_native_export()) {
            return Err(SetupError::new(
                format!("{LOGS}.processors[{i}].batch.exporter.otlp"),
                logs.processors_location(),
                "the `otlp` exporter needs the `otlp-http` or `otlp-grpc` feature of selftrace-itr",
            ));
        }
        if !logs.processors().is_empty() {
            return Err(SetupError::new(
                format!("{LOGS}.processors"),
                logs.processors_location(),
                "SDK processors need the `sdk` feature of selftrace-itr (or `processors: []`)",
            ));
        }
        Ok(Self { destination: None, buffers: None })
    }
}
