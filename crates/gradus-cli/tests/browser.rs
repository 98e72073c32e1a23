//! The dashboard and the report in a real browser: Debian's Chromium,
//! driven through ChromeDriver's WebDriver protocol (plain HTTP and JSON,
//! spoken here without a client library).
//!
//! `bash .ci/install-chromium` installs both (CI runs it, and sets
//! `GRADUS_BROWSER_TESTS=required`, so that a missing browser fails there).
//! Elsewhere, without them, these tests say they were skipped. On a
//! failure a screenshot is written to `target/browser-artifacts/`.
#![cfg(feature = "dashboard")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Whether the browser is here; panics when CI requires it and it is not.
fn browser_present(test: &str) -> bool {
    let present = Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists();
    if !present {
        assert!(
            std::env::var("GRADUS_BROWSER_TESTS").as_deref() != Ok("required"),
            "{test}: {CHROMIUM} and {CHROMEDRIVER} are required (bash .ci/install-chromium)"
        );
        eprintln!("{test}: SKIPPED — no {CHROMIUM} or {CHROMEDRIVER} (bash .ci/install-chromium installs them)");
    }
    present
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One HTTP request with a JSON body; the JSON answer.
fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> Value {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let body = body.map_or(String::new(), Value::to_string);
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    // ChromeDriver keeps the connection open: read the head, then the body's length.
    let mut reader = BufReader::new(s);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let length = head
        .lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("content-length")))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok());
    let rest = match length {
        Some(n) => {
            let mut body = vec![0; n];
            reader.read_exact(&mut body).unwrap();
            String::from_utf8_lossy(&body).to_string()
        }
        None => {
            let mut body = String::new();
            let _ = reader.read_to_string(&mut body);
            if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(&body) } else { body }
        }
    };
    serde_json::from_str(&rest).unwrap_or_else(|e| panic!("{method} {path}: {e}: {head}{rest}"))
}

/// Standard base64 (a screenshot's PNG), padding and all.
fn base64(text: &str) -> Vec<u8> {
    let digit = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let (mut out, mut bits, mut n) = (Vec::new(), 0u32, 0);
    for d in text.bytes().filter_map(digit) {
        bits = bits << 6 | u32::from(d);
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

/// A ChromeDriver with one headless Chromium session.
struct Browser {
    _driver: Killed,
    port: u16,
    session: String,
    name: String,
}

impl Browser {
    fn start(name: &str) -> Browser {
        let port = free_port();
        let driver = Killed(
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(20), "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"
            ]},
            "goog:loggingPrefs": {"browser": "ALL"}
        }}});
        let answer = http(port, "POST", "/session", Some(&caps));
        let session = answer["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("{answer}")).to_string();
        Browser { _driver: driver, port, session, name: name.into() }
    }

    fn go(&self, url: &str) {
        http(self.port, "POST", &format!("/session/{}/url", self.session), Some(&json!({"url": url})));
    }

    fn eval(&self, script: &str) -> Value {
        let body = json!({"script": script, "args": []});
        http(self.port, "POST", &format!("/session/{}/execute/sync", self.session), Some(&body))["value"].clone()
    }

    /// The browser console's messages at level SEVERE.
    fn console_errors(&self) -> Vec<String> {
        let logs =
            http(self.port, "POST", &format!("/session/{}/se/log", self.session), Some(&json!({"type": "browser"})));
        logs["value"]
            .as_array()
            .map(|l| l.iter().filter(|m| m["level"] == "SEVERE").map(|m| m["message"].to_string()).collect())
            .unwrap_or_default()
    }

    /// Keeps a screenshot of the page (for a failure).
    fn screenshot(&self) -> PathBuf {
        let shot = http(self.port, "GET", &format!("/session/{}/screenshot", self.session), None);
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/browser-artifacts");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{}.png", self.name));
        std::fs::write(&path, base64(shot["value"].as_str().unwrap_or_default())).unwrap();
        path
    }

    /// Runs `check`; on a panic, keeps a screenshot first.
    fn checking(&self, check: impl FnOnce(&Browser)) {
        if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(self))) {
            eprintln!("screenshot: {}", self.screenshot().display());
            std::panic::resume_unwind(panic);
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| http(self.port, "DELETE", &format!("/session/{}", self.session), None));
    }
}

