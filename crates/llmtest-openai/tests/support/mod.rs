//! An OpenAI-compatible HTTP/1.1 server on 127.0.0.1 that does exactly what each test scripts:
//! statuses, headers, SSE events at chosen instants, and the faults real servers and proxies
//! produce (resets, stalls, truncated bodies). Written on raw TCP so that every byte and every
//! instant is under the test's control. Bounded: each connection lives at most 60 s and the
//! server stops when dropped.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How a streamed response ends.
#[derive(Clone, Debug)]
pub enum End {
    /// The terminating chunk of the chunked body.
    Finish,
    /// Sends nothing more for this long, then closes.
    Stall(Duration),
    /// Closes without the terminating chunk.
    Truncate,
    /// Resets the connection.
    Reset,
}

/// One scripted answer.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A whole response.
    Status {
        code: u16,
        headers: Vec<(String, String)>,
        body: String,
        delay: Duration,
    },
    /// A chunked `text/event-stream`: each piece is written after its delay (from the previous
    /// write), as its own chunk.
    Sse {
        pieces: Vec<(Duration, String)>,
        end: End,
    },
    /// Resets the connection without answering.
    Reset,
    /// Closes the connection without answering (what a server does to an idle kept-alive
    /// connection).
    Close,
}

impl Reply {
    pub fn json(body: Value) -> Reply {
        Reply::Status {
            code: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }
    pub fn status(code: u16, body: &str) -> Reply {
        Reply::Status {
            code,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into(),
            delay: Duration::ZERO,
        }
    }
    pub fn header(mut self, k: &str, v: &str) -> Reply {
        if let Reply::Status { headers, .. } = &mut self {
            headers.push((k.into(), v.into()));
        }
        self
    }
    /// A well-formed chat stream of `tokens`, each after its delay, with usage and `[DONE]`.
    pub fn chat_stream(tokens: &[(Duration, &str)]) -> Reply {
        let mut pieces = Vec::new();
        for (i, (d, t)) in tokens.iter().enumerate() {
            let mut delta = json!({"content": t});
            if i == 0 {
                delta["role"] = json!("assistant");
            }
            pieces.push((*d, data(&json!({"model": "scripted", "choices": [{"index": 0, "delta": delta, "finish_reason": null}]}))));
        }
        pieces.push((
            Duration::ZERO,
            data(&json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})),
        ));
        pieces.push((Duration::ZERO, data(&json!({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": tokens.len()}}))));
        pieces.push((Duration::ZERO, "data: [DONE]\n\n".into()));
        Reply::Sse {
            pieces,
            end: End::Finish,
        }
    }
}

/// `data: …\n\n` for a JSON value.
pub fn data(v: &Value) -> String {
    format!("data: {v}\n\n")
}

/// What the server saw and did for one request.
#[derive(Clone, Debug)]
pub struct Hit {
    pub path: String,
    pub body: Value,
    pub authorization: Option<String>,
    /// When the request was fully read.
    pub received: Instant,
    /// When each SSE piece had been written (after the socket accepted it).
    pub writes: Vec<Instant>,
}

pub type Script = Arc<dyn Fn(usize, &Hit) -> Reply + Send + Sync>;

pub struct TestServer {
    pub addr: SocketAddr,
    pub hits: Arc<Mutex<Vec<Hit>>>,
    task: Option<tokio::task::JoinHandle<()>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

async fn accept_loop(listener: TcpListener, hits: Arc<Mutex<Vec<Hit>>>, script: Script) {
    // Bounded: at most 10 000 connections per server.
    for _ in 0..10_000 {
        let Ok((sock, _)) = listener.accept().await else {
            break;
        };
        let (h, script) = (hits.clone(), script.clone());
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(60), serve(sock, h, script)).await;
        });
    }
}

impl TestServer {
    /// Serves `script(i, hit)` for the i-th request (0-based, across connections).
    pub async fn start(
        script: impl Fn(usize, &Hit) -> Reply + Send + Sync + 'static,
    ) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let script: Script = Arc::new(script);
        let task = tokio::spawn(accept_loop(listener, hits.clone(), script));
        TestServer {
            addr,
            hits,
            task: Some(task),
            stop: None,
        }
    }

    /// As `start`, on a thread and runtime of its own, so that the server's timers and
    /// writes do not wait for the client's tasks (for timing measurements).
    pub fn start_isolated(
        script: impl Fn(usize, &Hit) -> Reply + Send + Sync + 'static,
    ) -> TestServer {
        let hits = Arc::new(Mutex::new(Vec::new()));
        let script: Script = Arc::new(script);
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let h = hits.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                tokio::select! {
                    _ = accept_loop(listener, h, script) => {}
                    _ = stop_rx => {}
                    _ = tokio::time::sleep(Duration::from_secs(300)) => {}
                }
            });
        });
        let addr = addr_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        TestServer {
            addr,
            hits,
            task: None,
            stop: Some(stop_tx),
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.hits.lock().unwrap().len()
    }
}

