//! Assertion types by name. The registry checks suites' assertions at load time (it is the
//! [`AssertionCheck`] the loader uses) and builds each distinct assertion once.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use llmtest_spec::{AssertionCheck, AssertionSpec, CheckError};

use crate::grader::{Grader, GraderContext, GraderFactory};

/// Every known assertion type.
pub struct GraderRegistry {
    factories: BTreeMap<String, Arc<dyn GraderFactory>>,
    ctx: GraderContext,
    cache: Mutex<HashMap<String, Arc<dyn Grader>>>,
}

impl GraderRegistry {
    /// An empty registry.
    pub fn empty(ctx: GraderContext) -> Self {
        GraderRegistry {
            factories: BTreeMap::new(),
            ctx,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The built-in assertions: text and JSON, `number`, `math`, `tool-call`, the judges.
    pub fn with_builtins(ctx: GraderContext) -> Self {
        let mut r = Self::empty(ctx);
        for f in crate::text::factories() {
            r.register(f);
        }
        for f in crate::judge::factories() {
            r.register(f);
        }
        for f in [
            crate::number::factory(),
            crate::math::factory(),
            crate::tools::factory(),
        ] {
            r.register(f);
        }
        r
    }

    /// Adds (or replaces) an assertion type.
    pub fn register(&mut self, f: Arc<dyn GraderFactory>) {
        self.factories.insert(f.kind().to_owned(), f);
    }

    /// The registered type names, sorted.
    pub fn kinds(&self) -> impl Iterator<Item = &str> + Clone {
        self.factories.keys().map(String::as_str)
    }

    /// Builds (or reuses) the grader for an assertion.
    pub fn build(&self, a: &AssertionSpec) -> Result<Arc<dyn Grader>, CheckError> {
        let key = format!(
            "{}\u{0}{}",
            a.kind,
            serde_json::Value::Object(a.params.clone())
        );
        if let Some(g) = self.cache.lock().expect("grader cache").get(&key) {
            return Ok(g.clone());
        }
        let Some(f) = self.factories.get(&a.kind) else {
            return Err(
                CheckError::new(format!("unknown assertion type `{}`", a.kind))
                    .with_hint(llmtest_spec::unknown_name_hint(&a.kind, self.kinds())),
            );
        };
        let g = f.build(&a.params, &self.ctx)?;
        self.cache
            .lock()
            .expect("grader cache")
            .insert(key, g.clone());
        Ok(g)
    }
}

impl AssertionCheck for GraderRegistry {
    fn check(&self, a: &AssertionSpec) -> Result<(), CheckError> {
        self.build(a).map(|_| ())
    }
}
