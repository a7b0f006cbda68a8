//! A tiny loopback HTTP server that answers from a script: for faults real registries
//! produce (429 with Retry-After, 5xx, slow or truncated answers) and for paging with `Link`
//! headers as Docker Hub and GHCR do; and for hostile ones (a body trickled one byte at a
//! time, a body of gigabytes made on the fly). Bounded: it serves at most `max_requests`,
//! stops writing when the client goes away, and stops on drop.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: String,
    /// Wait this long before answering.
    pub delay: Duration,
    /// Claim a longer body than sent, then close (a truncated answer).
    pub truncate: bool,
    /// Send the body one byte at a time, waiting this long before each byte (a registry
    /// that trickles: every read gets something, so no read timeout ever fires).
    pub trickle: Option<Duration>,
    /// Follow `body` with this many spaces, made on the fly (a huge answer that is still
    /// valid JSON). Counted in `Content-Length` unless `no_length`.
    pub pad: u64,
    /// Send no `Content-Length`: the body ends when the connection closes.
    pub no_length: bool,
}

impl Reply {
    /// A JSON answer.
    pub fn json(status: u16, body: &str) -> Self {
        Reply {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.to_string(),
            delay: Duration::ZERO,
            truncate: false,
            trickle: None,
            pad: 0,
            no_length: false,
        }
    }

    /// Sends the body one byte every `interval`.
    pub fn trickled(mut self, interval: Duration) -> Self {
        self.trickle = Some(interval);
        self
    }

    /// Follows the body with `bytes` spaces, made on the fly.
    pub fn padded(mut self, bytes: u64) -> Self {
        self.pad = bytes;
        self
    }

    /// Sends no `Content-Length` (the body ends when the connection closes).
    pub fn without_length(mut self) -> Self {
        self.no_length = true;
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// The server; requests are answered by `script(path_and_query, index)`.
pub struct FaultServer {
    /// `127.0.0.1:PORT`.
    pub host: String,
    stop: Arc<AtomicBool>,
    /// Requests served so far.
    pub hits: Arc<AtomicUsize>,
    /// Request lines seen, in order.
    pub log: Arc<Mutex<Vec<String>>>,
    /// Request lines with their headers (names lower-cased), in order.
    pub full_log: Arc<Mutex<Vec<Request>>>,
}

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET /path HTTP/1.1`.
    pub line: String,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body (read up to its `Content-Length`, at most 1 MiB), lossily as text.
    pub body: String,
}

impl Request {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

type Script = dyn Fn(&str, usize) -> Reply + Send + Sync;

impl FaultServer {
    /// Starts serving; at most `max_requests` are answered, then it stops by itself.
    pub fn start(
        max_requests: usize,
        script: impl Fn(&str, usize) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let host = listener.local_addr().expect("addr").to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let hits = Arc::new(AtomicUsize::new(0));
        let log = Arc::new(Mutex::new(Vec::new()));
        let full_log = Arc::new(Mutex::new(Vec::new()));
        let script: Arc<Script> = Arc::new(script);
        {
            let (stop, hits, log) = (Arc::clone(&stop), Arc::clone(&hits), Arc::clone(&log));
            let full_log = Arc::clone(&full_log);
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) || hits.load(Ordering::SeqCst) >= max_requests {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let index = hits.fetch_add(1, Ordering::SeqCst);
                    let script = Arc::clone(&script);
                    let log = Arc::clone(&log);
                    let full_log = Arc::clone(&full_log);
                    let stop = Arc::clone(&stop);
                    std::thread::spawn(move || {
                        serve(stream, index, &*script, &log, &full_log, &stop)
                    });
                }
            });
        }
        FaultServer {
            host,
            stop,
            hits,
            log,
            full_log,
        }
    }

    /// Requests seen so far, with their headers.
    pub fn full_requests(&self) -> Vec<Request> {
        self.full_log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Request lines seen so far.
    pub fn requests(&self) -> Vec<String> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

fn serve(
    stream: TcpStream,
    index: usize,
    script: &Script,
    log: &Mutex<Vec<String>>,
    full_log: &Mutex<Vec<Request>>,
    stop: &AtomicBool,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line == "\r\n" || line == "\n" => break,
            Ok(_) => {
                if let Some((k, v)) = line.split_once(':') {
                    headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                }
            }
        }
    }
    // The body, so tests can check what a client sent (JSON of API calls).
    let length = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0)
        .min(1 << 20);
    let mut body = vec![0; length];
    if length > 0 && std::io::Read::read_exact(&mut reader, &mut body).is_err() {
        body.clear();
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_string();
    if let Ok(mut l) = log.lock() {
        l.push(request_line.trim().to_string());
    }
    if let Ok(mut l) = full_log.lock() {
        l.push(Request {
            line: request_line.trim().to_string(),
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        });
    }
    let reply = script(&path, index);
    std::thread::sleep(reply.delay);
    let mut stream = stream;
    let length = reply.body.len() as u64 + reply.pad + if reply.truncate { 100 } else { 0 };
    let mut head = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", reply.status);
    if !reply.no_length {
        head.push_str(&format!("Content-Length: {length}\r\n"));
    }
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    if stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    // Every loop below ends when the client hangs up (a write fails) or the server stops.
    match reply.trickle {
        Some(interval) => {
            for byte in reply.body.as_bytes() {
                std::thread::sleep(interval);
                if stop.load(Ordering::SeqCst)
                    || stream.write_all(&[*byte]).is_err()
                    || stream.flush().is_err()
                {
                    return;
                }
            }
        }
        None => {
            if stream.write_all(reply.body.as_bytes()).is_err() {
                return;
            }
        }
    }
    let chunk = [b' '; 64 * 1024];
    let mut left = reply.pad;
    while left > 0 && !stop.load(Ordering::SeqCst) {
        let n = left.min(chunk.len() as u64) as usize;
        if stream.write_all(&chunk[..n]).is_err() {
            return;
        }
        left -= n as u64;
    }
    let _ = stream.flush();
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so the thread ends.
        let _ = TcpStream::connect(&self.host);
    }
}
