//! Building blocks of the small on-disk caches that let a process which runs one trial
//! (`cargo nextest run`: one process per test) skip re-reading whole suites, cassettes and
//! snapshots. A cache is never trusted on its own word:
//!
//! - every file is *sealed*: a first line with its kind, a format version and the BLAKE3 of
//!   the rest, so a truncated, corrupt or foreign file reads as absent and is rebuilt;
//! - an input is recognised by a cheap [`Stamp`] (length, modification time); when the stamp
//!   differs, the input's content hash decides (a checkout that rewrote the same bytes keeps
//!   its cache);
//! - files are written to a temporary name and renamed, so processes running in parallel
//!   see either the old file or the new one, never half of one.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What identifies a file's version cheaply: its length and modification time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub len: u64,
    /// Nanoseconds since the Unix epoch (0 when the file system keeps none).
    pub mtime_ns: u128,
}

impl Stamp {
    /// The stamp of the file at `path`; `None` when it does not exist or cannot be read.
    pub fn of(path: &Path) -> Option<Stamp> {
        std::fs::metadata(path).ok().map(|m| Stamp::from_meta(&m))
    }

    pub fn from_meta(meta: &std::fs::Metadata) -> Stamp {
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        Stamp {
            len: meta.len(),
            mtime_ns,
        }
    }
}

/// The content hash the caches use: BLAKE3, 32 hex digits.
pub fn content_hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex()[..32].to_owned()
}

/// `body` behind a first line `<kind> <hash of body>`. `kind` names the cache and its
/// format version (no spaces or newlines), e.g. `llmtest-cassette-index/1`.
pub fn seal(kind: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(kind.len() + 34 + body.len());
    out.extend_from_slice(kind.as_bytes());
    out.push(b' ');
    out.extend_from_slice(content_hash(body).as_bytes());
    out.push(b'\n');
    out.extend_from_slice(body);
    out
}

/// The body of a sealed file, or `None` when it is of another kind or version, truncated
/// or altered.
pub fn unseal<'a>(kind: &str, bytes: &'a [u8]) -> Option<&'a [u8]> {
    let nl = bytes.iter().position(|&b| b == b'\n')?;
    let (head, body) = (&bytes[..nl], &bytes[nl + 1..]);
    let head = std::str::from_utf8(head).ok()?;
    let (k, hash) = head.split_once(' ')?;
    (k == kind && hash == content_hash(body)).then_some(body)
}

/// Reads and unseals the file at `path`; `None` when it is absent or not a valid `kind`.
pub fn read_sealed(kind: &str, path: &Path) -> Option<Vec<u8>> {
    let bytes = std::fs::read(path).ok()?;
    unseal(kind, &bytes).map(<[u8]>::to_vec)
}

/// Writes `bytes` to `path` atomically (a temporary file in the same directory, then a
/// rename), creating the directory. Readers in other processes never see a partial file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp: PathBuf = dir.join(format!(".{name}.{}.{nanos}.tmp", std::process::id()));
    let written = std::fs::File::create(&tmp).and_then(|mut f| f.write_all(bytes));
    match written.and_then(|()| std::fs::rename(&tmp, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// The version of the source file a derived entry was built from.
#[derive(Serialize, Deserialize)]
struct Source {
    path: PathBuf,
    stamp: Stamp,
    hash: String,
}

/// A cache entry derived from one source file, as [`derived`] found it.
pub enum Derived {
    /// The entry of the source's current version, read back without reading the source.
    Cached(Vec<u8>),
    /// The source had to be read (no entry yet, or the source changed): its text. The entry
    /// was rebuilt from it, best effort.
    Read(String),
}

/// The entry at `entry` (of `kind`) that `build` derives from the text of `source`: read back
/// while the source keeps its stamp; when the stamp moved, the source's content hash decides
/// whether the entry still holds (then it is re-stamped) or is rebuilt. `build` returning
/// `None` writes no entry (the source is read each time). `None`: the source cannot be read.
pub fn derived(
    kind: &str,
    source: &Path,
    entry: &Path,
    build: impl FnOnce(&str) -> Option<Vec<u8>>,
) -> Option<Derived> {
    let stamp = Stamp::of(source)?;
    let cached = read_sealed(kind, entry).and_then(|bytes| {
        let nl = bytes.iter().position(|&b| b == b'\n')?;
        let head: Source = serde_json::from_slice(&bytes[..nl]).ok()?;
        (head.path == source).then(|| (head, bytes[nl + 1..].to_vec()))
    });
    let cached = match cached {
        Some((head, body)) if head.stamp == stamp => return Some(Derived::Cached(body)),
        other => other,
    };
    let text = std::fs::read_to_string(source).ok()?;
    let hash = content_hash(text.as_bytes());
    let body = match cached {
        // Same bytes under a new stamp (a checkout rewrote the file): the entry holds.
        Some((head, body)) if head.hash == hash => Some(body),
        _ => build(&text),
    };
    if let Some(body) = body {
        let head = Source {
            path: source.to_path_buf(),
            stamp,
            hash,
        };
        if let Ok(mut bytes) = serde_json::to_vec(&head) {
            bytes.push(b'\n');
            bytes.extend_from_slice(&body);
            // Best effort: without the entry the next process reads the source again.
            let _ = write_atomic(entry, &seal(kind, &bytes));
        }
    }
    Some(Derived::Read(text))
}

/// A file name for the cache entry of `path`: its sanitized name plus a hash of the whole
/// path, so two inputs with the same name never share an entry.
pub fn entry_name(path: &Path, ext: &str) -> String {
    let full = path.to_string_lossy();
    let stem = path
        .file_stem()
        .map(|s| crate::sanitize(&s.to_string_lossy()))
        .unwrap_or_default();
    format!("{stem}-{}.{ext}", &content_hash(full.as_bytes())[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_files_refuse_other_kinds_and_any_change() {
        let sealed = seal("k/1", b"body\n");
        assert_eq!(unseal("k/1", &sealed), Some(&b"body\n"[..]));
        assert_eq!(unseal("k/2", &sealed), None, "another version");
        assert_eq!(unseal("j/1", &sealed), None, "another kind");
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() = b'X';
        assert_eq!(unseal("k/1", &flipped), None, "an altered byte");
        assert_eq!(
            unseal("k/1", &sealed[..sealed.len() - 2]),
            None,
            "truncated"
        );
        assert_eq!(unseal("k/1", b"garbage without a newline"), None);
        assert_eq!(unseal("k/1", b""), None);
    }

    #[test]
    fn atomic_writes_replace_and_leave_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/x.idx");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(p.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert_ne!(
            entry_name(Path::new("/a/m/s.jsonl"), "idx"),
            entry_name(Path::new("/b/m/s.jsonl"), "idx")
        );
    }
}
