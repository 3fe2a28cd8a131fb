//! Loading in passes: parse every file (located errors), validate everything, and only then
//! hand back suites. All problems of all files are reported together.
//!
//! By job: the project and `llmtest.yaml` (`project.rs`), YAML parsing with located, hinted
//! errors (`yaml.rs`), suite files resolved into suites and cases (`suites.rs`), `cases_from`
//! data imports (`cases_from.rs`), one assertion entry (`assertion.rs`).

use std::path::Path;

use serde_saphyr::Spanned;

use crate::diag::Loc;

mod assertion;
mod cases_from;
mod project;
mod suites;
mod yaml;

pub use assertion::parse_assertion;
pub use project::{CONFIG_FILE, Project};
pub use suites::{load_suites, load_suites_filtered, load_suites_named};

fn loc<T>(file: &Path, s: &Spanned<T>) -> Loc {
    Loc::from_saphyr(file, &s.referenced)
}
