//! The live view server over real HTTP on loopback.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use ferrite_targets::liveview::{parse_addr, LiveView};

/// GETs `path` and reads until the connection closes or `done` holds.
fn get_until(addr: std::net::SocketAddr, path: &str, done: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !done(&out) {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    out
}

fn get(addr: std::net::SocketAddr, path: &str, limit: usize) -> Vec<u8> {
    get_until(addr, path, |b| b.len() >= limit)
}

#[test]
fn serves_page_json_frame_and_stream() {
    let live = LiveView::start("127.0.0.1:0").unwrap();
    let addr = live.addr();
    assert!(addr.ip().is_loopback());
    let jpeg = vec![0xFF, 0xD8, 1, 2, 3, 0xFF, 0xD9];
    live.publish(jpeg.clone(), r#"{"detections":[{"label":"face"}]}"#.into());

    let page = String::from_utf8_lossy(&get(addr, "/", 1 << 20)).into_owned();
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("<img id=\"stream\" src=\"/frame.jpg\"") && page.contains("'/stream'"));

    let json = String::from_utf8_lossy(&get(addr, "/detections.json", 1 << 20)).into_owned();
    assert!(
        json.contains("application/json") && json.ends_with(r#"{"detections":[{"label":"face"}]}"#),
        "{json}"
    );

    let frame = get(addr, "/frame.jpg", 1 << 20);
    assert!(frame.ends_with(&jpeg));

    // The stream sends the latest frame as a multipart part right away.
    let stream = get_until(addr, "/stream", |b| b.ends_with(b"\xFF\xD9\r\n--frame\r\n"));
    let text = String::from_utf8_lossy(&stream).into_owned();
    assert!(
        text.contains("multipart/x-mixed-replace; boundary=frame"),
        "{text}"
    );
    assert!(
        text.contains("--frame\r\nContent-Type: image/jpeg\r\nContent-Length: 7\r\n\r\n"),
        "{text}"
    );

    let missing = String::from_utf8_lossy(&get(addr, "/nope", 1 << 20)).into_owned();
    assert!(missing.starts_with("HTTP/1.1 404"));
}

#[test]
fn a_bare_port_means_loopback() {
    assert_eq!(parse_addr("8080").unwrap().to_string(), "127.0.0.1:8080");
    assert_eq!(parse_addr("0.0.0.0:81").unwrap().to_string(), "0.0.0.0:81");
    assert!(parse_addr("not an address").is_err());
}
