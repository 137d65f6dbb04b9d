//! Human-readable lines for the records of OTLP bytes: the same lines
//! selftrace's `Console` destination prints (re-exported from
//! [`selftrace::console`], where the startup buffer uses them too).

pub use selftrace::console::{print_request, write_request};
