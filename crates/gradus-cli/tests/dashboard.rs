//! `gradus dashboard`, run as a real server process over a SQLite study
//! that a background `gradus run` fills, spoken to over real sockets.
#![cfg(feature = "dashboard")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn gradus(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gradus"));
    c.current_dir(dir);
    c
}

/// Ends a child process when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the dashboard on a free port; returns it and its address.
fn dashboard(dir: &Path) -> (Killed, String) {
    let mut child = gradus(dir)
        .args(["dashboard", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.split("http://").nth(1).and_then(|r| r.split('/').next()).unwrap_or_else(|| panic!("{line}"));
    (Killed(child), addr.to_string())
}

/// Sends `request` as it is and returns the status code (0 when the server
/// closed the connection without one) and the body.
fn raw(addr: &str, request: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or(String::new(), |(_, b)| b.to_string());
    (status, body)
}

fn get(addr: &str, path: &str) -> (u16, String) {
    raw(addr, format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
}

fn create_study(dir: &Path) {
    let space =
        r#"{"x": {"type": "float", "low": 0, "high": 1}, "opt": {"type": "categorical", "choices": ["a", "b"]}}"#;
    let out = gradus(dir)
        .args([
            "study",
            "create",
            "--study",
            "live one",
            "--direction",
            "minimize",
            "--space",
            space,
            "--sampler",
            "random",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_page_follows_a_running_study_through_its_event_stream() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    create_study(d);
    let (_server, addr) = dashboard(d);
    let (status, body) = get(&addr, "/");
    assert_eq!(status, 200);
    assert!(body.contains("<a href=\"/study/live%20one\">live one</a>"), "{body}");
    let (status, page) = get(&addr, "/study/live%20one");
    assert_eq!(status, 200);
    assert!(page.contains("id=\"trial-count\"") && page.contains("new EventSource"), "{page}");
    // Follow the events while a `gradus run` adds a trial every ~0.3 s.
    let mut events = TcpStream::connect(&addr).unwrap();
    events.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(events, "GET /study/live%20one/events HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut reader = BufReader::new(events);
    let _run = Killed(
        gradus(d)
            .args(["run", "--study", "live one", "--trials", "12", "--", "sh", "-c", "sleep 0.3; echo {x}"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    let mut complete = std::collections::BTreeSet::new();
    let mut line = String::new();
    let mut events_seen = 0;
    while complete.len() < 12 && started.elapsed() < Duration::from_secs(60) {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        let Some(data) = line.strip_prefix("data: ") else { continue };
        events_seen += 1;
        let v: serde_json::Value = serde_json::from_str(data.trim()).unwrap();
        for t in v["trials"].as_array().unwrap() {
            if t["state"] == "complete" {
                complete.insert(t["number"].as_u64().unwrap());
            }
        }
    }
    assert_eq!(complete.len(), 12, "every trial seen complete through one stream");
    assert!(events_seen >= 4, "the trials came in several events as they finished, not at once: {events_seen}");
    // The incremental reads, as the page could make them.
    let (status, body) = get(&addr, "/study/live%20one/trials?since=0");
    assert_eq!(status, 200);
    let all: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(all["trials"].as_array().unwrap().len(), 12);
    let cursor = all["cursor"].as_u64().unwrap();
    let (_, body) = get(&addr, &format!("/study/live%20one/trials?since={cursor}"));
    assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["trials"], serde_json::json!([]));
    for kind in ["history", "intermediate", "importance", "parallel", "edf", "timeline", "slice"] {
        let (status, svg) = get(&addr, &format!("/study/live%20one/plot/{kind}"));
        assert_eq!(status, 200, "{kind}: {svg}");
        assert!(svg.contains("<svg") || svg.contains("Not drawn yet"), "{kind}: {svg}");
    }
}

#[test]
fn bad_requests_get_a_4xx_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    create_study(d);
    let (_server, addr) = dashboard(d);
    let mut bad: Vec<(Vec<u8>, &str)> = Vec::new();
    for i in 0..50 {
        let path = match i % 10 {
            0 => format!("/nothing/{i}"),
            1 => "/study/no%20such".to_string(),
            2 => "/study/live%20one/plot/pie".to_string(),
            3 => "/study/live%20one/trials?since=-1".to_string(),
            4 => "/study/live%20one/trials?since=zz".to_string(),
            5 => "/study/%ff%fe".to_string(),
            6 => "/study/live%20one/events/extra".to_string(),
            7 => format!("/{}", "a/".repeat(200)),
            8 => "/study/".to_string(),
            _ => "/study/live%20one/plot/".to_string(),
        };
        bad.push((format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").into_bytes(), "4xx"));
        bad.push((
            format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc")
                .into_bytes(),
            "4xx",
        ));
        bad.push((b"DELETE /study/live%20one HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(), "4xx"));
        bad.push((b"GARBAGE \x00\x01\x02\r\n\r\n".to_vec(), "4xx or closed"));
        bad.push((
            format!("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: {}\r\n\r\n", "b".repeat(100_000))
                .into_bytes(),
            "4xx or closed",
        ));
        bad.push((b"GET /study/live%20one HTTP/9.9\r\n\r\n".to_vec(), "4xx or closed"));
    }
    assert!(bad.len() >= 300);
    for (request, want) in &bad {
        let (status, _) = raw(&addr, request);
        let fine = (400..500).contains(&status) || (want.contains("closed") && status == 0);
        assert!(fine, "{}: {status}", String::from_utf8_lossy(&request[..request.len().min(80)]));
    }
    // Still serving.
    assert_eq!(get(&addr, "/").0, 200);
    assert_eq!(get(&addr, "/study/live%20one").0, 200);
}

#[test]
fn a_port_in_use_or_an_address_that_is_not_one_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    create_study(d);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = gradus(d).args(["dashboard", "--bind", &format!("127.0.0.1:{port}")]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("cannot listen on 127.0.0.1:{port}: the port is in use")), "{err}");
    let out = gradus(d).args(["dashboard", "--bind", "localhost:http"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value 'localhost:http' for '--bind"));
    // A storage that is not there is not created.
    let out =
        gradus(d).args(["dashboard", "--storage", "sqlite:nothing.db", "--bind", "127.0.0.1:0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!d.join("nothing.db").exists());
}
