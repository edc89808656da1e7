//! The page and the JS client in real headless Chromium (Debian's chromium and
//! chromium-driver; skipped when they are missing), driven over WebDriver with
//! fantoccini. A test binary of its own, so the browser does not compete with
//! the other tests for the two cores.

#[path = "server/harness.rs"]
#[allow(dead_code)]
mod harness;

use fantoccini::{Client, ClientBuilder, Locator};
use harness::*;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How often the page is looked at while waiting for it to change.
const POLL: Duration = Duration::from_millis(20);

struct Browser {
    client: Client,
    driver: tokio::process::Child,
    _profile: tempfile::TempDir,
    _driver_log: tempfile::NamedTempFile,
}

impl Browser {
    /// A headless Chromium session, or `None` (skipped) when Debian's
    /// chromium and chromium-driver are not installed.
    async fn start() -> Option<Browser> {
        let tools = [Path::new(CHROMIUM), Path::new(CHROMEDRIVER)];
        if !tools_present("Chromium and chromedriver", &tools) {
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver_log = tempfile::NamedTempFile::new().unwrap();
        let mut driver = tokio::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(driver_log.reopen().unwrap())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromedriver");
        wait_until_ready(&mut driver, port, driver_log.path()).await;
        let profile = tempfile::tempdir().unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-quic", "--no-first-run", "--window-size=1280,1100",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("WebDriver session");
        Some(Browser {
            client,
            driver,
            _profile: profile,
            _driver_log: driver_log,
        })
    }

    async fn text(&self, id: &str) -> String {
        self.client
            .find(Locator::Id(id))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    async fn type_into(&self, id: &str, value: &str) {
        let field = self.client.find(Locator::Id(id)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    async fn click(&self, id: &str) {
        self.client
            .find(Locator::Id(id))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    /// Waits until the element's text satisfies `ok`, and returns it.
    async fn wait_text(&self, id: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let text = self.text(id).await;
            if ok(&text) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "#{id} never matched; it says: {text}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    async fn cookie_names(&self) -> Vec<String> {
        self.client
            .get_all_cookies()
            .await
            .unwrap()
            .iter()
            .map(|c| c.name().to_owned())
            .collect()
    }

    async fn stop(mut self) {
        let _ = self.client.close().await;
        let _ = self.driver.start_kill();
    }
}

/// Waits until the WebDriver server says it is ready on `/status` (an open
/// port is not enough: a session requested earlier is refused).
async fn wait_until_ready(driver: &mut tokio::process::Child, port: u16, log: &Path) {
    let status = format!("http://127.0.0.1:{port}/status");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(reply) = http.get(&status).send().await {
            let body: Value = reply.json().await.unwrap_or_default();
            if body["value"]["ready"] == json!(true) {
                return;
            }
        }
        let log = || std::fs::read_to_string(log).unwrap_or_default();
        if let Ok(Some(exit)) = driver.try_wait() {
            panic!(
                "chromedriver exited ({exit}) before it was ready:\n{}",
                log()
            );
        }
        assert!(
            Instant::now() < deadline,
            "chromedriver was not ready within 30 s:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn refreshes(s: &Server) -> u64 {
    let text = s.get("/metrics").await.text;
    text.lines()
        .find_map(|l| l.strip_prefix("tessera_tokens_refreshed_total "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// Signs up and logs in through the page, moves the server past the
/// 2-second access token's expiry, fires five calls at once, and logs out.
async fn flow(browser: &Browser, extra_config: &str, transport: &str, screenshot: &str) {
    let config = format!(
        "access_token_lifetime = \"2s\"\ntoken_locations = [\"headers\", \"cookies\"]\ncookie_secure = false\n{extra_config}"
    );
    let s = Server::start(&config).await;
    let b = &browser.client;
    b.delete_all_cookies().await.unwrap();
    b.goto(&format!("{}/", s.base)).await.unwrap();
    browser.type_into("username", "pat").await;
    browser.type_into("password", PASSWORD).await;
    browser.click(&format!("transport-{transport}")).await;
    browser.click("signup").await;
    browser
        .wait_text("status", |t| t.starts_with("Signed up as pat"))
        .await;
    // The metrics recorder is shared by the servers of this test binary:
    // refreshes are counted from here.
    let at_login = refreshes(&s).await;
    browser.click("login").await;
    let status = browser
        .wait_text("status", |t| t.starts_with("Logged in"))
        .await;
    assert!(
        status.contains(&format!("{transport} transport")),
        "{status}"
    );

    let claims: Value = serde_json::from_str(&browser.text("claims").await).unwrap();
    assert_eq!(claims["username"], "pat");
    assert_eq!(claims["token_type"], "access");
    assert_eq!(claims["fresh"], true);
    assert_eq!(claims.get("csrf").is_some(), transport == "cookie");
    let header: Value = serde_json::from_str(&browser.text("header").await).unwrap();
    assert_eq!(header["typ"], "JWT");
    browser.wait_text("countdown", |t| t.ends_with(" s")).await;
    let png = b.screenshot().await.unwrap();
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("browser");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(screenshot), png).unwrap();

    // Tokens never touch web storage.
    let storage = b
        .execute(
            "return JSON.stringify(localStorage) + JSON.stringify(sessionStorage);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(storage, json!("{}{}"));
    let cookies = browser.cookie_names().await;
    if transport == "cookie" {
        for name in [
            "access_token_cookie",
            "csrf_access_token",
            "csrf_refresh_token",
        ] {
            assert!(
                cookies.iter().any(|c| c == name),
                "{name} missing: {cookies:?}"
            );
        }
    } else {
        assert!(cookies.is_empty(), "{cookies:?}");
    }

    // Past expiry (the server's clock moved past the 2-second lifetime), five
    // calls at once share one refresh.
    let before = refreshes(&s).await;
    assert_eq!(before, at_login, "nothing refreshed before the expiry");
    s.advance(Duration::from_secs(3));
    browser.click("burst").await;
    let result = browser
        .wait_text("result", |t| t.contains("of 5 succeeded"))
        .await;
    assert_eq!(result, "5 of 5 succeeded");
    assert_eq!(
        refreshes(&s).await - before,
        1,
        "the five calls must share exactly one refresh"
    );
    let claims: Value = serde_json::from_str(&browser.text("claims").await).unwrap();
    assert_eq!(claims["fresh"], false, "the page shows the refreshed token");

    browser.click("logout").await;
    browser.wait_text("result", |t| t == "logged out").await;
    browser.wait_text("status", |t| t == "Not logged in.").await;
    let cookies = browser.cookie_names().await;
    assert!(cookies.is_empty(), "cookies left after logout: {cookies:?}");
}

#[tokio::test]
async fn the_page_logs_in_refreshes_once_for_five_calls_and_logs_out() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    for transport in ["header", "cookie"] {
        flow(
            &browser,
            "",
            transport,
            &format!("logged-in-{transport}.png"),
        )
        .await;
        // With rotation and blacklisting, presenting a rotated refresh token
        // twice would revoke the session: the single flight must prevent it.
        flow(
            &browser,
            "rotate_refresh_tokens = true\nblacklist_after_rotation = true",
            transport,
            &format!("logged-in-{transport}-rotating.png"),
        )
        .await;
    }
    browser.stop().await;
}

/// Clicks the first element matching `css`, waiting for it to appear.
async fn click_css(browser: &Browser, css: &str) {
    let element = browser
        .client
        .wait()
        .at_most(Duration::from_secs(15))
        .every(POLL)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    element
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

/// Switches an opened operation to "Try it out" (its execute button appears).
/// The first click on a freshly opened operation is lost (seen every time,
/// however long one waits before it); one that takes shows the execute
/// button within tens of milliseconds, so after a short wait click again.
async fn try_it_out(browser: &Browser, operation: &str) {
    let execute = format!("#{operation} .execute");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(button) = browser
            .client
            .find(Locator::Css(&format!("#{operation} .try-out__btn")))
            .await
        {
            let _ = button.click().await;
        }
        // A second click would cancel one that took: give it time to show.
        let took = Instant::now() + Duration::from_millis(150);
        while Instant::now() < took {
            if browser.client.find(Locator::Css(&execute)).await.is_ok() {
                return;
            }
            tokio::time::sleep(POLL).await;
        }
        assert!(
            Instant::now() < deadline,
            "{operation}: Try it out never took"
        );
    }
}

/// Puts `text` in a field of Swagger UI's React forms as a paste would: one
/// input event, which React's change handler takes (typing it key by key
/// re-renders the whole page per key and takes seconds).
async fn paste(browser: &Browser, field: &fantoccini::elements::Element, text: &str) {
    browser
        .client
        .execute(
            "const [field, text] = arguments;
             const setter = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(field), 'value').set;
             setter.call(field, text);
             field.dispatchEvent(new Event('input', { bubbles: true }));",
            vec![serde_json::to_value(field).unwrap(), json!(text)],
        )
        .await
        .unwrap();
}

/// The live response of an operation after Execute: (status, body text).
async fn live_response(browser: &Browser, operation: &str) -> (String, String) {
    let status_css = format!("#{operation} .live-responses-table tbody .response-col_status");
    let status = browser
        .client
        .wait()
        .at_most(Duration::from_secs(15))
        .every(POLL)
        .for_element(Locator::Css(&status_css))
        .await
        .unwrap_or_else(|e| panic!("{status_css}: {e}"))
        .text()
        .await
        .unwrap();
    let body_css =
        format!("#{operation} .live-responses-table tbody .response-col_description pre");
    let body = browser
        .client
        .find(Locator::Css(&body_css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    (status.trim().to_owned(), body)
}

#[tokio::test]
async fn swagger_ui_logs_in_authorizes_and_calls_me_with_no_network() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let s = Server::start("").await;
    s.signup("swagger").await;
    let b = &browser.client;
    b.goto(&format!("{}/docs", s.base)).await.unwrap();

    // Log in through the UI: POST /api/token with a JSON body.
    let login = "operations-tokens-obtain";
    click_css(&browser, &format!("#{login} .opblock-summary")).await;
    try_it_out(&browser, login).await;
    let body = b
        .wait()
        .at_most(Duration::from_secs(15))
        .every(POLL)
        .for_element(Locator::Css(&format!("#{login} textarea.body-param__text")))
        .await
        .unwrap();
    paste(
        &browser,
        &body,
        &json!({"username": "swagger", "password": PASSWORD}).to_string(),
    )
    .await;
    click_css(&browser, &format!("#{login} .execute")).await;
    let (status, text) = live_response(&browser, login).await;
    assert!(status.starts_with("200"), "{status}: {text}");
    let tokens: Value = serde_json::from_str(&text).unwrap();
    let access = tokens["access"].as_str().unwrap().to_owned();

    // Paste the token in Authorize.
    click_css(&browser, "button.authorize").await;
    let field = b
        .wait()
        .at_most(Duration::from_secs(15))
        .every(POLL)
        .for_element(Locator::Css(".auth-container input"))
        .await
        .unwrap();
    paste(&browser, &field, &access).await;
    click_css(&browser, ".auth-btn-wrapper button.authorize").await;
    click_css(&browser, ".auth-btn-wrapper button.btn-done").await;

    // Call /api/auth/me.
    let me = "operations-accounts-me";
    click_css(&browser, &format!("#{me} .opblock-summary")).await;
    try_it_out(&browser, me).await;
    click_css(&browser, &format!("#{me} .execute")).await;
    let (status, text) = live_response(&browser, me).await;
    assert!(status.starts_with("200"), "{status}: {text}");
    let user: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(user["username"], "swagger");

    let png = b.screenshot().await.unwrap();
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("browser");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("swagger-me.png"), png).unwrap();
    browser.stop().await;
}
