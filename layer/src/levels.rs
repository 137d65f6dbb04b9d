//! Levels that change at runtime: a per-layer filter whose level or
//! `EnvFilter` directives a [`LevelHandle`] changes while the process runs.
//!
//! ```
//! use selftrace::{Destination, OtlpBytesChannel, OtlpTracingLayer, levels::DynamicFilter};
//! use tracing::level_filters::LevelFilter;
//! use tracing_subscriber::{Layer, layer::SubscriberExt};
//!
//! let channel = OtlpBytesChannel::new(16);
//! let (filter, levels) = DynamicFilter::new(LevelFilter::INFO);
//! let layer = OtlpTracingLayer::new(Destination::Channel(channel.sender())).with_filter(filter);
//! tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
//!     tracing::debug!("not collected");
//!     levels.set_level(LevelFilter::DEBUG).unwrap();
//!     tracing::debug!("collected");
//!     levels.set_directives("warn,db=trace").unwrap();
//!     tracing::info!("not collected");
//!     tracing::trace!(target: "db", "collected");
//!     assert!(levels.set_directives("warn,db=[").is_err()); // the old directives stay
//! });
//! assert_eq!(channel.receiver().len(), 2);
//! ```
//!
//! How it avoids the pitfalls of `tracing_subscriber::reload` around
//! per-layer filters: the filter stays the one registered with the
//! subscriber (so its per-layer filter id never changes, tracing #1629), and
//! only what it holds is swapped; after each change it rebuilds tracing's
//! callsite interest (`tracing_core::callsite::rebuild_interest_cache`),
//! which also recomputes the global maximum level from every subscriber's
//! hint, so a hint never stays stale (tracing #2413). A lowered level (more
//! verbose) takes effect at once; a raised one makes the callsites above it
//! `never` again, so they cost nothing.
//!
//! An event racing a change obeys the old or the new level, never both:
//! each decision reads the state once. Span-based directives (`[span]`,
//! `[{field=value}]`) apply to spans created after the change.
//!
//! Change levels where the subscriber is the default: under the global
//! default (`init()`), anywhere; under a scoped one (`with_default`), inside
//! its scope. While a process has a single dispatcher, tracing-core rebuilds
//! callsite interest against the calling thread's default, so a change made
//! outside a scoped subscriber's scope would leave its callsites' interest
//! computed for no subscriber.
//!
//! Changes are made one at a time, each with its rebuild (tracing-core lets
//! two rebuilds run at once, and an older one could finish last). Do not
//! change levels from inside a `Layer` or a `Debug` implementation:
//! rebuilding the interest cache takes tracing's registry locks.

use std::{
    fmt,
    sync::{
        Arc, Mutex, MutexGuard, Weak,
        atomic::{AtomicU8, Ordering},
    },
};

use arc_swap::ArcSwapOption;
use tracing_core::{Interest, LevelFilter, Metadata, Subscriber, span};
use tracing_subscriber::{
    EnvFilter,
    layer::{Context, Filter},
};

/// A per-layer filter whose level or directives change at runtime through
/// its [`LevelHandle`]; see [the module docs](self).
///
/// # Examples
///
/// ```
/// use selftrace::{Destination, OtlpTracingLayer, levels::DynamicFilter};
/// use tracing_core::LevelFilter;
/// use tracing_subscriber::{Layer as _, layer::SubscriberExt};
///
/// let (filter, handle) = DynamicFilter::new(LevelFilter::INFO);
/// let layer = OtlpTracingLayer::new(Destination::Console).with_filter(filter);
/// let _subscriber = tracing_subscriber::registry().with(layer);
///
/// handle.set_level(LevelFilter::DEBUG)?; // from an admin endpoint, a signal...
/// handle.set_directives("info,my_engine::router=trace")?;
/// # Ok::<(), selftrace::levels::LevelError>(())
/// ```
#[derive(Clone)]
pub struct DynamicFilter {
    inner: Arc<Inner>,
}

struct Inner {
    /// The level, as [`level_to_u8`] codes it, when there are no directives.
    level: AtomicU8,
    /// `EnvFilter` directives, when set (they win over `level`).
    directives: ArcSwapOption<(EnvFilter, String)>,
}

