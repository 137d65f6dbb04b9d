//! [`SetupError`]: a configuration [`SelfTelemetry`](crate::SelfTelemetry)
//! cannot run.

use std::fmt;

/// A configuration [`SelfTelemetry`](crate::SelfTelemetry) cannot run: where and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetupError {
    path: String,
    at: Option<(usize, usize)>,
    message: String,
    cause: Option<Cause>,
}

/// The error another one wraps, for [`source`](std::error::Error::source).
/// Not compared: two errors are equal when what they say is.
#[derive(Clone)]
struct Cause(std::sync::Arc<dyn std::error::Error + Send + Sync>);

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl PartialEq for Cause {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Cause {}

impl SetupError {
    pub(super) fn new(path: impl Into<String>, at: Option<(usize, usize)>, message: impl Into<String>) -> Self {
        Self { path: path.into(), at, message: message.into(), cause: None }
    }

    /// This error, caused by `cause`.
    pub(super) fn caused_by(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.cause = Some(Cause(std::sync::Arc::new(cause)));
        self
    }

    /// The key path at fault, e.g. `service.telemetry.logs.nodes.x.logger`,
    /// or `pipelines` for the graph.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Line and column (from 1), when the key is written in the source.
    pub fn location(&self) -> Option<(usize, usize)> {
        self.at
    }

    /// What is wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            Some((line, column)) => write!(f, "`{}` (line {line}, column {column}): {}", self.path, self.message),
            None => write!(f, "`{}`: {}", self.path, self.message),
        }
    }
}

impl std::error::Error for SetupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause.as_ref().map(|c| &*c.0 as &(dyn std::error::Error + 'static))
    }
}
