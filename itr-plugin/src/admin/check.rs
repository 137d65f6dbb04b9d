//! What [`SelfTelemetryBuilder::build`](super::SelfTelemetryBuilder::build)
//! checks before it builds anything: the mode against the graph, the
//! transport crates against where logs go, the receivers' settings, the
//! zone and the `nodes:` overrides. Each failure names its key path.

use std::collections::BTreeSet;

use selftrace::{EncoderLimits, Node, NodeLogger};

use super::{LOGS, SetupError};
use crate::{
    config::{LogsConfig, Mode},
    receiver::{ConfigError, ReceiverConfig, ReceiverSettings},
    telemetry::RECEIVER_NAME,
    zone::Zone,
};

/// Internal collection is on exactly when the graph has a receiver.
pub(super) fn mode_matches_graph(
    logs: &LogsConfig,
    mode: Mode,
    receivers: &[(String, ReceiverSettings)],
) -> Result<(), SetupError> {
    let path = format!("{LOGS}.internal_collection.enabled");
    if mode.collects_internally() && receivers.is_empty() {
        return Err(SetupError::new(
            path,
            logs.internal_collection_location(),
            format!(
                "internal collection is enabled but no pipeline has an `{RECEIVER_NAME}` receiver: component logs would go nowhere"
            ),
        ));
    }
    if !mode.collects_internally()
        && let Some((id, _)) = receivers.first()
    {
        return Err(SetupError::new(
            path,
            logs.internal_collection_location(),
            format!(
                "receiver `{id}` is an `{RECEIVER_NAME}` receiver but internal collection is not enabled: set `enabled: true`, or remove the receiver"
            ),
        ));
    }
    Ok(())
}

/// Where logs leave over the network (`exports`), the transport crates'
/// events must not follow them.
pub(super) fn transport_is_not_exported(logs: &LogsConfig, exports: bool) -> Result<(), SetupError> {
    if exports && logs.transport().logger == NodeLogger::Default {
        return Err(SetupError::new(
            format!("{LOGS}.transport.logger"),
            logs.transport_location(),
            "the transport crates' events cannot go where logs are exported: every export would log more of them for the next one (a feedback loop); use `console` or `raw` to see them",
        ));
    }
    Ok(())
}

/// The encoder limits `internal_collection` gives.
pub(super) fn limits(logs: &LogsConfig) -> Result<EncoderLimits, SetupError> {
    let c = logs.internal_collection();
    EncoderLimits::new(c.buffer_size_bytes, c.max_record_bytes, c.max_value_bytes).map_err(|e| {
        SetupError::from_error(format!("{LOGS}.internal_collection"), logs.internal_collection_location(), e)
    })
}

/// Each receiver's settings over the defaults of `internal_collection`,
/// checked.
pub(super) fn receiver_configs(
    logs: &LogsConfig,
    receivers: &[(String, ReceiverSettings)],
) -> Result<Vec<(String, ReceiverConfig)>, SetupError> {
    let collection = logs.internal_collection();
    let defaults = ReceiverConfig {
        flush_interval: collection.flush_interval,
        channel_capacity: collection.max_record_count,
        ..ReceiverConfig::default()
    };
    let configs: Vec<(String, ReceiverConfig)> =
        receivers.iter().map(|(id, s)| (id.clone(), s.resolve(defaults.clone()))).collect();
    for (id, config) in &configs {
        config.validate().map_err(|e| invalid_receiver(id, &e))?;
    }
    Ok(configs)
}

/// The most verbose of the receivers' pipeline loggers: what the zone's
/// threads print.
pub(super) fn zone_logger(configs: &[(String, ReceiverConfig)]) -> NodeLogger {
    configs
        .iter()
        .map(|(_, c)| c.logger.node_logger())
        .max_by_key(|l| match l {
            NodeLogger::Console => 2,
            NodeLogger::Raw => 1,
            _ => 0,
        })
        .unwrap_or(NodeLogger::Noop)
}

/// The zone (the receivers and every node downstream of them), with every
/// `nodes:` override checked against it and against the graph.
pub(super) fn zone(
    logs: &LogsConfig,
    configs: &[(String, ReceiverConfig)],
    edges: &[(String, String)],
    nodes: &BTreeSet<String>,
) -> Result<Zone, SetupError> {
    let mut zone = Zone::builder();
    for (id, config) in configs {
        zone = zone.receiver(id.clone(), config.logger);
    }
    for (from, to) in edges {
        if let Some(ghost) = [from, to].into_iter().find(|id| !nodes.contains(*id)) {
            let known: Vec<&str> = nodes.iter().map(String::as_str).collect();
            return Err(SetupError::new(
                "pipelines",
                None,
                format!("edge `{from}` → `{to}`: no node `{ghost}` (nodes: {})", known.join(", ")),
            ));
        }
        zone = zone.edge(from.clone(), to.clone());
    }
    let zone = zone.build().map_err(|e| SetupError::from_error("pipelines", None, e))?;
    for (id, _) in logs.nodes() {
        if !nodes.contains(id) {
            let known: Vec<&str> = nodes.iter().map(String::as_str).collect();
            return Err(SetupError::new(
                format!("{LOGS}.nodes.{id}"),
                logs.node_location(id),
                format!("no node `{id}` in the pipelines (nodes: {})", known.join(", ")),
            ));
        }
        if zone.contains(id) {
            zone_node(&zone, logs, id)?;
        }
    }
    Ok(zone)
}

/// Node `id` of the zone with its `nodes:` logger, or the error naming
/// where that logger is written (`default` would feed the receivers with
/// their own pipeline's logs).
pub(super) fn zone_node(zone: &Zone, logs: &LogsConfig, id: &str) -> Result<Node, SetupError> {
    let logger = logs.node(id).and_then(|o| o.logger);
    zone.node(id, logger)
        .map_err(|e| SetupError::from_error(format!("{LOGS}.nodes.{id}.logger"), logs.node_location(id), e))
}

/// A receiver's settings out of range, named by the receiver.
pub(super) fn invalid_receiver(id: &str, error: &ConfigError) -> SetupError {
    SetupError::from_error(format!("pipelines.{id}.{}", error.key()), None, error.clone())
}
