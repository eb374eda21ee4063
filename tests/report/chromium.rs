//! Loads a page in headless Chromium and reports what a person would see
//! go wrong: console errors, uncaught exceptions, failed loads, requests to
//! the network. Chromium is driven over the DevTools protocol on a pipe
//! (`--remote-debugging-pipe`: NUL-terminated JSON on fds 3 and 4), which
//! needs no WebSocket client and no port. Every wait has a deadline, and
//! the browser is killed if it outlives the check.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Where Debian's package puts the browser; `CHROMIUM` overrides it.
const CHROMIUM: &str = "/usr/bin/chromium";

/// Flags for a machine without internet: no background traffic, no sandbox (root), no GPU.
const FLAGS: [&str; 9] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-pipe",
];

/// What loading a page showed.
#[derive(Debug)]
pub struct Loaded {
    /// Console errors, uncaught exceptions and failed loads, one line each.
    pub errors: Vec<String>,
    /// URLs the page asked for beyond `file:`, `data:` and `about:`.
    pub fetches: Vec<String>,
    /// The value of the expression evaluated once the page had loaded.
    pub value: Value,
}

/// The browser binary, or a panic saying how to get it.
pub fn binary() -> PathBuf {
    let path = std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from(CHROMIUM), PathBuf::from);
    assert!(
        path.exists(),
        "{} is missing: this test needs Chromium (`.ci/run` installs it: apt-get install chromium chromium-driver)",
        path.display()
    );
    path
}

struct Browser {
    child: Child,
    to: File,
    from: Receiver<Value>,
    next_id: u64,
    events: Vec<Value>,
    deadline: Instant,
    _profile: TempDir,
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A pipe whose ends sit at descriptors 10 and up, so the child can move them to 3 and 4 safely.
fn pipe() -> (OwnedFd, OwnedFd) {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe");
    let high = |fd: OwnedFd| {
        let raw = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(10)).expect("dup");
        // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor that nothing else owns.
        unsafe { OwnedFd::from_raw_fd(raw) }
    };
    (high(r), high(w))
}

impl Browser {
    fn start(timeout: Duration, scratch: &Path) -> Browser {
        let profile = scratch.join(format!(
            "chromium-profile-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).expect("profile directory");
        let (to_child, to_browser) = pipe();
        let (from_browser, from_child) = pipe();
        let (child_in, child_out) = (to_child.as_raw_fd(), from_child.as_raw_fd());
        let mut command = Command::new(binary());
        command
            .args(FLAGS)
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: only dup2, which is async-signal-safe, runs between fork and exec.
        unsafe {
            command.pre_exec(move || {
                if libc::dup2(child_in, 3) < 0 || libc::dup2(child_out, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("chromium starts");
        drop((to_child, from_child));
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(File::from(from_browser));
            let mut message = Vec::new();
            while reader.read_until(0, &mut message).is_ok_and(|n| n > 0) {
                if message.last() == Some(&0) {
                    message.pop();
                }
                let Ok(v) = serde_json::from_slice::<Value>(&message) else {
                    break;
                };
                if tx.send(v).is_err() {
                    break;
                }
                message.clear();
            }
        });
        Browser {
            child,
            to: File::from(to_browser),
            from: rx,
            next_id: 0,
            events: Vec::new(),
            deadline: Instant::now() + timeout,
            _profile: TempDir(profile),
        }
    }

    fn receive(&mut self) -> Result<Value, String> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        self.from
            .recv_timeout(left)
            .map_err(|e| format!("no answer from Chromium in time ({e})"))
    }

    fn call(&mut self, method: &str, params: Value, session: Option<&str>) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            message["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&message).map_err(|e| e.to_string())?;
        bytes.push(0);
        self.to
            .write_all(&bytes)
            .map_err(|e| format!("writing to Chromium: {e}"))?;
        loop {
            let m = self.receive()?;
            if m["id"] == json!(id) {
                if let Some(error) = m.get("error") {
                    return Err(format!("{method}: {error}"));
                }
                return Ok(m["result"].clone());
            }
            self.events.push(m);
        }
    }

    fn wait_for(&mut self, method: &str) -> Result<(), String> {
        loop {
            let m = self.receive()?;
            let found = m["method"] == json!(method);
            self.events.push(m);
            if found {
                return Ok(());
            }
        }
    }
}

/// What an event says went wrong, if anything.
fn problem(event: &Value) -> Option<String> {
    let p = &event["params"];
    match event["method"].as_str()? {
        "Runtime.consoleAPICalled" if matches!(p["type"].as_str(), Some("error" | "assert")) => {
            let args: Vec<String> = p["args"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| a["value"].as_str().map_or_else(|| a.to_string(), str::to_string))
                .collect();
            Some(format!(
                "console.{}: {}",
                p["type"].as_str().unwrap_or_default(),
                args.join(" ")
            ))
        }
        "Runtime.exceptionThrown" => {
            let d = &p["exceptionDetails"];
            let what = d["exception"]["description"]
                .as_str()
                .or(d["text"].as_str())
                .unwrap_or_default();
            Some(format!("exception: {what}"))
        }
        "Log.entryAdded" if p["entry"]["level"] == json!("error") => Some(format!(
            "{}: {} {}",
            p["entry"]["source"].as_str().unwrap_or_default(),
            p["entry"]["text"].as_str().unwrap_or_default(),
            p["entry"]["url"].as_str().unwrap_or_default()
        )),
        _ => None,
    }
}

/// Loads `url`, waits for its load event and a moment more for late errors,
/// evaluates `expression` (which must return JSON text) and closes the browser.
pub fn load(url: &str, expression: &str, timeout: Duration, scratch: &Path) -> Result<Loaded, String> {
    let mut b = Browser::start(timeout, scratch);
    let target = b.call("Target.createTarget", json!({ "url": "about:blank" }), None)?;
    let target = target["targetId"].as_str().ok_or("no target id")?.to_string();
    let attached = b.call(
        "Target.attachToTarget",
        json!({ "targetId": target, "flatten": true }),
        None,
    )?;
    let session = attached["sessionId"].as_str().ok_or("no session id")?.to_string();
    for method in ["Runtime.enable", "Log.enable", "Page.enable", "Network.enable"] {
        b.call(method, json!({}), Some(&session))?;
    }
    b.call("Page.navigate", json!({ "url": url }), Some(&session))?;
    b.wait_for("Page.loadEventFired")?;
    let evaluated = b.call(
        "Runtime.evaluate",
        json!({ "expression": expression, "returnByValue": true }),
        Some(&session),
    )?;
    if let Some(e) = evaluated.get("exceptionDetails") {
        return Err(format!("the check's expression failed: {e}"));
    }
    let text = evaluated["result"]["value"]
        .as_str()
        .ok_or("the expression returned no text")?;
    let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    // Collect what arrived meanwhile without waiting past the deadline.
    while let Ok(m) = b.from.recv_timeout(Duration::from_millis(200)) {
        b.events.push(m);
    }
    let errors = b.events.iter().filter_map(problem).collect();
    let fetches = b
        .events
        .iter()
        .filter(|e| e["method"] == json!("Network.requestWillBeSent"))
        .filter_map(|e| e["params"]["request"]["url"].as_str())
        .filter(|u| !(u.starts_with("file:") || u.starts_with("data:") || u.starts_with("about:")))
        .map(str::to_string)
        .collect();
    let _ = b.call("Browser.close", json!({}), None);
    Ok(Loaded { errors, fetches, value })
}
