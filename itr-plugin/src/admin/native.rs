//! `batch` processors with an `otlp` exporter: selftrace's own exporter.

use selftrace_bridge::{
    OtlpExporter, OtlpExporterBuilder,
    export::{Compression, ExportError, Protocol, TlsConfig, TlsVersion},
};

use super::{LOGS, SetupError};
use crate::config::{LogsConfig, OtlpCompression, OtlpProtocol, OtlpTlsConfig, SdkExporter, TlsMinVersion};

/// The exporter of `processors[i]`, from `builder` (the resource and
/// limits set).
pub(super) fn exporter(
    logs: &LogsConfig,
    i: usize,
    exporter: &SdkExporter,
    mut builder: OtlpExporterBuilder,
) -> Result<OtlpExporter, SetupError> {
    let path = format!("{LOGS}.processors[{i}].batch.exporter.otlp");
    let SdkExporter::Otlp(otlp) = exporter else {
        return Err(SetupError::new(path, logs.processors_location(), "not an otlp exporter"));
    };
    if let Some(protocol) = otlp.protocol {
        let (protocol, feature, built) = match protocol {
            OtlpProtocol::HttpProtobuf => (Protocol::HttpProtobuf, "otlp-http", cfg!(feature = "otlp-http")),
            OtlpProtocol::HttpJson => (Protocol::HttpJson, "otlp-http", cfg!(feature = "otlp-http")),
            OtlpProtocol::Grpc => (Protocol::Grpc, "otlp-grpc", cfg!(feature = "otlp-grpc")),
        };
        if !built {
            return Err(SetupError::new(
                format!("{path}.protocol"),
                logs.processors_location(),
                format!("this protocol needs the `{feature}` feature of selftrace-itr"),
            ));
        }
        builder = builder.with_protocol(protocol);
    }
    if let Some(endpoint) = &otlp.endpoint {
        builder = builder.with_endpoint(match otlp.protocol {
            Some(OtlpProtocol::Grpc) => endpoint.clone(),
            _ => super::sdk::with_logs_path(endpoint),
        });
    }
    for (name, value) in otlp.headers.iter().flatten() {
        builder = builder.with_header(name.clone(), value.clone());
    }
    if let Some(compression) = otlp.compression {
        builder = builder.with_compression(match compression {
            OtlpCompression::Gzip => Compression::Gzip,
            OtlpCompression::None => Compression::None,
        });
    }
    if let Some(timeout) = otlp.timeout {
        builder = builder.with_timeout(timeout);
    }
    if let Some(bytes) = otlp.max_queue_bytes {
        builder = builder.with_max_queue_bytes(bytes as u64);
    }
    if let Some(tls) = &otlp.tls {
        builder = builder.with_tls(tls_config(tls));
    }
    if let Some(spool) = &otlp.spool {
        builder = builder.with_spool(&spool.dir);
        if let Some(bytes) = spool.max_bytes {
            builder = builder.with_spool_max_bytes(bytes);
        }
        if let Some(sync) = spool.sync {
            builder = builder.with_spool_sync(sync);
        }
    }
    builder.build().map_err(|e| match e {
        // A builder setting is a key under this exporter; an
        // environment variable is named as it is.
        ExportError::Config(c) if c.key.starts_with("OTEL_") => {
            SetupError::new(c.key.clone(), None, format!("{} (read for {path})", c.message))
        }
        // At the key's own line and column where it is written.
        ExportError::Config(c) => {
            // `tls.ca_file`: at `tls:` when the key itself is not placed.
            let at = otlp
                .location_of(&c.key)
                .or_else(|| c.key.split('.').next().and_then(|head| otlp.location_of(head)))
                .or(logs.processors_location());
            SetupError::new(format!("{path}.{}", c.key), at, c.message)
        }
        // The spool's error names its directory and says what to change;
        // its cause (the system's error) is the source.
        ExportError::Spool(e) => SetupError::from_error(
            format!("{path}.spool.dir"),
            otlp.location_of("spool").or(logs.processors_location()),
            e,
        ),
        other => SetupError::from_error(path, logs.processors_location(), other),
    })
}

/// The exporter's TLS settings of `tls:`.
fn tls_config(tls: &OtlpTlsConfig) -> TlsConfig {
    let mut config = TlsConfig::new().with_insecure_skip_verify(tls.insecure_skip_verify);
    if let Some(path) = &tls.ca_file {
        config = config.with_ca_file(path);
    }
    if let Some(path) = &tls.cert_file {
        config = config.with_cert_file(path);
    }
    if let Some(path) = &tls.key_file {
        config = config.with_key_file(path);
    }
    if let Some(insecure) = tls.insecure {
        config = config.with_insecure(insecure);
    }
    if let Some(name) = &tls.server_name {
        config = config.with_server_name(name);
    }
    if let Some(version) = tls.min_version {
        config = config.with_min_version(match version {
            TlsMinVersion::Tls12 => TlsVersion::Tls12,
            TlsMinVersion::Tls13 => TlsVersion::Tls13,
        });
    }
    if let Some(interval) = tls.reload_interval {
        config = config.with_reload_interval(interval);
    }
    config
}
