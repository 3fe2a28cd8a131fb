//! The HTML report in a real headless browser (Debian's `chromium`, installed by
//! `ci/setup.sh`): rendered by `llmtest report` from a results.json of a live run, served
//! from a loopback server that counts requests, loaded with every other host unresolvable.
//! The page must log nothing to the console, fetch nothing but itself, draw the heat map and
//! the charts, and its case filter must hide what it should. A screenshot is written to
//! `target/llmtest/report-screenshot.png` (the one in docs/ is taken the same way).
//!
//! Skips when chromium is absent, unless `LLMTEST_REQUIRE_EXTERNAL=1`, which makes it fail.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn chromium() -> Option<PathBuf> {
    let candidates = ["chromium", "chromium-browser", "google-chrome", "chrome"];
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for c in candidates {
            let p = dir.join(c);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

fn skip(msg: &str) {
    if std::env::var("LLMTEST_REQUIRE_EXTERNAL").as_deref() == Ok("1") {
        panic!("LLMTEST_REQUIRE_EXTERNAL=1 but {msg}");
    }
    eprintln!("skipped: {msg}");
}

/// Serves one file at every path from 127.0.0.1 and records each request line.
struct Server {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicUsize>,
}

impl Server {
    fn start(body: Vec<u8>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicUsize::new(0));
        let (reqs, halt) = (requests.clone(), stop.clone());
        std::thread::spawn(move || {
            // Bounded: at most ~60 s of polling, however the browser behaves.
            for _ in 0..6000 {
                if halt.load(Ordering::SeqCst) > 0 {
                    return;
                }
                match listener.accept() {
                    Ok((mut s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                        let mut r = BufReader::new(s.try_clone().unwrap());
                        let mut line = String::new();
                        if r.read_line(&mut line).is_err() || line.is_empty() {
                            continue;
                        }
                        // Drain the headers.
                        let mut h = String::new();
                        while r.read_line(&mut h).is_ok() && h != "\r\n" && !h.is_empty() {
                            h.clear();
                        }
                        reqs.lock().unwrap().push(line.trim().to_owned());
                        let _ = write!(
                            s,
                            "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = s.write_all(&body);
                        let mut rest = Vec::new();
                        let _ = s.set_read_timeout(Some(Duration::from_millis(50)));
                        let _ = s.read_to_end(&mut rest);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Server {
            port,
            requests,
            stop,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(1, Ordering::SeqCst);
    }
}

fn browser(chrome: &Path, profile: &Path, args: &[&str], url: &str) -> (String, String) {
    let out = Command::new("timeout")
        .arg("120")
        .arg(chrome)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-extensions",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            // Any host but the test's own server is unresolvable: a stray fetch fails and logs.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .output()
        .expect("chromium runs");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn html_report_renders_in_headless_chromium() {
    let Some(chrome) = chromium() else {
        skip("chromium is not installed (ci/setup.sh installs it)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let results = repo().join("fixtures/results/live-local.json");
    let baseline = repo().join("fixtures/results/ci-replay.json");
    let page = tmp.path().join("report.html");
    let st = Command::new(env!("CARGO_BIN_EXE_llmtest"))
        .arg("report")
        .arg(&results)
        .arg("--baseline")
        .arg(&baseline)
        .args(["--format", "html", "-o"])
        .arg(&page)
        .status()
        .unwrap();
    assert!(st.success(), "llmtest report failed");
    let html = std::fs::read_to_string(&page).unwrap();
    for external in [
        "src=\"http",
        "href=\"http",
        "src=\"//",
        "href=\"//",
        "@import",
        "url(http",
    ] {
        assert!(
            !html.contains(external),
            "the page references an external resource: {external}"
        );
    }

    // What the page must show, from the results themselves.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&results).unwrap()).unwrap();
    let cases = json["cases"].as_array().unwrap();
    let cells: usize = json["summary"]["matrix"]
        .as_object()
        .unwrap()
        .values()
        .map(|m| m.as_object().unwrap().len())
        .sum();
    let wrong = cases
        .iter()
        .filter(|c| {
            let o = c["outcome"].as_str().unwrap();
            matches!(
                o,
                "fail" | "unterminated_reasoning" | "code_timeout" | "code_error"
            )
        })
        .count();
    assert!(
        wrong > 0 && wrong < cases.len(),
        "the fixture should mix outcomes"
    );

    let server = Server::start(html.into_bytes());
    let profile = tmp.path().join("profile");
    let url = format!(
        "http://127.0.0.1:{}/report.html#cases?outcome=wrong",
        server.port
    );
    let (dom, log) = browser(&chrome, &profile, &["--dump-dom"], &url);
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(
        console.is_empty(),
        "console messages:\n{}",
        console.join("\n")
    );
    assert!(
        dom.contains("data-ready=\"1\""),
        "the page script did not finish:\n{log}"
    );

    // The heat map: one coloured cell per model × suite.
    let heat = dom.matches("class=\"cell\"").count();
    assert_eq!(heat, cells, "heat-map cells");
    assert!(
        dom.contains("style=\"background:rgb("),
        "heat-map cells are coloured"
    );
    // The interval chart and the latency charts were drawn.
    assert!(dom.contains("<svg id=\"wilson\""), "interval chart");
    assert!(dom.matches("class=\"ci\"").count() >= 1, "interval bars");
    assert!(
        dom.contains("<svg id=\"ttft\""),
        "TTFT chart (the fixture is a live run)"
    );
    assert!(dom.matches("class=\"box\"").count() >= 1, "latency boxes");

    // The filter from the URL fragment: only wrong answers are visible, and it says so.
    let rows: Vec<&str> = dom
        .match_indices("<tr id=\"case-")
        .map(|(i, _)| &dom[i..i + dom[i..].find('>').unwrap()])
        .collect();
    assert_eq!(rows.len(), cases.len(), "one row per case");
    let visible: Vec<&&str> = rows.iter().filter(|t| !t.contains(" hidden")).collect();
    assert_eq!(visible.len(), wrong, "visible rows: {visible:?}");
    assert!(
        visible.iter().all(|t| t.contains("data-group=\"wrong\"")),
        "{visible:?}"
    );
    assert!(
        dom.contains(&format!("showing {wrong} of {}", cases.len())),
        "the count follows the filter"
    );

    let shot = repo().join("target/llmtest/report-screenshot.png");
    std::fs::create_dir_all(shot.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(&shot);
    let url = format!("http://127.0.0.1:{}/report.html", server.port);
    let (_, log) = browser(
        &chrome,
        &profile,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1400,1600",
            "--hide-scrollbars",
        ],
        &url,
    );
    let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot ({e}):\n{log}"));
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "a real screenshot"
    );

    // Two loads, two requests: the page fetched nothing else.
    let reqs = server.requests.lock().unwrap().clone();
    assert_eq!(reqs.len(), 2, "requests: {reqs:?}");
    assert!(
        reqs.iter().all(|r| r.starts_with("GET /report.html ")),
        "{reqs:?}"
    );
}

#[test]
fn report_renders_saved_results_in_every_format_and_refuses_foreign_files() {
    let tmp = tempfile::tempdir().unwrap();
    let results = repo().join("fixtures/results/live-local.json");
    for (fmt, needle) in [
        (
            "md",
            "| **tiny-qwen2** | tiny-qwen2-llamacpp | ❌ 0/8 0% (0–32) |",
        ),
        ("junit", "<testsuite name=\"seed-math@reference-answers\""),
        ("json", "\"schema_version\": 1"),
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_llmtest"))
            .arg("report")
            .arg(&results)
            .args(["--format", fmt])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{fmt}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains(needle), "{fmt}: {out}");
    }
    let bad = tmp.path().join("bad.json");
    std::fs::write(&bad, "{\n  \"schema_version\": 1,\n  oops\n}\n").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_llmtest"))
        .arg("report")
        .arg(&bad)
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("bad.json:3:3: not a results file"), "{e}");
    let future = tmp.path().join("v2.json");
    let text = std::fs::read_to_string(&results).unwrap().replacen(
        "\"schema_version\": 1",
        "\"schema_version\": 2",
        1,
    );
    std::fs::write(&future, text).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_llmtest"))
        .arg("report")
        .arg(&future)
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(
        e.contains("results schema version 2; this llmtest reads version 1"),
        "{e}"
    );
}
