//! The live view: a small HTTP server showing the annotated stream and the
//! latest detections.
//!
//! Routes: `/` (a page with the stream and the detections), `/stream`
//! (MJPEG over HTTP, `multipart/x-mixed-replace`), `/frame.jpg` (the latest
//! frame), `/detections.json` (the latest frame's JSON line). A bare port
//! binds to loopback (`127.0.0.1`); other interfaces only when asked for.

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tiny_http::{Header, Response, Server};

use crate::Error;

const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>ferrite detect</title>
<style>body{font-family:sans-serif;background:#111;color:#eee;margin:16px}
img{max-width:100%;border:1px solid #444}pre{background:#222;padding:8px;white-space:pre-wrap}</style>
</head><body>
<h3>ferrite detect &mdash; live view</h3>
<img id="stream" src="/frame.jpg" alt="annotated stream">
<p id="summary">waiting for detections&hellip;</p>
<pre id="json"></pre>
<script>
function show(j) {
  const d = j.detections || [];
  document.getElementById('summary').textContent =
    `${j.source || ''}: ${d.length} detection(s)` +
    d.map(x => ` ${x.label} ${x.score.toFixed(2)}`).join(',');
  document.getElementById('json').textContent = JSON.stringify(j);
}
// The first state is fetched synchronously, so the page is complete when it
// has loaded (headless screenshots); then it follows the stream.
try {
  const r = new XMLHttpRequest();
  r.open('GET', '/detections.json', false);
  r.send();
  show(JSON.parse(r.responseText));
} catch (e) {}
async function poll() {
  try {
    const r = await fetch('/detections.json', {cache: 'no-store'});
    show(await r.json());
  } catch (e) {}
  setTimeout(poll, 500);
}
setTimeout(poll, 500);
// The latest frame is part of the page load; the endless MJPEG stream
// replaces it once the page has loaded.
window.addEventListener('load', () => {
  document.getElementById('stream').src = '/stream';
});
</script></body></html>
"#;

struct Latest {
    jpeg: Arc<Vec<u8>>,
    json: String,
    seq: u64,
}

struct Shared {
    latest: Mutex<Latest>,
    changed: Condvar,
    stop: AtomicBool,
}

/// A running live view server. Dropping it stops the server.
pub struct LiveView {
    addr: SocketAddr,
    server: Arc<Server>,
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Resolves `--serve ADDR`: a bare port means `127.0.0.1:PORT`.
pub fn parse_addr(addr: &str) -> Result<SocketAddr, Error> {
    let full = if addr.parse::<u16>().is_ok() {
        format!("127.0.0.1:{addr}")
    } else {
        addr.to_string()
    };
    full.to_socket_addrs()
        .map_err(|e| Error::Server(format!("bad address '{addr}': {e}")))?
        .next()
        .ok_or_else(|| Error::Server(format!("address '{addr}' resolves to nothing")))
}

impl LiveView {
    /// Binds `addr` (see [`parse_addr`]) and serves in a background thread.
    pub fn start(addr: &str) -> Result<Self, Error> {
        let sock = parse_addr(addr)?;
        if !sock.ip().is_loopback() {
            eprintln!("live view: serving on {sock}, reachable from other machines");
        }
        let server = Arc::new(
            Server::http(sock).map_err(|e| Error::Server(format!("cannot bind {sock}: {e}")))?,
        );
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| Error::Server("not an IP socket".into()))?;
        let shared = Arc::new(Shared {
            latest: Mutex::new(Latest {
                jpeg: Arc::new(Vec::new()),
                json: "{}".into(),
                seq: 0,
            }),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let (srv, sh) = (server.clone(), shared.clone());
        let thread = std::thread::spawn(move || serve(srv, sh));
        Ok(LiveView {
            addr,
            server,
            shared,
            thread: Some(thread),
        })
    }

    /// The bound address (with the real port when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Publishes a new annotated frame (JPEG) and its detections JSON.
    pub fn publish(&self, jpeg: Vec<u8>, json: String) {
        let mut l = self.shared.latest.lock().unwrap_or_else(|p| p.into_inner());
        l.jpeg = Arc::new(jpeg);
        l.json = json;
        l.seq += 1;
        self.shared.changed.notify_all();
    }
}

impl Drop for LiveView {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.changed.notify_all();
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn header(k: &str, v: &str) -> Header {
    Header::from_bytes(k.as_bytes(), v.as_bytes()).expect("static header is valid")
}

fn serve(server: Arc<Server>, shared: Arc<Shared>) {
    for req in server.incoming_requests() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let path = req.url().split('?').next().unwrap_or("/").to_string();
        let snapshot = || {
            let l = shared.latest.lock().unwrap_or_else(|p| p.into_inner());
            (l.jpeg.clone(), l.json.clone())
        };
        let result = match path.as_str() {
            "/" | "/index.html" => req.respond(
                Response::from_string(PAGE)
                    .with_header(header("Content-Type", "text/html; charset=utf-8")),
            ),
            "/detections.json" => req.respond(
                Response::from_string(snapshot().1)
                    .with_header(header("Content-Type", "application/json"))
                    .with_header(header("Cache-Control", "no-store")),
            ),
            "/frame.jpg" => {
                let jpeg = snapshot().0;
                req.respond(
                    Response::from_data(jpeg.as_slice())
                        .with_header(header("Content-Type", "image/jpeg"))
                        .with_header(header("Cache-Control", "no-store")),
                )
            }
            "/stream" => {
                let sh = shared.clone();
                std::thread::spawn(move || stream(req, sh));
                Ok(())
            }
            _ => req.respond(Response::from_string("not found").with_status_code(404)),
        };
        if let Err(e) = result {
            eprintln!("live view: {path}: {e}");
        }
    }
}

/// Writes frames to one `/stream` client until it goes away or the server stops.
fn stream(req: tiny_http::Request, shared: Arc<Shared>) {
    let mut w = req.into_writer();
    let head = "HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n\
                Cache-Control: no-store\r\nConnection: close\r\n\r\n--frame\r\n";
    if w.write_all(head.as_bytes()).is_err() {
        return;
    }
    let mut sent = u64::MAX;
    loop {
        let jpeg = {
            let mut l = shared.latest.lock().unwrap_or_else(|p| p.into_inner());
            while (l.seq == sent || l.jpeg.is_empty()) && !shared.stop.load(Ordering::SeqCst) {
                l = shared
                    .changed
                    .wait_timeout(l, Duration::from_millis(500))
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            if shared.stop.load(Ordering::SeqCst) {
                return;
            }
            sent = l.seq;
            l.jpeg.clone()
        };
        // Each part ends with the next boundary: browsers show a part only
        // once they see the boundary after it.
        let part = format!(
            "Content-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
            jpeg.len()
        );
        if w.write_all(part.as_bytes()).is_err()
            || w.write_all(&jpeg).is_err()
            || w.write_all(b"\r\n--frame\r\n").is_err()
            || w.flush().is_err()
        {
            return;
        }
    }
}