impl fmt::Debug for DynamicFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamicFilter").field("current", &self.inner.describe()).finish()
    }
}

/// Changes a [`DynamicFilter`] at runtime. Holds it weakly, like
/// `tracing_subscriber::reload::Handle`: once every copy of the filter is
/// gone, changes fail with [`LevelError::Gone`].
#[derive(Clone)]
pub struct LevelHandle {
    inner: Weak<Inner>,
}

impl fmt::Debug for LevelHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let current = self.inner.upgrade().map(|inner| inner.describe());
        f.debug_struct("LevelHandle").field("current", &current).finish()
    }
}

/// Why a level change did not happen (the old level stays).
#[derive(Debug)]
#[non_exhaustive]
pub enum LevelError {
    /// The directives do not parse.
    Directives {
        /// The directives as given.
        directives: String,
        /// What `EnvFilter` said.
        reason: String,
    },
    /// The filter behind the handle was dropped.
    Gone,
}

impl fmt::Display for LevelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LevelError::Directives { directives, reason } => {
                write!(f, "invalid level directives `{directives}`: {reason}; the previous level is kept")
            }
            LevelError::Gone => f.write_str("the filter behind this level handle was dropped"),
        }
    }
}

impl std::error::Error for LevelError {}

/// `RUST_LOG`, read now: `None` when unset, blank, or not UTF-8 (told on
/// stderr under `label`). Plumbing for `selftrace-itr`.
#[doc(hidden)]
pub fn read_rust_log(label: &str) -> Option<String> {
    match std::env::var("RUST_LOG") {
        Ok(value) if !value.trim().is_empty() => Some(value),
        Ok(_) | Err(std::env::VarError::NotPresent) => None,
        Err(std::env::VarError::NotUnicode(_)) => {
            crate::raw::write_raw_note(
                label,
                format_args!("RUST_LOG is not valid UTF-8; using the default level `{DEFAULT_DIRECTIVES}`"),
            );
            None
        }
    }
}

/// The level when nothing says otherwise: `info`, with the transport
/// crates (`h2`, `hyper`, `hyper_util`, `tonic`, `reqwest`: an exporter's
/// own stack, which logs per request at `debug`) `off`. `EnvFilter` matches
/// targets by prefix: `hyper=off` also turns off a crate named `hyperloop`
/// (set `RUST_LOG` to keep it).
pub const DEFAULT_DIRECTIVES: &str = "info,h2=off,hyper=off,hyper_util=off,tonic=off,reqwest=off";

impl DynamicFilter {
    /// The filter every selftrace product starts with: `RUST_LOG`'s
    /// directives (full `EnvFilter` syntax, read now), else
    /// [`DEFAULT_DIRECTIVES`]. A `RUST_LOG` that does not parse (or is not
    /// UTF-8) is told on stderr, naming the variable, and the default
    /// applies. `selftrace-itr`'s configuration puts its `level` first.
    ///
    /// # Examples
    ///
    /// ```
    /// use selftrace::levels::DynamicFilter;
    ///
    /// let (filter, handle) = DynamicFilter::from_env();
    /// # let _ = (filter, handle);
    /// ```
    pub fn from_env() -> (Self, LevelHandle) {
        Self::from_rust_log(read_rust_log("selftrace").as_deref(), "selftrace").0.handle_pair()
    }

    /// The filter of `RUST_LOG`'s `directives` (as [`read_rust_log`] gave
    /// them), else [`DEFAULT_DIRECTIVES`]; whether the directives applied.
    /// Directives that do not parse are told on stderr under `label` and
    /// the default applies. Plumbing for `selftrace-itr`, which records
    /// where its level came from.
    #[doc(hidden)]
    pub fn from_rust_log(directives: Option<&str>, label: &str) -> (Self, bool) {
        if let Some(directives) = directives {
            match Self::with_directives(directives) {
                Ok((filter, _)) => return (filter, true),
                Err(e) => {
                    let reason = match &e {
                        LevelError::Directives { reason, .. } => reason.clone(),
                        other => other.to_string(),
                    };
                    crate::raw::write_raw_note(
                        label,
                        format_args!(
                            "RUST_LOG={directives:?} is not a valid filter ({reason}); using the default level `{DEFAULT_DIRECTIVES}`"
                        ),
                    );
                }
            }
        }
        let default =
            Self::with_directives(DEFAULT_DIRECTIVES).map_or_else(|_| Self::new(LevelFilter::INFO).0, |(f, _)| f);
        (default, false)
    }

