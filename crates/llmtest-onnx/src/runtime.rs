//! Finding and loading the ONNX Runtime library, once per process.
//!
//! `ort` is built with `load-dynamic`: nothing is downloaded or linked at build time, and
//! the library (`libonnxruntime.so.1.31.1` from the `onnxruntime` or `onnxruntime-gpu`
//! wheel) is opened at run time. Where it comes from, in order:
//! 1. `ORT_DYLIB_PATH`;
//! 2. the `onnxruntime/capi/` folder of a Python environment: `.venv` or `.venv-onnx` under
//!    the project root, then `$VIRTUAL_ENV`;
//! 3. whatever `python3 -c 'import onnxruntime'` finds.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// Where the library was found, and how.
#[derive(Clone, Debug)]
pub(crate) struct Found {
    pub path: PathBuf,
    pub how: String,
}

/// Every place looked at, with why it did not do.
#[derive(Clone, Debug)]
pub(crate) struct NotFound {
    pub tried: Vec<String>,
}

impl NotFound {
    pub fn message(&self) -> String {
        format!(
            "onnx runtime library not found (tried: {}); install it with `pip install onnxruntime==1.31.1` (CPU) or `onnxruntime-gpu==1.31.1` into `.venv`, or set ORT_DYLIB_PATH",
            self.tried.join("; ")
        )
    }
}

/// Looks for the library; `root` is the project root (for `.venv`), `dylib_env` the value of
/// `ORT_DYLIB_PATH` and `venv_env` of `VIRTUAL_ENV` (passed in so tests need no global state).
pub(crate) fn find_library(
    root: &Path,
    dylib_env: Option<&str>,
    venv_env: Option<&str>,
    python: Option<&str>,
) -> Result<Found, NotFound> {
    let mut tried = Vec::new();
    if let Some(p) = dylib_env.filter(|p| !p.is_empty()) {
        let path = PathBuf::from(p);
        if path.is_file() {
            return Ok(Found {
                path,
                how: "ORT_DYLIB_PATH".into(),
            });
        }
        // An explicit setting that is wrong must not be papered over by discovery.
        return Err(NotFound {
            tried: vec![format!("ORT_DYLIB_PATH={p}: no such file")],
        });
    }
    tried.push("ORT_DYLIB_PATH: not set".into());

    let mut venvs: Vec<(PathBuf, String)> = vec![
        (root.join(".venv"), ".venv".into()),
        (root.join(".venv-onnx"), ".venv-onnx".into()),
    ];
    if let Some(v) = venv_env.filter(|v| !v.is_empty()) {
        venvs.push((PathBuf::from(v), "VIRTUAL_ENV".into()));
    }
    for (venv, label) in venvs {
        if !venv.is_dir() {
            tried.push(format!("{label}: no such directory"));
            continue;
        }
        match site_packages(&venv)
            .into_iter()
            .find_map(|sp| lib_in_package(&sp.join("onnxruntime")))
        {
            Some(path) => {
                return Ok(Found {
                    path,
                    how: format!("python environment {label}"),
                });
            }
            None => tried.push(format!("{label}: no onnxruntime package")),
        }
    }

    if let Some(py) = python {
        match python_package_dir(py) {
            Ok(dir) => match lib_in_package(&dir) {
                Some(path) => {
                    return Ok(Found {
                        path,
                        how: format!("`{py} -c 'import onnxruntime'`"),
                    });
                }
                None => tried.push(format!(
                    "{py}: onnxruntime at {} has no library in capi/",
                    dir.display()
                )),
            },
            Err(why) => tried.push(format!("{py}: {why}")),
        }
    }
    Err(NotFound { tried })
}

fn site_packages(venv: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for lib in ["lib", "lib64"] {
        if let Ok(entries) = std::fs::read_dir(venv.join(lib)) {
            let mut dirs: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("python"))
                })
                .map(|p| p.join("site-packages"))
                .filter(|p| p.is_dir())
                .collect();
            dirs.sort();
            out.extend(dirs);
        }
    }
    let win = venv.join("Lib").join("site-packages");
    if win.is_dir() {
        out.push(win);
    }
    out
}

/// The library inside an `onnxruntime` package directory. The wheels ship only the versioned
/// file (`libonnxruntime.so.1.31.1`), so match on the prefix.
fn lib_in_package(pkg: &Path) -> Option<PathBuf> {
    let capi = pkg.join("capi");
    let prefix = format!("{}onnxruntime", std::env::consts::DLL_PREFIX);
    let mut libs: Vec<PathBuf> = std::fs::read_dir(&capi)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let Some(name) = p.file_name().and_then(|n| n.to_str()) else {
                return false;
            };
            let Some(rest) = name.strip_prefix(&prefix) else {
                return false;
            };
            // not libonnxruntime_providers_*.so
            rest.starts_with(std::env::consts::DLL_SUFFIX)
                || (rest.starts_with('.')
                    && rest.contains(std::env::consts::DLL_SUFFIX.trim_start_matches('.')))
        })
        .collect();
    libs.sort();
    libs.pop()
}

