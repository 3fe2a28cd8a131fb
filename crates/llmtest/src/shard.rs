//! Spreading a run over machines: `llmtest run --shard K/N` runs the items whose name hashes
//! to shard K, and `llmtest merge SHARD.json… -o results.json` puts the shards back together.
//!
//! The assignment is `xxh64(name, seed 0) % N == K - 1` over the trial name
//! `suite::case::model`: the same as `cargo nextest run --partition hash:K/N` (nextest 0.9),
//! so a CLI shard and a nextest partition of the harness hold the same trials.
//!
//! Each results file carries a [`RunIdentity`]: the version, profile and mode, a hash of the
//! models' configuration, a hash per suite, the shard and the unsharded item count. `merge`
//! refuses files that differ in any of them and says which, and treats a duplicate or a
//! missing item as an error.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::process::ExitCode;

use serde::{Deserialize, Serialize};

use crate::engine::Plan;
use crate::results::{RESULTS_SCHEMA_VERSION, RunIdentity, RunResults, Summary};

/// Shard K of N (1 ≤ K ≤ N).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub k: u64,
    pub n: u64,
}

impl Shard {
    /// Does the item with this trial name belong to this shard?
    pub fn contains(&self, name: &str) -> bool {
        xxhash_rust::xxh64::xxh64(name.as_bytes(), 0) % self.n == self.k - 1
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Shard, String> {
        let s = s.strip_prefix("hash:").unwrap_or(s);
        let bad = || format!("invalid shard `{s}`: expected K/N with 1 ≤ K ≤ N, e.g. 2/3");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (k, n): (u64, u64) = (
            k.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if k == 0 || n == 0 || k > n {
            return Err(bad());
        }
        Ok(Shard { k, n })
    }
}

/// The identity of a run's configuration, for `merge` to compare shards.
pub(crate) fn identity(plan: &Plan, items: usize, shard: Option<Shard>) -> RunIdentity {
    let mut suites = BTreeMap::new();
    let mut models = BTreeSet::new();
    for w in &plan.work {
        models.insert(w.model.clone());
    }
    for s in &plan.suites {
        let mut h = blake3::Hasher::new();
        for (i, _) in s.cases.iter().enumerate() {
            let w = crate::engine::Work {
                suite: s.clone(),
                case: i,
                model: String::new(),
                // Keys hash the case, not its graders.
                graders: Default::default(),
            };
            h.update(
                crate::journal::item_key(&plan.project, plan.profile.mode.as_str(), &w).as_bytes(),
            );
        }
        suites.insert(s.name.clone(), h.finalize().to_hex()[..16].to_owned());
    }
    let mut h = blake3::Hasher::new();
    for m in &models {
        h.update(crate::journal::model_text(&plan.project, m).as_bytes());
        h.update(b"\n");
    }
    RunIdentity {
        config: h.finalize().to_hex()[..16].to_owned(),
        suites,
        items,
        shard,
    }
}

/// Why shards cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("{0}")]
    Read(#[from] crate::results::ReadError),
    #[error(
        "{path}: no run identity (written before sharding existed, or not by `llmtest run`): cannot check it belongs with the others"
    )]
    NoIdentity { path: String },
    #[error("{path} differs from {first} in {what}: {theirs} vs {ours}")]
    Mismatch {
        path: String,
        first: String,
        what: String,
        ours: String,
        theirs: String,
    },
    #[error("shard {shard} appears twice: {a} and {b}")]
    DuplicateShard { shard: String, a: String, b: String },
    #[error("item `{name}` appears twice: in {a} and {b}")]
    DuplicateItem { name: String, a: String, b: String },
    #[error("missing shard(s) {missing} of {n}: the merged run would lack their items")]
    MissingShards { missing: String, n: u64 },
    #[error("the shards hold {found} item(s), the run has {expected}: {hint}")]
    MissingItems {
        found: usize,
        expected: usize,
        hint: String,
    },
}

