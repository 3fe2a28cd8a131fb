//! The plan cache: the resolved project and suites, kept under the target directory the
//! test binary was built in, so that a process that runs one trial (`cargo nextest run`
//! starts one per test) reads its one case instead of parsing `llmtest.yaml` and every suite.
//!
//! A process that loads the whole plan (nextest's `--list`, `cargo test`) writes the cache
//! when it is stale; a one-trial process only reads it, and falls back to loading when it
//! is missing, stale, corrupt or foreign. It is never trusted blindly:
//!
//! - it is keyed by the project root, the test binary and `LLMTEST_PROFILE`, so checkouts
//!   sharing a target directory, and profiles, keep their own entries;
//! - every input — `llmtest.yaml`, each suite file, each `cases_from` data file and fixture a
//!   suite includes, the list of suite files, the test binary — is recorded with a stamp
//!   (length, modification time) and a content hash; a changed stamp is checked against the
//!   hash, and any changed input makes the whole cache stale;
//! - files are sealed with the hash of their content (`llmtest_backend::filecache`), every
//!   case separately, and written atomically, so parallel processes never see half a file.
//!
//! Cassettes and snapshots have their own indexes, each checked against its file
//! (`llmtest_backend::set_cassette_index_dir`, `snapshot::recorded_outcomes`).
//! `LLMTEST_CACHE=off` turns all of it off.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use llmtest_backend::filecache::{self, Stamp, content_hash};
use llmtest_spec::{Case, Project, Suite};

use crate::engine::{Plan, Work};

const PLAN_KIND: &str = "llmtest-plan-cache/1";
const SUITE_KIND: &str = "llmtest-suite-cache/1";

/// One file the plan was built from, as it was then.
#[derive(Debug, Serialize, Deserialize)]
struct Input {
    path: PathBuf,
    /// `None`: the file did not exist (creating it changes the plan).
    stamp: Option<Stamp>,
    hash: Option<String>,
}

impl Input {
    fn capture(path: &Path) -> Input {
        let stamp = Stamp::of(path);
        let hash = stamp
            .and_then(|_| std::fs::read(path).ok())
            .map(|b| content_hash(&b));
        Input {
            path: path.to_path_buf(),
            stamp,
            hash,
        }
    }