fn python_package_dir(python: &str) -> Result<PathBuf, String> {
    let mut child = Command::new(python)
        .args([
            "-c",
            "import os, onnxruntime; print(os.path.dirname(onnxruntime.__file__))",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run it ({e})"))?;
    // Bounded: a broken interpreter must not hang the run.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let out = child.wait_with_output().map_err(|e| e.to_string())?;
                if !status.success() {
                    return Err("no onnxruntime module".into());
                }
                let dir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
                return Ok(PathBuf::from(dir));
            }
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("timed out importing onnxruntime".into());
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// The loaded library: one per process (ONNX Runtime allows one environment).
pub(crate) struct Runtime {
    pub found: Found,
    pub version: String,
    pub providers: Vec<String>,
    pub env: ort::environment::Environment,
}

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// Loads the library on first use; later calls return the same result (a failed load is
/// not retried: the process would keep a half-initialised library otherwise).
pub(crate) fn runtime(root: &Path) -> Result<&'static Runtime, String> {
    RUNTIME
        .get_or_init(|| init(root))
        .as_ref()
        .map_err(Clone::clone)
}

/// The runtime if it has been loaded already.
pub(crate) fn loaded() -> Option<&'static Result<Runtime, String>> {
    RUNTIME.get()
}

fn init(root: &Path) -> Result<Runtime, String> {
    let dylib = std::env::var("ORT_DYLIB_PATH").ok();
    let venv = std::env::var("VIRTUAL_ENV").ok();
    let found = find_library(root, dylib.as_deref(), venv.as_deref(), Some("python3"))
        .map_err(|e| e.message())?;
    let builder = ort::init_from(&found.path).map_err(|e| {
        format!(
            "cannot load onnx runtime from {} (found via {}): {e}",
            found.path.display(),
            found.how
        )
    })?;
    let env = builder
        .with_name("llmtest")
        .with_telemetry(false)
        .build()
        .map_err(|e| format!("cannot create the onnx runtime environment: {e}"))?;
    let version = version_string(&found.path);
    let providers = available_providers();
    Ok(Runtime {
        found,
        version,
        providers,
        env,
    })
}

/// `OrtGetApiBase()->GetVersionString()`: `ort` only reads it to check compatibility, so ask
/// the (already loaded) library again.
fn version_string(path: &Path) -> String {
    // SAFETY: dlopen of a library that is already open only bumps its reference count, and
    // the symbol has the C signature `const OrtApiBase* OrtGetApiBase(void)`.
    unsafe {
        let Ok(lib) = libloading::Library::new(path) else {
            return "unknown".into();
        };
        let Ok(get) =
            lib.get::<unsafe extern "C" fn() -> *const ort::sys::OrtApiBase>(b"OrtGetApiBase")
        else {
            return "unknown".into();
        };
        let base = get();
        if base.is_null() {
            return "unknown".into();
        }
        let v = ((*base).GetVersionString)();
        if v.is_null() {
            "unknown".into()
        } else {
            std::ffi::CStr::from_ptr(v).to_string_lossy().into_owned()
        }
    }
}

/// The execution providers compiled into the loaded library (`CPUExecutionProvider`, …).
fn available_providers() -> Vec<String> {
    let api = ort::api();
    let mut list: *mut *mut std::ffi::c_char = std::ptr::null_mut();
    let mut n: std::ffi::c_int = 0;
    // SAFETY: plain C API calls on the loaded library; the list is released below.
    unsafe {
        let status = (api.GetAvailableProviders)(&mut list, &mut n);
        if !status.0.is_null() {
            (api.ReleaseStatus)(status.0);
            return Vec::new();
        }
        let out = (0..n as usize)
            .map(|i| {
                std::ffi::CStr::from_ptr(*list.add(i))
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        let status = (api.ReleaseAvailableProviders)(list, n);
        if !status.0.is_null() {
            (api.ReleaseStatus)(status.0);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_wheel(venv: &Path, files: &[&str]) {
        let capi = venv.join("lib/python3.12/site-packages/onnxruntime/capi");
        std::fs::create_dir_all(&capi).unwrap();
        for f in files {
            std::fs::write(capi.join(f), b"").unwrap();
        }
    }

    #[test]
    fn finds_the_versioned_library_of_a_venv() {
        let root = tempfile::tempdir().unwrap();
        fake_wheel(
            &root.path().join(".venv-onnx"),
            &[
                "libonnxruntime_providers_shared.so",
                "libonnxruntime.so.1.31.1",
            ],
        );
        let found = find_library(root.path(), None, None, None).unwrap();
        assert_eq!(found.path.file_name().unwrap(), "libonnxruntime.so.1.31.1");
        assert_eq!(found.how, "python environment .venv-onnx");
    }

    #[test]
    fn ort_dylib_path_wins_and_a_wrong_one_is_an_error() {
        let root = tempfile::tempdir().unwrap();
        fake_wheel(&root.path().join(".venv"), &["libonnxruntime.so.1.31.1"]);
        let lib = root.path().join("custom.so");
        std::fs::write(&lib, b"").unwrap();
        let found = find_library(root.path(), Some(lib.to_str().unwrap()), None, None).unwrap();
        assert_eq!((found.path, found.how.as_str()), (lib, "ORT_DYLIB_PATH"));
        let err = find_library(
            root.path(),
            Some("/nonexistent/libonnxruntime.so"),
            None,
            None,
        )
        .unwrap_err();
        assert_eq!(
            err.tried,
            ["ORT_DYLIB_PATH=/nonexistent/libonnxruntime.so: no such file"]
        );
    }

    #[test]
    fn says_everything_it_tried() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join(".venv/lib/python3.12/site-packages")).unwrap();
        let venv = tempfile::tempdir().unwrap();
        let err = find_library(
            root.path(),
            Some(""),
            Some(venv.path().to_str().unwrap()),
            Some("/nonexistent/python3"),
        )
        .unwrap_err();
        let msg = err.message();
        for part in [
            "ORT_DYLIB_PATH: not set",
            ".venv: no onnxruntime package",
            ".venv-onnx: no such directory",
            "VIRTUAL_ENV: no onnxruntime package",
            "/nonexistent/python3: cannot run it",
        ] {
            assert!(msg.contains(part), "{part:?} missing from {msg}");
        }
    }
}
