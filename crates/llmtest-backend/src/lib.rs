//! llmtest's backend interface: the [`Backend`] trait every model server or runtime
//! implements, the request/response/timings types, and the backends that need no network:
//! [`ReplayBackend`] and [`RecordBackend`] (cassettes), `outputs` (answers you already have)
//! and `exec` (any command as a model).
//!
//! ```
//! use llmtest_backend::{cassette_key, Request};
//! use llmtest_spec::{GenParams, Prompt};
//! let req = Request {
//!     model: "qwen2.5-7b".into(), suite: "math".into(), case_id: "quadratic".into(),
//!     prompt: Prompt::Completion("x^2-5x+6=0, x =".into()), params: GenParams::default(), n: 1,
//! };
//! // The key depends on model, prompt, params and n, not on the case's name.
//! let renamed = Request { case_id: "renamed".into(), ..req.clone() };
//! assert_eq!(cassette_key(&req), cassette_key(&renamed));
//! ```

mod cassette;
mod exec;
pub mod filecache;
mod outputs;
mod secret;
mod types;

use std::sync::Arc;

pub use cassette::{
    Entry, RecordBackend, ReplayBackend, canonical, cassette_key, sanitize, set_cassette_index_dir,
};
pub use exec::ExecBackend;
pub use outputs::OutputsBackend;
pub use secret::{RedactingWriter, Secret, is_secret_var, redact_secrets};
pub use types::{
    Backend, BackendContext, BackendError, BackendFactory, Choice, InfraError, InfraKind, Request,
    Response, Timings, Usage, parse_options,
};

/// The factories of this crate's backends: `exec` and `outputs`.
pub fn builtin_factories() -> Vec<Arc<dyn BackendFactory>> {
    vec![
        Arc::new(exec::ExecFactory),
        Arc::new(outputs::OutputsFactory),
    ]
}