/// Merges shard results into one run, checking they belong together.
pub fn merge(paths: &[&Path]) -> Result<RunResults, MergeError> {
    let mut runs = Vec::new();
    for p in paths {
        runs.push((p.display().to_string(), RunResults::read(p)?));
    }
    let Some((first_path, first)) = runs.first() else {
        return Err(MergeError::MissingItems {
            found: 0,
            expected: 0,
            hint: "no shard given".into(),
        });
    };
    let id0 = first
        .identity
        .clone()
        .ok_or_else(|| MergeError::NoIdentity {
            path: first_path.clone(),
        })?;
    let mut seen_shards: BTreeMap<u64, String> = BTreeMap::new();
    let mut seen_items: BTreeMap<String, String> = BTreeMap::new();
    let mut cases = Vec::new();
    let mut models: BTreeMap<String, crate::results::ModelInfo> = BTreeMap::new();
    for (path, r) in &runs {
        let id = r
            .identity
            .clone()
            .ok_or_else(|| MergeError::NoIdentity { path: path.clone() })?;
        let mismatch = |what: &str, ours: String, theirs: String| MergeError::Mismatch {
            path: path.clone(),
            first: first_path.clone(),
            what: what.into(),
            ours,
            theirs,
        };
        if r.llmtest_version != first.llmtest_version {
            return Err(mismatch(
                "llmtest version",
                first.llmtest_version.clone(),
                r.llmtest_version.clone(),
            ));
        }
        if r.profile != first.profile || r.mode != first.mode {
            return Err(mismatch(
                "profile",
                format!("{} ({})", first.profile, first.mode),
                format!("{} ({})", r.profile, r.mode),
            ));
        }
        if id.config != id0.config {
            return Err(mismatch(
                "model configuration",
                id0.config.clone(),
                id.config.clone(),
            ));
        }
        let names = |m: &BTreeMap<String, String>| m.keys().cloned().collect::<Vec<_>>().join(", ");
        if id.suites.keys().ne(id0.suites.keys()) {
            return Err(mismatch("suites", names(&id0.suites), names(&id.suites)));
        }
        if let Some((s, _)) = id
            .suites
            .iter()
            .find(|(s, h)| id0.suites.get(*s) != Some(h))
        {
            return Err(mismatch(
                &format!("suite `{s}` (its cases or assertions changed)"),
                id0.suites[s].clone(),
                id.suites[s].clone(),
            ));
        }
        if id.items != id0.items {
            return Err(mismatch(
                "item count (a different --filter or --model?)",
                id0.items.to_string(),
                id.items.to_string(),
            ));
        }
        let n0 = id0.shard.map_or(1, |s| s.n);
        let (k, n) = id.shard.map_or((1, 1), |s| (s.k, s.n));
        if n != n0 {
            return Err(mismatch("shard count", n0.to_string(), n.to_string()));
        }
        if let Some(a) = seen_shards.insert(k, path.clone()) {
            return Err(MergeError::DuplicateShard {
                shard: format!("{k}/{n}"),
                a,
                b: path.clone(),
            });
        }
        for c in &r.cases {
            let name = format!("{}::{}::{}", c.suite, c.case, c.model);
            if let Some(a) = seen_items.insert(name.clone(), path.clone()) {
                return Err(MergeError::DuplicateItem {
                    name,
                    a,
                    b: path.clone(),
                });
            }
            cases.push(c.clone());
        }
        for m in &r.models {
            models.entry(m.name.clone()).or_insert_with(|| m.clone());
        }
    }
    let n = id0.shard.map_or(1, |s| s.n);
    let missing: Vec<String> = (1..=n)
        .filter(|k| !seen_shards.contains_key(k))
        .map(|k| k.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(MergeError::MissingShards {
            missing: missing.join(", "),
            n,
        });
    }
    if cases.len() != id0.items {
        return Err(MergeError::MissingItems {
            found: cases.len(),
            expected: id0.items,
            hint: "a shard was cut short; rerun it with `--resume`".into(),
        });
    }
    cases.sort_by(|a, b| (&a.suite, &a.case, &a.model).cmp(&(&b.suite, &b.case, &b.model)));
    let summary = Summary::from_cases(&cases);
    Ok(RunResults {
        schema_version: RESULTS_SCHEMA_VERSION,
        llmtest_version: first.llmtest_version.clone(),
        profile: first.profile.clone(),
        mode: first.mode.clone(),
        models: models.into_values().collect(),
        cases,
        summary,
        identity: Some(RunIdentity { shard: None, ..id0 }),
    })
}

/// `llmtest merge SHARD.json… -o results.json`. Exit 2 when the shards do not belong
/// together, 3 when the output cannot be written.
pub(crate) fn command(paths: &[std::path::PathBuf], output: Option<&Path>) -> ExitCode {
    let refs: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
    let merged = match merge(&refs) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: cannot merge: {e}");
            return ExitCode::from(2);
        }
    };
    let json = crate::report::render(&merged, crate::report::Format::Json);
    match output {
        Some(p) => {
            if let Err(e) = crate::results::write_atomic(p, json.as_bytes()) {
                eprintln!("error: cannot write {}: {e}", p.display());
                return ExitCode::from(3);
            }
            eprintln!(
                "llmtest: merged {} shard(s), {} item(s) into {}",
                paths.len(),
                merged.cases.len(),
                p.display()
            );
        }
        None => print!("{json}"),
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_partition_like_nextest() {
        let s: Shard = "2/3".parse().unwrap();
        assert_eq!(s, Shard { k: 2, n: 3 });
        assert_eq!("hash:1/2".parse::<Shard>().unwrap(), Shard { k: 1, n: 2 });
        for bad in ["0/3", "4/3", "3", "a/b", "1/0"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        // xxh64("", 0) is the published empty-input digest.
        assert_eq!(xxhash_rust::xxh64::xxh64(b"", 0), 0xef46_db37_51d8_e999);
        assert_eq!(xxhash_rust::xxh64::xxh64(b"a", 0), 0xd24e_c4f1_a98c_6e5b);
        // Every name lands in exactly one shard.
        for name in ["gsm8k::q1::m", "a::b::c", "humaneval::HumanEval/0::x"] {
            let hits = (1..=5)
                .filter(|k| Shard { k: *k, n: 5 }.contains(name))
                .count();
            assert_eq!(hits, 1, "{name}");
        }
    }
}