/// Reads one request; `None` at a clean end of the connection.
async fn read_request(
    sock: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> Option<(String, Option<String>, Vec<u8>)> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let mut lines = head.lines();
            let path = lines.next()?.split_whitespace().nth(1)?.to_owned();
            let mut len = 0usize;
            let mut auth = None;
            for l in lines {
                if let Some((k, v)) = l.split_once(':') {
                    if k.eq_ignore_ascii_case("content-length") {
                        len = v.trim().parse().ok()?;
                    }
                    if k.eq_ignore_ascii_case("authorization") {
                        auth = Some(v.trim().to_owned());
                    }
                }
            }
            let start = end + 4;
            while buf.len() < start + len {
                let mut tmp = [0u8; 8192];
                let n = sock.read(&mut tmp).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&tmp[..n]);
            }
            let body = buf[start..start + len].to_vec();
            buf.drain(..start + len);
            return Some((path, auth, body));
        }
        let mut tmp = [0u8; 8192];
        let n = sock.read(&mut tmp).await.ok()?;
        if n == 0 || buf.len() > 1 << 20 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    }
}

async fn serve(mut sock: TcpStream, hits: Arc<Mutex<Vec<Hit>>>, script: Script) {
    sock.set_nodelay(true).unwrap();
    let mut buf = Vec::new();
    // Keep-alive: several requests per connection, at most 1000.
    for _ in 0..1000 {
        let Some((path, authorization, body)) = read_request(&mut sock, &mut buf).await else {
            return;
        };
        let hit = Hit {
            path,
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            authorization,
            received: Instant::now(),
            writes: Vec::new(),
        };
        let idx = {
            let mut h = hits.lock().unwrap();
            h.push(hit.clone());
            h.len() - 1
        };
        let reply = script(idx, &hit);
        match reply {
            Reply::Reset => {
                let _ = sock.set_zero_linger();
                return;
            }
            Reply::Close => return,
            Reply::Status {
                code,
                headers,
                body,
                delay,
            } => {
                tokio::time::sleep(delay).await;
                let mut head = format!("HTTP/1.1 {code} X\r\ncontent-length: {}\r\n", body.len());
                for (k, v) in headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("\r\n");
                head.push_str(&body);
                if sock.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
            }
            Reply::Sse { pieces, end } => {
                let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n";
                if sock.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                // Each instant is taken right after a sleep that ends at an absolute target, so
                // timer jitter does not accumulate over the stream.
                let mut next = tokio::time::Instant::now();
                for (delay, piece) in pieces {
                    next += delay;
                    tokio::time::sleep_until(next).await;
                    if piece.is_empty() {
                        continue;
                    }
                    let chunk = format!("{:x}\r\n{piece}\r\n", piece.len());
                    if sock.write_all(chunk.as_bytes()).await.is_err() {
                        return;
                    }
                    let at = Instant::now();
                    hits.lock().unwrap()[idx].writes.push(at);
                }
                match end {
                    End::Finish => {
                        if sock.write_all(b"0\r\n\r\n").await.is_err() {
                            return;
                        }
                    }
                    End::Stall(d) => {
                        tokio::time::sleep(d).await;
                        return;
                    }
                    End::Truncate => {
                        let _ = sock.write_all(b"1a\r\ndata: {\"choi").await;
                        return;
                    }
                    End::Reset => {
                        let _ = sock.set_zero_linger();
                        return;
                    }
                }
            }
        }
    }
}

/// A `ModelConfig` for the `openai` backend with these options.
pub fn model(name: &str, max_concurrency: usize, options: Value) -> llmtest_spec::ModelConfig {
    llmtest_spec::ModelConfig {
        max_concurrency,
        ..llmtest_spec::ModelConfig::new(name, "openai", options)
    }
}

/// A one-message chat request.
pub fn chat(text: &str, n: u32) -> llmtest_backend::Request {
    llmtest_backend::Request {
        model: "m".into(),
        suite: "s".into(),
        case_id: "c".into(),
        prompt: llmtest_spec::Prompt::Chat(vec![llmtest_spec::Message {
            role: llmtest_spec::Role::User,
            content: text.into(),
        }]),
        params: Default::default(),
        n,
    }
}

/// A completion request.
pub fn completion(text: &str, n: u32) -> llmtest_backend::Request {
    llmtest_backend::Request {
        prompt: llmtest_spec::Prompt::Completion(text.into()),
        ..chat("", n)
    }
}
