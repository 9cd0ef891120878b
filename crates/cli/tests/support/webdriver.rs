//! Just enough of the W3C WebDriver protocol to drive Debian's headless Chromium through
//! `chromedriver`: open a page, find and click an element, read it, take a screenshot.
//!
//! Browser steps return `Result` so a test can always end its session (and so Chromium)
//! before it asserts; the [`Chromedriver`] guard kills whatever is left if a test panics.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use base64::Engine;
use serde_json::{json, Value};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The key under which WebDriver returns an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Longest wait for a page, an element or chromedriver itself.
pub const WAIT: Duration = Duration::from_secs(20);

/// A running `chromedriver` on a free loopback port. Dropping it kills its process group,
/// which takes any Chromium it started along.
pub struct Chromedriver {
    child: Child,
    url: String,
    http: reqwest::Client,
}

impl Chromedriver {
    /// Starts chromedriver and waits until it reports ready. Fails (never skips) when
    /// Chromium or chromedriver is not installed.
    pub async fn start() -> anyhow::Result<Self> {
        for binary in [CHROMIUM, CHROMEDRIVER] {
            if !std::path::Path::new(binary).exists() {
                bail!(
                    "{binary} is missing: browser tests need Debian's chromium and \
                     chromium-driver. Run `scripts/test`, which installs them."
                );
            }
        }
        let port = free_port()?;
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group, so Drop can end chromedriver and its browser together.
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start {CHROMEDRIVER}"))?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(WAIT)
            .build()?;
        let driver = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            http,
        };
        let deadline = Instant::now() + WAIT;
        loop {
            let ready = driver
                .http
                .get(format!("{}/status", driver.url))
                .send()
                .await
                .ok();
            if let Some(response) = ready {
                let status: Value = response.json().await.unwrap_or_default();
                if status["value"]["ready"] == json!(true) {
                    return Ok(driver);
                }
            }
            if Instant::now() > deadline {
                bail!("chromedriver did not become ready within {WAIT:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A new headless Chromium with a fresh profile.
    pub async fn new_session(&self) -> anyhow::Result<Session> {
        let profile = fresh_profile_dir()?;
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            // Loopback only: never route through a proxy from the environment.
            "--no-proxy-server",
            "--window-size=1024,768",
        ]
        .iter()
        .map(|a| a.to_string())
        .chain([format!("--user-data-dir={}", profile.display())])
        .collect::<Vec<_>>();
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "timeouts": {"pageLoad": WAIT.as_millis() as u64, "implicit": 0},
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        }}});
        let created = send(
            self.http
                .post(format!("{}/session", self.url))
                .json(&capabilities),
        )
        .await
        .context("creating a Chromium session")?;
        let id = created["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow!("no sessionId in {created}"))?;
        Ok(Session {
            url: format!("{}/session/{id}", self.url),
            http: self.http.clone(),
            profile,
        })
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        // The group id is chromedriver's pid (process_group(0) above).
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser session. End it with [`Session::quit`].
pub struct Session {
    url: String,
    http: reqwest::Client,
    profile: PathBuf,
}

/// A reference to an element on the current page.
pub struct Element(String);

impl Session {
    /// Navigates and waits for the page to load (redirects included).
    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.post("/url", json!({ "url": url })).await.map(drop)
    }

    pub async fn current_url(&self) -> anyhow::Result<String> {
        let url = send(self.http.get(format!("{}/url", self.url))).await?;
        url.as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("current URL is not a string: {url}"))
    }

    /// Waits until `css` matches an element (pages may still be loading after a click).
    pub async fn wait_for(&self, css: &str) -> anyhow::Result<Element> {
        let deadline = Instant::now() + WAIT;
        loop {
            let found = self
                .post("/element", json!({"using": "css selector", "value": css}))
                .await;
            if let Ok(Some(id)) = found.as_ref().map(|v| v[ELEMENT_KEY].as_str()) {
                return Ok(Element(id.to_owned()));
            }
            if Instant::now() > deadline {
                let at = self.current_url().await.unwrap_or_default();
                bail!("no element {css} on {at} within {WAIT:?}: {found:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn click(&self, element: &Element) -> anyhow::Result<()> {
        let path = format!("/element/{}/click", element.0);
        self.post(&path, json!({})).await.map(drop)
    }

    pub async fn text(&self, element: &Element) -> anyhow::Result<String> {
        let text = self.get(&format!("/element/{}/text", element.0)).await?;
        Ok(text.as_str().unwrap_or_default().to_owned())
    }

    /// An attribute's value, or `None` when the element does not have it.
    pub async fn attribute(&self, element: &Element, name: &str) -> anyhow::Result<Option<String>> {
        let path = format!("/element/{}/attribute/{name}", element.0);
        Ok(self.get(&path).await?.as_str().map(str::to_owned))
    }

    /// The HTTP status of the current document, as the browser received it.
    pub async fn response_status(&self) -> anyhow::Result<u64> {
        let script = "return performance.getEntriesByType('navigation')[0].responseStatus;";
        let status = self
            .post("/execute/sync", json!({"script": script, "args": []}))
            .await?;
        status
            .as_u64()
            .ok_or_else(|| anyhow!("no response status: {status}"))
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> anyhow::Result<Vec<u8>> {
        let encoded = self.get("/screenshot").await?;
        let encoded = encoded
            .as_str()
            .ok_or_else(|| anyhow!("screenshot is not a string"))?;
        Ok(base64::engine::general_purpose::STANDARD.decode(encoded)?)
    }

    /// Closes the browser and removes its profile.
    pub async fn quit(self) {
        let _ = send(self.http.delete(&self.url)).await;
        let _ = std::fs::remove_dir_all(&self.profile);
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        send(self.http.get(format!("{}{path}", self.url))).await
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        send(self.http.post(format!("{}{path}", self.url)).json(&body)).await
    }
}

/// Sends a command and returns its `value`, or the WebDriver error as an `Err`.
async fn send(request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
    let response = request.send().await.context("chromedriver unreachable")?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .context("chromedriver answered non-JSON")?;
    if !status.is_success() {
        bail!(
            "WebDriver {status}: {} {}",
            body["value"]["error"],
            body["value"]["message"]
        );
    }
    Ok(body["value"].clone())
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

fn fresh_profile_dir() -> anyhow::Result<PathBuf> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .subsec_nanos();
    let name = format!(
        "cafe24-chromium-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let dir = std::env::temp_dir().join(name);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}
