//! The anti-recursion zone: the receivers and every node downstream of them.
//!
//! A node in the zone carries the engine's own logs; if it logged into the
//! pipeline, its logs would come back to it, and it would log about them.
//! So the zone's nodes never log through the node logs: they get their
//! receiver's [`PipelineLogger`] (Noop by default; Console or Raw for
//! debugging), at ERROR only, and the third-party events of the transport
//! crates ([`TRANSPORT_TARGETS`]) raised in their scope are discarded.

use std::{
    collections::{HashMap, VecDeque},
    fmt,
};

use selftrace::{Node, NodeLogger};
use tracing_core::LevelFilter;

use crate::receiver::PipelineLogger;

use selftrace::TRANSPORT_TARGETS;

/// The zone of a pipeline graph: the receivers and every node downstream of them.
///
/// # Examples
///
/// ```
/// use selftrace::NodeLogger;
/// use selftrace_itr::{PipelineLogger, Zone};
///
/// // receiver.otlp -> exporter.otlp (the main pipeline)
/// // itr -> batch -> exporter.debug (the internal telemetry pipeline)
/// let zone = Zone::builder()
///     .receiver("itr", PipelineLogger::Noop)
///     .edge("receiver.otlp", "exporter.otlp")
///     .edge("itr", "batch")
///     .edge("batch", "exporter.debug")
///     .build()
///     .unwrap();
///
/// assert!(zone.contains("exporter.debug"));
/// assert_eq!(zone.node("exporter.otlp", None).unwrap().logger(), NodeLogger::Default);
/// assert_eq!(zone.node("batch", None).unwrap().logger(), NodeLogger::Noop);
/// assert_eq!(zone.node("batch", Some(NodeLogger::Console)).unwrap().logger(), NodeLogger::Console);
///
/// let error = zone.node("exporter.debug", Some(NodeLogger::Default)).unwrap_err();
/// assert!(error.to_string().contains("`exporter.debug`"));
/// ```
#[derive(Clone, Debug)]
pub struct Zone {
    /// Each zone node and the receiver whose pipeline it is in.
    members: HashMap<String, (String, PipelineLogger)>,
    transport_targets: Vec<String>,
}

/// Builds a [`Zone`] while the host builds its graph (an example is at
/// [`Zone`]).
#[derive(Clone, Debug)]
pub struct ZoneBuilder {
    receivers: Vec<(String, PipelineLogger)>,
    edges: Vec<(String, String)>,
    transport_targets: Vec<String>,
}

impl Zone {
    /// A builder with no nodes, filtering [`TRANSPORT_TARGETS`].
    pub fn builder() -> ZoneBuilder {
        ZoneBuilder {
            receivers: Vec::new(),
            edges: Vec::new(),
            transport_targets: TRANSPORT_TARGETS.iter().map(|t| (*t).to_owned()).collect(),
        }
    }

    /// Whether node `id` is in the zone.
    pub fn contains(&self, id: &str) -> bool {
        self.members.contains_key(id)
    }

    /// The receiver whose pipeline node `id` is in, if any.
    pub fn receiver_of(&self, id: &str) -> Option<&str> {
        self.members.get(id).map(|(receiver, _)| receiver.as_str())
    }

    /// The [`Node`] for `id`, with the logger its configuration asks for
    /// (`None`: not set).
    ///
    /// Outside the zone: the logger asked for, `Default` if none. Inside it:
    /// the receiver's pipeline logger if none was asked for, `Noop`, `Console`
    /// or `Raw` if asked, at ERROR only, with the transport targets denied.
    ///
    /// # Errors
    ///
    /// [`ZoneError::LogsIntoReceiver`] when a zone node asks for the
    /// `Default` logger, which would send its logs into the receiver.
    pub fn node(&self, id: &str, logger: Option<NodeLogger>) -> Result<Node, ZoneError> {
        let Some((receiver, pipeline)) = self.members.get(id) else {
            return Ok(Node::new(id).with_logger(logger.unwrap_or_default()));
        };
        let logger = match logger {
            None => pipeline.node_logger(),
            Some(NodeLogger::Default) => {
                return Err(ZoneError::LogsIntoReceiver { node: id.to_owned(), receiver: receiver.clone() });
            }
            Some(logger) => logger,
        };
        Ok(Node::new(id)
            .with_logger(logger)
            .with_max_level(LevelFilter::ERROR)
            .with_denied_targets(self.transport_targets.iter().cloned())
            .in_zone())
    }
}

impl ZoneBuilder {
    /// Marks node `id` as an internal telemetry receiver whose pipeline
    /// logs with `logger`.
    pub fn receiver(mut self, id: impl Into<String>, logger: PipelineLogger) -> Self {
        self.receivers.push((id.into(), logger));
        self
    }

    /// Data flows from node `from` to node `to`.
    pub fn edge(mut self, from: impl Into<String>, to: impl Into<String>) -> Self {
        self.edges.push((from.into(), to.into()));
        self
    }

    /// Replaces the targets denied inside the zone (default
    /// [`TRANSPORT_TARGETS`]; empty: none).
    pub fn with_transport_targets<I: IntoIterator<Item = S>, S: Into<String>>(mut self, targets: I) -> Self {
        self.transport_targets = targets.into_iter().map(Into::into).collect();
        self
    }

    /// Finds every node downstream of a receiver. A node downstream of
    /// several takes the pipeline logger of the first one marked.
    ///
    /// # Errors
    ///
    /// [`ZoneError::ReceiverHasInput`] when an edge leads into a receiver:
    /// it has no inputs, and such an edge could bring its own output back.
    pub fn build(self) -> Result<Zone, ZoneError> {
        let mut next: HashMap<&str, Vec<&str>> = HashMap::new();
        for (from, to) in &self.edges {
            if self.receivers.iter().any(|(receiver, _)| receiver == to) {
                return Err(ZoneError::ReceiverHasInput { receiver: to.clone(), from: from.clone() });
            }
            next.entry(from).or_default().push(to);
        }
        let mut members = HashMap::new();
        for (receiver, logger) in &self.receivers {
            let mut queue = VecDeque::from([receiver.as_str()]);
            while let Some(id) = queue.pop_front() {
                if members.contains_key(id) {
                    continue;
                }
                members.insert(id.to_owned(), (receiver.clone(), *logger));
                queue.extend(next.get(id).into_iter().flatten());
            }
        }
        Ok(Zone { members, transport_targets: self.transport_targets })
    }
}

/// A graph or a node configuration that would let the zone log into itself.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ZoneError {
    /// A zone node asks for the `Default` logger.
    LogsIntoReceiver {
        /// The node.
        node: String,
        /// The receiver upstream of it.
        receiver: String,
    },
    /// An edge leads into a receiver.
    ReceiverHasInput {
        /// The receiver.
        receiver: String,
        /// The node the edge comes from.
        from: String,
    },
}

impl fmt::Display for ZoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ZoneError::LogsIntoReceiver { node, receiver } => write!(
                f,
                "node `{node}` is downstream of internal telemetry receiver `{receiver}`, so it cannot use the \
                 default logger: its logs would feed the receiver it is fed by (use noop, console or raw)"
            ),
            ZoneError::ReceiverHasInput { receiver, from } => write!(
                f,
                "internal telemetry receiver `{receiver}` has no inputs, but node `{from}` is connected to it"
            ),
        }
    }
}

impl std::error::Error for ZoneError {}