    /// Is the file still what it was? A new stamp with the same content still is.
    fn holds(&self) -> bool {
        match (Stamp::of(&self.path), self.stamp) {
            (None, None) => true,
            (Some(now), Some(then)) if now == then => true,
            (Some(_), Some(_)) => {
                std::fs::read(&self.path).ok().map(|b| content_hash(&b)) == self.hash
            }
            _ => false,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct PlanFile {
    /// llmtest's version: another one may resolve suites differently.
    version: String,
    root: PathBuf,
    exe: Option<Stamp>,
    profile_env: Option<String>,
    /// Names this build of the cache; each suite file carries it.
    generation: String,
    /// The discovered suite files (a new or removed one makes the cache stale).
    suite_files: Vec<PathBuf>,
    inputs: Vec<Input>,
    project: Project,
    profile: String,
    suites: Vec<SuiteEntry>,
}

#[derive(Serialize, Deserialize)]
struct SuiteEntry {
    name: String,
    file: String,
    /// The models its cases run on, as the full plan chose them.
    models: Vec<String>,
}

/// The first line of a suite's index: the suite without its cases.
#[derive(Serialize, Deserialize)]
struct SuiteHead {
    generation: String,
    suite: Suite,
}

/// Where a case's JSON is in the suite's `.cases` file, and its hash: a line of the index,
/// `<offset> <len> <hash> <id as JSON>`, found without parsing the others.
struct CaseRef {
    id: String,
    offset: u64,
    len: u64,
    hash: String,
}

impl CaseRef {
    fn line(&self) -> String {
        format!(
            "{} {} {} {}\n",
            self.offset,
            self.len,
            self.hash,
            serde_json::Value::from(self.id.as_str())
        )
    }

    fn parse(line: &str) -> Option<CaseRef> {
        let mut f = line.splitn(4, ' ');
        let (offset, len, hash) = (f.next()?, f.next()?, f.next()?);
        Some(CaseRef {
            offset: offset.parse().ok()?,
            len: len.parse().ok()?,
            hash: hash.to_owned(),
            id: serde_json::from_str(f.next()?).ok()?,
        })
    }

    /// The line of case `id` in an index's lines.
    fn find(table: &str, id: &str) -> Option<CaseRef> {
        let needle = serde_json::Value::from(id).to_string();
        table
            .lines()
            .find(|l| l.splitn(4, ' ').nth(3) == Some(needle.as_str()))
            .and_then(CaseRef::parse)
    }

    fn all(table: &str) -> Option<Vec<CaseRef>> {
        table.lines().map(CaseRef::parse).collect()
    }
}

/// The cache of one project, test binary and profile.
pub(crate) struct PlanCache {
    dir: PathBuf,
    root: PathBuf,
}

fn profile_env() -> Option<String> {
    std::env::var("LLMTEST_PROFILE")
        .ok()
        .filter(|s| !s.is_empty())
}

fn exe_stamp() -> Option<Stamp> {
    std::env::current_exe().ok().and_then(|e| Stamp::of(&e))
}

impl PlanCache {
    /// The cache for the project at `root`, under `<target>/<profile>/llmtest-cache/` of the
    /// running test binary; `None` when the binary is not in a Cargo target directory or
    /// `LLMTEST_CACHE=off`.
    pub(crate) fn locate(root: &Path) -> Option<PlanCache> {
        if std::env::var("LLMTEST_CACHE").is_ok_and(|v| v == "off" || v == "0") {
            return None;
        }
        let exe = std::env::current_exe().ok()?;
        let deps = exe.parent()?;
        if deps.file_name()? != "deps" {
            return None;
        }
        let canonical = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
        let key = content_hash(
            format!(
                "{}\0{}\0{}",
                canonical.display(),
                exe.file_name()?.to_string_lossy(),
                profile_env().unwrap_or_default()
            )
            .as_bytes(),
        );
        Some(PlanCache::at(
            deps.parent()?.join("llmtest-cache").join(&key[..16]),
            root,
        ))
    }

    fn at(dir: PathBuf, root: &Path) -> PlanCache {
        PlanCache {
            dir,
            root: root.to_path_buf(),
        }
    }

    /// The cache's directory (cassette and snapshot indexes go under it too).
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn plan_path(&self) -> PathBuf {
        self.dir.join("plan.json")
    }

    /// A suite's index (`.idx`: the suite, where each case is) and its cases (`.cases`).
    fn suite_paths(&self, stem: &str) -> (PathBuf, PathBuf) {
        (
            self.dir.join(format!("{stem}.idx")),
            self.dir.join(format!("{stem}.cases")),
        )
    }

    /// The plan file if it is of this project, binary, version and profile, and every input
    /// still holds.
    fn fresh_plan(&self) -> Option<PlanFile> {
        let body = filecache::read_sealed(PLAN_KIND, &self.plan_path())?;
        let p: PlanFile = serde_json::from_slice(&body).ok()?;
        let ours = p.version == env!("CARGO_PKG_VERSION")
            && p.root == self.root
            && p.exe == exe_stamp()
            && p.profile_env == profile_env();
        if !ours || !p.inputs.iter().all(Input::holds) {
            return None;
        }
        (p.project.discover(&[]).ok()? == p.suite_files).then_some(p)
    }

    /// Does the cache hold this plan's current state (plan and every suite file)?
    pub(crate) fn is_fresh(&self) -> bool {
        let Some(p) = self.fresh_plan() else {
            return false;
        };
        p.suites
            .iter()
            .all(|s| suite_intact(self.suite_paths(&s.file), &p.generation))
    }

    /// Writes the cache of `plan`, a whole plan just loaded (`files_read`: the data and
    /// fixture files its loading read). Perf suites are left out (their `perf:` block is not
    /// kept): their trials load as without a cache.
    pub(crate) fn store(&self, plan: &Plan, files_read: &[PathBuf]) -> std::io::Result<()> {
        let root = &plan.project.root;
        let suite_files = plan.project.discover(&[]).map_err(std::io::Error::other)?;
        let mut inputs = vec![Input::capture(&root.join(llmtest_spec::CONFIG_FILE))];
        inputs.extend(suite_files.iter().map(|f| Input::capture(&root.join(f))));
        // Another project's files (tests load several in one process) are not inputs.
        inputs.extend(
            files_read
                .iter()
                .filter(|f| f.starts_with(root))
                .map(|f| Input::capture(f)),
        );
        let exe = exe_stamp();
        let generation = content_hash(
            serde_json::to_string(&(&inputs, exe, env!("CARGO_PKG_VERSION")))
                .map_err(std::io::Error::other)?
                .as_bytes(),
        );
        let mut suites = Vec::new();
        for s in plan.suites.iter().filter(|s| s.perf.is_none()) {
            let mut models: Vec<String> = Vec::new();
            for w in plan.work.iter().filter(|w| Arc::ptr_eq(&w.suite, s)) {
                if !models.contains(&w.model) {
                    models.push(w.model.clone());
                }
            }
            let file = format!(
                "suite-{}-{}",
                llmtest_backend::sanitize(&s.name),
                &content_hash(s.name.as_bytes())[..8]
            );
            write_suite(self.suite_paths(&file), s, &generation)?;
            suites.push(SuiteEntry {
                name: s.name.clone(),
                file,
                models,
            });
        }
        let pf = PlanFile {
            version: env!("CARGO_PKG_VERSION").into(),
            root: self.root.clone(),
            exe,
            profile_env: profile_env(),
            generation,
            suite_files,
            inputs,
            project: plan.project.clone(),
            profile: plan.profile.name.clone(),
            suites,
        };
        let body = serde_json::to_vec(&pf).map_err(std::io::Error::other)?;
        // Last: a reader that finds this plan finds its suite files already written.
        filecache::write_atomic(&self.plan_path(), &filecache::seal(PLAN_KIND, &body))?;
        // Files of suites that are gone, or of an older format, go too.
        let current: Vec<(PathBuf, PathBuf)> = pf
            .suites
            .iter()
            .map(|s| self.suite_paths(&s.file))
            .collect();
        for e in std::fs::read_dir(&self.dir)?.flatten() {
            let path = e.path();
            let stale = e.file_name().to_string_lossy().starts_with("suite-")
                && !current.iter().any(|(i, c)| *i == path || *c == path);
            if stale {
                let _ = std::fs::remove_file(path);
            }
        }
        Ok(())
    }

    /// The plan of one suite from the cache — only the case `only_case` when given, as
    /// [`Plan::load`] builds it for a one-trial process — or `None` when the cache cannot be
    /// used (then load as usual).
    pub(crate) fn load(
        &self,
        registry: &llmtest_grade::GraderRegistry,
        suite: &str,
        only_case: Option<&str>,
    ) -> Option<Plan> {
        let p = self.fresh_plan()?;
        let entry = p.suites.iter().find(|s| s.name == suite)?;
        let (idx, cases_file) = self.suite_paths(&entry.file);
        let (head, table) = read_index(&idx)?;
        if head.generation != p.generation {
            return None;
        }
        let wanted = match only_case {
            Some(id) => vec![CaseRef::find(&table, id)?],
            None => CaseRef::all(&table)?,
        };
        let cases = read_cases(&cases_file, &wanted)?;
        let project = p.project;
        let profile = project.profile(None).ok()?;
        if profile.name != p.profile {
            return None;
        }
        let suite = Arc::new(Suite {
            cases,
            ..head.suite
        });
        let mut work = Vec::new();
        for (case, c) in suite.cases.iter().enumerate() {
            // Built as the loader builds them; a refusal is the loader's to report.
            let graders = crate::engine::Graders::build(registry, c).ok()?;
            for m in &entry.models {
                work.push(Work {
                    suite: suite.clone(),
                    case,
                    model: m.clone(),
                    graders: graders.clone(),
                });
            }
        }
        work.sort_by_cached_key(Work::name);
        Some(Plan {
            project,
            profile,
            suites: vec![suite],
            work,
        })
    }
}

/// Writes a suite's cases (each case's JSON on a line), then its index (sealed: the suite
/// without cases, then where each case is). A case is checked against its hash when read,
/// so an index beside the cases of another build reads as a miss.
fn write_suite(
    (idx, cases): (PathBuf, PathBuf),
    s: &Suite,
    generation: &str,
) -> std::io::Result<()> {
    let mut blobs = Vec::new();
    let head = SuiteHead {
        generation: generation.to_owned(),
        suite: Suite {
            cases: Vec::new(),
            ..s.clone()
        },
    };
    let mut body = serde_json::to_vec(&head).map_err(std::io::Error::other)?;
    body.push(b'\n');
    for c in &s.cases {
        let json = serde_json::to_vec(c).map_err(std::io::Error::other)?;
        let r = CaseRef {
            id: c.id.clone(),
            offset: blobs.len() as u64,
            len: json.len() as u64,
            hash: content_hash(&json),
        };
        body.extend_from_slice(r.line().as_bytes());
        blobs.extend_from_slice(&json);
        blobs.push(b'\n');
    }
    filecache::write_atomic(&cases, &blobs)?;
    filecache::write_atomic(&idx, &filecache::seal(SUITE_KIND, &body))
}

/// A suite's index: its head and the lines that say where each case is.
fn read_index(path: &Path) -> Option<(SuiteHead, String)> {
    let body = String::from_utf8(filecache::read_sealed(SUITE_KIND, path)?).ok()?;
    let (head, table) = body.split_once('\n')?;
    Some((serde_json::from_str(head).ok()?, table.to_owned()))
}

/// Is the suite's index of this generation, with every case as it was written?
fn suite_intact((idx, cases): (PathBuf, PathBuf), generation: &str) -> bool {
    let Some((head, table)) = read_index(&idx) else {
        return false;
    };
    let (Some(refs), Ok(bytes)) = (CaseRef::all(&table), std::fs::read(cases)) else {
        return false;
    };
    head.generation == generation
        && refs.iter().all(|c| {
            usize::try_from(c.offset)
                .ok()
                .zip(usize::try_from(c.offset + c.len).ok())
                .and_then(|(a, b)| bytes.get(a..b))
                .is_some_and(|blob| content_hash(blob) == c.hash)
        })
}

fn read_cases(path: &Path, wanted: &[CaseRef]) -> Option<Vec<Case>> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut out = Vec::with_capacity(wanted.len());
    let mut buf = Vec::new();
    for c in wanted {
        f.seek(SeekFrom::Start(c.offset)).ok()?;
        buf.resize(usize::try_from(c.len).ok()?, 0);
        f.read_exact(&mut buf).ok()?;
        if content_hash(&buf) != c.hash {
            return None;
        }
        let case: Case = serde_json::from_slice(&buf).ok()?;
        if case.id != c.id {
            return None;
        }
        out.push(case);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::PlanOptions;

    /// A project with a suite of inline cases (one includes a fixture) and a `cases_from`
    /// suite, on two answer-file models.
    fn project(dir: &Path) {
        let w = |p: &str, s: &str| {
            let p = dir.join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, s).unwrap();
        };
        w(
            "llmtest.yaml",
            "version: 1\nmodels:\n  a: {backend: outputs, path: a.jsonl}\n  b: {backend: outputs, path: b.jsonl}\nprofiles:\n  p: {mode: live, models: [a, b]}\ndefault_profile: p\n",
        );
        w(
            "suites/inline.yaml",
            "version: 1\nsuite: inline\ncases:\n  - id: one\n    prompt: \"{{ file('fixtures/t.md') }} first\"\n    expect: [{type: contains, value: x}]\n  - id: two\n    prompt: second\n    expect: [{type: contains, value: y}]\n",
        );
        w("fixtures/t.md", "TABLE v1");
        w(
            "suites/rows.yaml",
            "version: 1\nsuite: rows\nmodels: [a]\ncases_from:\n  - path: data/rows.jsonl\n    prompt: \"{{ q }}\"\n    expect: [{type: contains, value: \"{{ a }}\"}]\n",
        );
        w(
            "suites/data/rows.jsonl",
            "{\"q\": \"1+1\", \"a\": 2}\n{\"q\": \"2+2\", \"a\": 4}\n",
        );
    }

    fn reg() -> llmtest_grade::GraderRegistry {
        crate::Llmtest::new().grader_registry(Path::new("."))
    }

    fn full(dir: &Path) -> Plan {
        let registry = crate::Llmtest::new().grader_registry(dir);
        Plan::load(dir, &registry, &PlanOptions::default()).unwrap()
    }

    fn stored(dir: &Path) -> PlanCache {
        let cache = PlanCache::at(dir.join("target/llmtest-cache"), dir);
        cache
            .store(&full(dir), &llmtest_spec::files_read())
            .unwrap();
        assert!(cache.is_fresh());
        cache
    }

    fn prompt(plan: &Plan) -> String {
        format!("{:?}", plan.suites[0].cases[0].prompt)
    }

    /// Writes `text` to `path` with a new modification time even on a coarse clock.
    fn rewrite(path: &Path, text: &str) {
        std::fs::write(path, text).unwrap();
        let t = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(t)
            .unwrap();
    }

    #[test]
    fn a_hit_is_the_plan_that_loading_gives() {
        let dir = tempfile::tempdir().unwrap();
        project(dir.path());
        let cache = stored(dir.path());
        let loaded = full(dir.path());
        let one = cache.load(&reg(), "inline", Some("one")).expect("a hit");
        assert_eq!(one.suites[0].cases.len(), 1);
        assert_eq!(prompt(&one), {
            let s = loaded.suites.iter().find(|s| s.name == "inline").unwrap();
            format!("{:?}", s.cases[0].prompt)
        });
        assert!(prompt(&one).contains("TABLE v1"));
        let names: Vec<String> = one.work.iter().map(Work::name).collect();
        assert_eq!(names, ["inline::one::a", "inline::one::b"]);
        let rows = cache.load(&reg(), "rows", None).expect("the whole suite");
        let names: Vec<String> = rows.work.iter().map(Work::name).collect();
        assert_eq!(names, ["rows::rows-0000::a", "rows::rows-0001::a"]);
        assert_eq!(
            format!("{:?}", rows.suites[0].cases[1].expect),
            format!(
                "{:?}",
                loaded
                    .suites
                    .iter()
                    .find(|s| s.name == "rows")
                    .unwrap()
                    .cases[1]
                    .expect
            )
        );
        assert!(cache.load(&reg(), "inline", Some("three")).is_none());
        // Only the files of this plan are kept.
        let mut files: Vec<String> = std::fs::read_dir(cache.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        assert_eq!(files.len(), 5, "{files:?}");
        assert!(files[0] == "plan.json" && files[1].starts_with("suite-inline-"));
        assert!(cache.load(&reg(), "nope", None).is_none());
    }

    #[test]
    fn any_changed_input_makes_it_stale() {
        let dir = tempfile::tempdir().unwrap();
        project(dir.path());
        let d = dir.path();
        let edits: [(&str, &str); 4] = [
            (
                "suites/inline.yaml",
                "version: 1\nsuite: inline\ncases:\n  - id: one\n    prompt: edited\n    expect: [{type: contains, value: x}]\n",
            ),
            ("fixtures/t.md", "TABLE v2"),
            ("suites/data/rows.jsonl", "{\"q\": \"3+3\", \"a\": 6}\n"),
            (
                "llmtest.yaml",
                "version: 1\nmodels:\n  a: {backend: outputs, path: a.jsonl}\nprofiles:\n  p: {mode: live, models: [a]}\ndefault_profile: p\n",
            ),
        ];
        for (file, text) in edits {
            let cache = stored(d);
            assert!(
                cache.load(&reg(), "inline", Some("one")).is_some(),
                "{file}"
            );
            rewrite(&d.join(file), text);
            assert!(
                cache.load(&reg(), "inline", Some("one")).is_none(),
                "{file}"
            );
            assert!(!cache.is_fresh(), "{file}");
        }
        // After a rebuild the next process sees the edits.
        let cache = stored(d);
        let one = cache.load(&reg(), "inline", Some("one")).unwrap();
        assert!(prompt(&one).contains("edited"));
        assert_eq!(one.work.len(), 1, "model b is gone");
        // A new suite file, and a removed one.
        let cache = stored(d);
        std::fs::write(
            d.join("suites/new.yaml"),
            "version: 1\nsuite: new\ncases: [{id: n, prompt: p, expect: [{type: contains, value: z}]}]\n",
        )
        .unwrap();
        assert!(cache.load(&reg(), "inline", Some("one")).is_none());
        let cache = stored(d);
        std::fs::remove_file(d.join("suites/new.yaml")).unwrap();
        assert!(cache.load(&reg(), "inline", Some("one")).is_none());
        // A new stamp on the same bytes (a checkout) is not a change.
        let cache = stored(d);
        let text = std::fs::read_to_string(d.join("suites/inline.yaml")).unwrap();
        rewrite(&d.join("suites/inline.yaml"), &text);
        assert!(cache.load(&reg(), "inline", Some("one")).is_some());
    }

    #[test]
    fn corrupt_or_foreign_files_are_never_used() {
        let dir = tempfile::tempdir().unwrap();
        project(dir.path());
        let cache = stored(dir.path());
        let plan = cache.plan_path();
        let good = std::fs::read(&plan).unwrap();
        for bad in [
            b"garbage".to_vec(),
            good[..good.len() / 2].to_vec(),
            good.iter()
                .map(|&b| if b == b'a' { b'b' } else { b })
                .collect(),
        ] {
            std::fs::write(&plan, bad).unwrap();
            assert!(cache.load(&reg(), "inline", Some("one")).is_none());
            assert!(!cache.is_fresh());
        }
        // Another project's cache copied in place of this one's.
        let other = tempfile::tempdir().unwrap();
        project(other.path());
        let theirs = stored(other.path());
        let ours = stored(dir.path());
        std::fs::copy(theirs.plan_path(), ours.plan_path()).unwrap();
        assert!(ours.load(&reg(), "inline", Some("one")).is_none());
        // A case altered inside a suite file.
        let ours = stored(dir.path());
        let suite = std::fs::read_dir(ours.dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                let p = p.to_string_lossy();
                p.contains("suite-inline") && p.ends_with(".cases")
            })
            .unwrap();
        let text = std::fs::read_to_string(&suite).unwrap();
        std::fs::write(&suite, text.replace("second", "SECOND")).unwrap();
        assert!(ours.load(&reg(), "inline", Some("two")).is_none());
        assert!(
            ours.load(&reg(), "inline", Some("one")).is_some(),
            "one case checked"
        );
        assert!(ours.load(&reg(), "inline", None).is_none());
        assert!(!ours.is_fresh(), "the next full load rebuilds it");
    }
}
