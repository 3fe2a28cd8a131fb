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
    /// Built-in types whose graders compute and return (no code run, no judge, no I/O).
    quick: std::collections::BTreeSet<String>,
}

impl GraderRegistry {
    /// An empty registry.
    pub fn empty(ctx: GraderContext) -> Self {
        GraderRegistry {
            factories: BTreeMap::new(),
            ctx,
            cache: Mutex::new(HashMap::new()),
            quick: Default::default(),
        }
    }

    /// The built-in assertions: text and JSON, `number`, `math`, `tool-call`, the judges.
    pub fn with_builtins(ctx: GraderContext) -> Self {
        let mut r = Self::empty(ctx);
        let quick: Vec<Arc<dyn GraderFactory>> = crate::text::factories()
            .into_iter()
            .chain([
                crate::number::factory(),
                crate::math::factory(),
                crate::tools::factory(),
            ])
            .collect();
        for f in quick {
            r.register(f.clone());
            r.quick.insert(f.kind().to_owned());
        }
        for f in crate::judge::factories() {
            r.register(f);
        }
        r
    }

    /// Do graders of this type only compute (no program run, no judge call, no I/O)? True
    /// for the built-in text, JSON, `number`, `math` and `tool-call` types, false for judges
    /// and for every registered type, which may block: the engine grades quick assertions
    /// where the answer arrives and the others on a thread that may block.
    pub fn is_quick(&self, kind: &str) -> bool {
        self.quick.contains(kind)
    }

    /// Adds (or replaces) an assertion type.
    pub fn register(&mut self, f: Arc<dyn GraderFactory>) {
        self.quick.remove(f.kind());
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