    fn handle_pair(self) -> (Self, LevelHandle) {
        let handle = self.handle();
        (self, handle)
    }

    /// A filter at `level`, and the handle that changes it.
    pub fn new(level: LevelFilter) -> (Self, LevelHandle) {
        let inner = Arc::new(Inner { level: AtomicU8::new(level_to_u8(level)), directives: ArcSwapOption::empty() });
        let handle = LevelHandle { inner: Arc::downgrade(&inner) };
        (Self { inner }, handle)
    }

    /// A filter with `EnvFilter` directives (`"info,hyper=warn"`), and the
    /// handle that changes them.
    ///
    /// # Errors
    ///
    /// [`LevelError::Directives`] when they do not parse.
    pub fn with_directives(directives: &str) -> Result<(Self, LevelHandle), LevelError> {
        let (filter, handle) = Self::new(LevelFilter::OFF);
        filter.inner.directives.store(Some(Arc::new((parse(directives)?, directives.to_owned()))));
        Ok((filter, handle))
    }

    /// A handle that changes this filter.
    pub fn handle(&self) -> LevelHandle {
        LevelHandle { inner: Arc::downgrade(&self.inner) }
    }

    /// The most verbose level anything passes at: the level, or the most
    /// verbose of the directives (`"warn,db=debug"`: DEBUG).
    pub fn max_level(&self) -> LevelFilter {
        match &*self.inner.directives.load() {
            Some(directives) => <EnvFilter as Filter<tracing_subscriber::Registry>>::max_level_hint(&directives.0)
                .unwrap_or(LevelFilter::TRACE),
            None => self.inner.level(),
        }
    }
}

/// Level changes one at a time, each with its rebuild: tracing-core lets
/// two rebuilds of the interest cache run at once, and the one that started
/// first (with the older state) may finish last and leave its result.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn parse(directives: &str) -> Result<EnvFilter, LevelError> {
    EnvFilter::builder()
        .parse(directives)
        .map_err(|e| LevelError::Directives { directives: directives.to_owned(), reason: e.to_string() })
}

impl LevelHandle {
    fn inner(&self) -> Result<Arc<Inner>, LevelError> {
        self.inner.upgrade().ok_or(LevelError::Gone)
    }

    /// Collects events at `level` and more severe, everywhere (directives
    /// set before are dropped); takes effect at once.
    ///
    /// # Errors
    ///
    /// [`LevelError::Gone`] when the filter was dropped.
    pub fn set_level(&self, level: LevelFilter) -> Result<(), LevelError> {
        let inner = self.inner()?;
        let _one_at_a_time = serial();
        inner.level.store(level_to_u8(level), Ordering::Release);
        inner.directives.store(None);
        tracing_core::callsite::rebuild_interest_cache();
        Ok(())
    }

    /// Collects what `EnvFilter` directives allow (`"info,db=debug"`);
    /// takes effect at once.
    ///
    /// # Errors
    ///
    /// [`LevelError::Directives`] when they do not parse (the filter keeps
    /// what it had), [`LevelError::Gone`] when the filter was dropped.
    pub fn set_directives(&self, directives: &str) -> Result<(), LevelError> {
        let inner = self.inner()?;
        let filter = parse(directives)?;
        let _one_at_a_time = serial();
        inner.directives.store(Some(Arc::new((filter, directives.to_owned()))));
        tracing_core::callsite::rebuild_interest_cache();
        Ok(())
    }

    /// The current level (`"info"`) or directives, as they were given.
    ///
    /// # Errors
    ///
    /// [`LevelError::Gone`] when the filter was dropped.
    pub fn current(&self) -> Result<String, LevelError> {
        Ok(self.inner()?.describe())
    }
}

impl Inner {
    #[inline]
    fn level(&self) -> LevelFilter {
        level_from_u8(self.level.load(Ordering::Acquire))
    }

    fn describe(&self) -> String {
        match &*self.directives.load() {
            Some(directives) => directives.1.clone(),
            None => self.level().to_string().to_lowercase(),
        }
    }
}