fn gradus(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gradus"));
    c.current_dir(dir);
    c
}

fn create_study(dir: &Path) {
    let space =
        r#"{"x": {"type": "float", "low": 0, "high": 1}, "opt": {"type": "categorical", "choices": ["a", "b"]}}"#;
    let out = gradus(dir)
        .args(["study", "create", "--study", "s", "--direction", "minimize", "--space", space, "--sampler", "random"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_dashboard_counts_trials_as_they_finish_without_a_reload() {
    if !browser_present("dashboard") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    create_study(d);
    let mut server = gradus(d)
        .args(["dashboard", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let _server = Killed(server);
    let url = line.split_whitespace().find(|w| w.starts_with("http://")).unwrap().to_string();
    // A trial every ~0.4 s for a while.
    let _run = Killed(
        gradus(d)
            .args(["run", "--study", "s", "--trials", "40", "--", "sh", "-c", "sleep 0.4; echo {x}"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let browser = Browser::start("dashboard");
    browser.go(&format!("{url}study/s"));
    browser.checking(|b| {
        // A mark on this page: a reload would drop it.
        b.eval("window.gradusMark = 42; return 0;");
        let count = || b.eval("return Number(document.getElementById('trial-count').textContent);").as_u64().unwrap();
        let started = Instant::now();
        let mut seen = vec![count()];
        while started.elapsed() < Duration::from_secs(20) && seen.len() < 4 {
            std::thread::sleep(Duration::from_millis(700));
            let now = count();
            if now > *seen.last().unwrap() {
                seen.push(now);
            }
        }
        assert!(seen.len() >= 4, "the trial count rose at least three times: {seen:?}");
        assert_eq!(b.eval("return window.gradusMark;"), json!(42), "the page was not reloaded");
        // The table follows, and the plots drew.
        let rows = b.eval("return document.querySelectorAll('#trials tbody tr').length;").as_u64().unwrap();
        assert!(rows >= *seen.last().unwrap(), "{rows} rows");
        std::thread::sleep(Duration::from_secs(4));
        let drawn = b.eval("return document.querySelectorAll('.plot svg').length;").as_u64().unwrap();
        assert!(drawn >= 5, "{drawn} plots drawn");
        let errors = b.console_errors();
        assert!(errors.is_empty(), "console errors: {errors:?}");
    });
}

#[test]
fn the_report_renders_every_plot_offline_with_no_console_error() {
    if !browser_present("report") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    create_study(d);
    let out = gradus(d).args(["run", "--study", "s", "--trials", "15", "--", "sh", "-c", "echo {x}"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = gradus(d).args(["report", "--study", "s", "--out", "report.html"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let browser = Browser::start("report");
    browser.go(&format!("file://{}", d.join("report.html").display()));
    browser.checking(|b| {
        // Every picture laid out with a size, and each holds drawn marks.
        let sizes = b.eval(
            "return [...document.querySelectorAll('body > section > svg, body > section > svg > svg')]\
             .map(s => { const r = s.getBoundingClientRect(); return [r.width, r.height]; });",
        );
        let sizes = sizes.as_array().unwrap();
        assert!(sizes.len() >= 7, "{sizes:?}");
        assert!(sizes.iter().all(|s| s[0].as_f64().unwrap() > 100.0 && s[1].as_f64().unwrap() > 50.0), "{sizes:?}");
        let marks =
            b.eval("return document.querySelectorAll('svg circle, svg path.line, svg rect, svg polyline').length;");
        assert!(marks.as_u64().unwrap() > 50, "{marks}");
        let errors = b.console_errors();
        assert!(errors.is_empty(), "console errors: {errors:?}");
    });
}

#[test]
fn screenshots_are_decoded_from_base64() {
    assert_eq!(base64("aGVsbG8sIHdvcmxkIQ=="), b"hello, world!");
    assert_eq!(base64("iVBORw0KGgo="), b"\x89PNG\r\n\x1a\n");
}
