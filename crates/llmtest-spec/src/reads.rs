//! The files a loader read besides `llmtest.yaml` and the suite files themselves: `cases_from`
//! data and the fixtures of `file(…)` and `{% include %}`. A cache of resolved suites must
//! know every input they came from, or an edited fixture would go unnoticed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

static READ: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

/// Notes a file about to be read (also one that turns out to be missing: creating it later
/// changes what loads).
pub(crate) fn note(path: &Path) {
    if let Ok(mut set) = READ.lock() {
        set.insert(path.to_path_buf());
    }
}

/// Every data or fixture file a loader of this process has read or tried to read, sorted,
/// as it was opened (absolute when the project root is).
pub fn files_read() -> Vec<PathBuf> {
    READ.lock()
        .map(|set| set.iter().cloned().collect())
        .unwrap_or_default()
}