impl<S: Subscriber> Filter<S> for DynamicFilter {
    #[inline]
    fn enabled(&self, meta: &Metadata<'_>, cx: &Context<'_, S>) -> bool {
        // One read of the state per decision: the old or the new level.
        match &*self.inner.directives.load() {
            Some(directives) => <EnvFilter as Filter<S>>::enabled(&directives.0, meta, cx),
            None => meta.level() <= &self.inner.level(),
        }
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        match &*self.inner.directives.load() {
            Some(directives) => <EnvFilter as Filter<S>>::callsite_enabled(&directives.0, meta),
            None if meta.level() <= &self.inner.level() => Interest::always(),
            None => Interest::never(),
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        match &*self.inner.directives.load() {
            Some(directives) => <EnvFilter as Filter<S>>::max_level_hint(&directives.0),
            None => Some(self.inner.level()),
        }
    }

    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, cx: Context<'_, S>) {
        if let Some(directives) = &*self.inner.directives.load() {
            <EnvFilter as Filter<S>>::on_new_span(&directives.0, attrs, id, cx);
        }
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, cx: Context<'_, S>) {
        if let Some(directives) = &*self.inner.directives.load() {
            <EnvFilter as Filter<S>>::on_record(&directives.0, id, values, cx);
        }
    }

    fn on_enter(&self, id: &span::Id, cx: Context<'_, S>) {
        if let Some(directives) = &*self.inner.directives.load() {
            <EnvFilter as Filter<S>>::on_enter(&directives.0, id, cx);
        }
    }

    fn on_exit(&self, id: &span::Id, cx: Context<'_, S>) {
        if let Some(directives) = &*self.inner.directives.load() {
            <EnvFilter as Filter<S>>::on_exit(&directives.0, id, cx);
        }
    }

    fn on_close(&self, id: span::Id, cx: Context<'_, S>) {
        if let Some(directives) = &*self.inner.directives.load() {
            <EnvFilter as Filter<S>>::on_close(&directives.0, id, cx);
        }
    }
}

/// `LevelFilter` as a byte (OFF 0, ERROR 1 .. TRACE 5), for atomics.
#[inline]
pub(crate) fn level_to_u8(level: LevelFilter) -> u8 {
    match level.into_level() {
        None => 0,
        Some(tracing_core::Level::ERROR) => 1,
        Some(tracing_core::Level::WARN) => 2,
        Some(tracing_core::Level::INFO) => 3,
        Some(tracing_core::Level::DEBUG) => 4,
        Some(tracing_core::Level::TRACE) => 5,
    }
}

/// The inverse of [`level_to_u8`].
#[inline]
pub(crate) fn level_from_u8(code: u8) -> LevelFilter {
    match code {
        0 => LevelFilter::OFF,
        1 => LevelFilter::ERROR,
        2 => LevelFilter::WARN,
        3 => LevelFilter::INFO,
        4 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_round_trip_through_their_byte() {
        for level in [
            LevelFilter::OFF,
            LevelFilter::ERROR,
            LevelFilter::WARN,
            LevelFilter::INFO,
            LevelFilter::DEBUG,
            LevelFilter::TRACE,
        ] {
            assert_eq!(level_from_u8(level_to_u8(level)), level);
        }
    }

    #[test]
    fn a_handle_reports_what_it_set_and_fails_once_the_filter_is_gone() {
        let (filter, handle) = DynamicFilter::new(LevelFilter::WARN);
        assert_eq!(handle.current().expect("alive"), "warn");
        handle.set_directives("info,db=trace").expect("valid");
        assert_eq!(handle.current().expect("alive"), "info,db=trace");
        let error = handle.set_directives("info,db=[").expect_err("invalid");
        assert!(error.to_string().starts_with("invalid level directives `info,db=[`"), "{error}");
        assert_eq!(handle.current().expect("alive"), "info,db=trace", "kept");
        handle.set_level(LevelFilter::ERROR).expect("alive");
        assert_eq!(handle.current().expect("alive"), "error");
        drop(filter);
        assert!(matches!(handle.set_level(LevelFilter::INFO), Err(LevelError::Gone)));
    }
}
