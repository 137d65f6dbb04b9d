//! [`SetupError`]: a configuration [`SelfTelemetry`](crate::SelfTelemetry)
//! cannot run.

use std::{fmt, sync::Arc};

/// A configuration [`SelfTelemetry`](crate::SelfTelemetry) cannot run: where and why.
///
/// Made from another error (a bad limit, an SDK bridge that cannot start),
/// it takes that error's place in a report: its [`message`](Self::message)
/// is that error's text, its [`source`](std::error::Error::source) that
/// error's source, so a chain of causes names each one once.
///
/// Two errors are equal when they name the same place and say the same; the
/// causes are not compared.
#[derive(Clone, Debug)]
pub struct SetupError {
    path: String,
    at: Option<(usize, usize)>,
    message: String,
    /// The error this one was made from: its source is this one's.
    from: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl PartialEq for SetupError {
    fn eq(&self, other: &Self) -> bool {
        (&self.path, self.at, &self.message) == (&other.path, other.at, &other.message)
    }
}

impl Eq for SetupError {}

impl SetupError {
    pub(super) fn new(path: impl Into<String>, at: Option<(usize, usize)>, message: impl Into<String>) -> Self {
        Self { path: path.into(), at, message: message.into(), from: None }
    }

    /// `error` at `path`: its text, its source.
    pub(crate) fn from_error(
        path: impl Into<String>,
        at: Option<(usize, usize)>,
        error: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self { path: path.into(), at, message: error.to_string(), from: Some(Arc::new(error)) }
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
        self.from.as_ref().and_then(|from| from.source())
    }
}
