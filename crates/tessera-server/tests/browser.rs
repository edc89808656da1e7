//! The page and the JS client in real headless Chromium (Debian's chromium and
//! chromium-driver; skipped when they are missing), driven over WebDriver with
//! fantoccini. A test binary of its own, so the browser does not compete with
//! the other tests for the two cores.

#[path = "server/harness/mod.rs"]
#[allow(dead_code)]
mod harness;
#[path = "server/mailbox.rs"]
#[allow(dead_code)]
mod mailbox;

use axum::http::Method;
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
        if !servers_can_start() {
            let _ = postgres_admin_url(); // says why the test is skipped
            return None;
        }
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
            // Its own process group, which Chromium joins: see `Drop`.
            .process_group(0)
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
                    "--disable-quic", "--no-first-run",
                    // Smaller than a laptop's screen, with room for Swagger UI's
                    // layout: fewer pixels to paint on two busy cores.
                    "--window-size=1024,768",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
                // Debian's Chromium opens its New Tab Page at start, and every
                // WebDriver command waits for it to load: one run in three it
                // took 5 s, and stalled both tests. A blank page loads at once.
                "prefs": {
                    "session.restore_on_startup": 4,
                    "session.startup_urls": ["about:blank"],
                },
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

    async fn element(&self, id: &str) -> fantoccini::elements::Element {
        self.client.find(Locator::Id(id)).await.unwrap()
    }

    /// Records the page's uncaught errors and unhandled rejections from now
    /// on (until the next navigation), for [`Browser::errors`].
    async fn record_errors(&self) {
        self.client
            .execute(
                "window.recordedErrors = [];
                 addEventListener('error', (e) => recordedErrors.push(String(e.message)));
                 addEventListener('unhandledrejection', (e) =>
                   recordedErrors.push(String(e.reason && e.reason.message || e.reason)));",
                vec![],
            )
            .await
            .unwrap();
    }

    /// What [`Browser::record_errors`] caught.
    async fn errors(&self) -> Value {
        self.client
            .execute("return window.recordedErrors;", vec![])
            .await
            .unwrap()
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

    /// Gives the current tab a virtual authenticator (WebDriver's WebAuthn
    /// extension): built in (as a laptop's), keeping passkeys on the device
    /// (resident keys, which a login without a username needs), and
    /// verifying the user at once, as a fingerprint that always matches
    /// would. Resolves to its id.
    async fn add_authenticator(&self) -> String {
        let options = json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserVerified": true,
        });
        let id = self
            .client
            .issue_cmd(WebAuthn::new(Method::POST, "authenticator", Some(options)))
            .await
            .expect("a virtual authenticator (WebDriver's WebAuthn extension)");
        id.as_str().expect("the authenticator's id").to_owned()
    }

    /// The credentials (passkeys) the virtual authenticator `id` holds.
    async fn authenticator_credentials(&self, id: &str) -> Vec<Value> {
        let listed = self
            .client
            .issue_cmd(WebAuthn::new(
                Method::GET,
                &format!("authenticator/{id}/credentials"),
                None,
            ))
            .await
            .unwrap();
        serde_json::from_value(listed).unwrap()
    }

    /// Removes the virtual authenticator `id`, and the passkeys it holds.
    async fn remove_authenticator(&self, id: &str) {
        self.client
            .issue_cmd(WebAuthn::new(
                Method::DELETE,
                &format!("authenticator/{id}"),
                None,
            ))
            .await
            .unwrap();
    }

    /// Ends the session (Chromium quits); `Drop` then ends chromedriver.
    async fn stop(self) {
        let _ = self.client.clone().close().await;
    }
}

/// A command of WebDriver's WebAuthn extension (the Web Authentication
/// spec's "Automation" section, which chromedriver implements), under
/// `/session/{id}/webauthn/`: fantoccini has no method for them.
#[derive(Debug)]
struct WebAuthn {
    method: Method,
    path: String,
    body: Option<Value>,
}

impl WebAuthn {
    fn new(method: Method, path: &str, body: Option<Value>) -> WebAuthn {
        WebAuthn {
            method,
            path: path.to_owned(),
            body,
        }
    }
}

impl fantoccini::wd::WebDriverCompatibleCommand for WebAuthn {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        let session = session.expect("a WebDriver session");
        base.join(&format!("session/{session}/webauthn/{}", self.path))
    }

    fn method_and_body(&self, _: &url::Url) -> (Method, Option<String>) {
        (
            self.method.clone(),
            self.body.as_ref().map(Value::to_string),
        )
    }
}

/// A test that panics never reaches [`Browser::stop`], and killing
/// chromedriver alone would leave Chromium running, with its renderers,
/// taking CPU from every later test: kill the whole process group.
impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(pid) = self.driver.id() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stderr(Stdio::null())
                .status();
        }
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
        assert_cookie_session(&cookies);
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

    // The page lists pat's sessions, this one and another login, and ends
    // the other with its button.
    let (_, other_refresh) = s.login("pat").await;
    browser.click("sessions-reload").await;
    session_items(browser, 2).await;
    let listed = browser.text("session-list").await;
    assert!(
        listed.contains("(this one)") && listed.contains("127.0.0.1"),
        "{listed}"
    );
    click_css(browser, "#session-list .end-session").await;
    session_items(browser, 1).await;
    let refused = s
        .post("/api/token/refresh/", json!({"refresh": other_refresh}))
        .await;
    assert_eq!(refused.status, 401, "the ended session's refresh token");

    browser.click("logout").await;
    browser.wait_text("result", |t| t == "logged out").await;
    browser.wait_text("status", |t| t == "Not logged in.").await;
    let cookies = browser.cookie_names().await;
    assert!(cookies.is_empty(), "cookies left after logout: {cookies:?}");
}

/// The page flows, on one browser: a Chromium launch is costly, and the
/// refresh counter, shared by the servers of this binary, must not count
/// another test's refreshes.
#[tokio::test]
async fn the_page_logs_in_refreshes_once_for_five_calls_and_logs_out() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    flow(&browser, "", "header", "logged-in-header.png").await;
    // With rotation and blacklisting and no grace period, presenting a
    // rotated refresh token twice would revoke the session: the single
    // flight must prevent it.
    // (Cookies without rotation are the easy case of the same flow: the
    // refresh cookie never changes, and a refresh presented twice is no
    // reuse. Each flow costs a signup and a login in Argon2 on two cores.)
    for transport in ["header", "cookie"] {
        flow(
            &browser,
            "rotate_refresh_tokens = true\nblacklist_after_rotation = true\nrefresh_grace_period = \"0s\"",
            transport,
            &format!("logged-in-{transport}-rotating.png"),
        )
        .await;
    }
    the_cookie_option_follows_the_server(&browser).await;
    cookie_sessions_survive_reloads_and_tabs_share_one_refresh(&browser).await;
    a_listed_origin_gets_tokens_as_swagger_ui_asks_and_another_is_refused(&browser).await;
    the_axios_adapter_in_cookie_transport_shares_one_refresh(&browser).await;
    a_second_factor_is_set_up_on_the_page_and_asked_for_at_login(&browser).await;
    a_passkey_added_on_the_page_logs_in_alone(&browser).await;
    a_passkey_answers_the_second_step_of_a_password_login(&browser).await;
    a_passkey_is_listed_and_removed_on_the_page(&browser).await;
    a_login_that_must_enrol_adds_a_passkey(&browser).await;
    browser.stop().await;
}

/// pyotp's code (the test tools' virtual environment) of the base32
/// `secret` for the 30-second step `offset` steps from now: codes made
/// outside Tessera. `None` (skipped, or failed under CI) without pyotp.
fn pyotp_code(secret: &str, offset: i64) -> Option<String> {
    let python = std::env::var_os("HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(".cache/tessera-pyjwt/bin/python");
    let out = std::process::Command::new(&python)
        .args([
            "-c",
            "import sys, time, pyotp\n\
             print(pyotp.TOTP(sys.argv[1]).at(time.time() + 30 * int(sys.argv[2])))",
            secret,
            &offset.to_string(),
        ])
        .output();
    let ready = out.as_ref().is_ok_and(|o| o.status.success());
    if !available(&format!("pyotp in {}", python.display()), ready) {
        return None;
    }
    let out = out.ok()?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The page's second factor (issue 36): an authenticator app set up from
/// the page (the QR code shown, the ten recovery codes shown once), then a
/// login asking for its code, answered with pyotp's code, and with a
/// recovery code.
async fn a_second_factor_is_set_up_on_the_page_and_asked_for_at_login(browser: &Browser) {
    let s = Server::start("").await;
    let b = &browser.client;
    b.delete_all_cookies().await.unwrap();
    b.goto(&format!("{}/", s.base)).await.unwrap();
    browser.type_into("username", "mo").await;
    browser.type_into("password", PASSWORD).await;
    browser.click("signup").await;
    browser
        .wait_text("status", |t| t.starts_with("Signed up as mo"))
        .await;
    browser.click("login").await;
    browser
        .wait_text("status", |t| t.starts_with("Logged in as mo"))
        .await;
    browser.click("totp-start").await;
    browser
        .wait_text("factor-status", |t| {
            t == "Enrolment begun: confirm with a code."
        })
        .await;
    let secret = browser.text("totp-secret").await;
    assert_eq!(secret.len(), 32, "{secret}");
    let qr = b
        .execute("return document.getElementById('totp-qr').src;", vec![])
        .await
        .unwrap();
    assert!(
        qr.as_str().unwrap().starts_with("data:image/svg+xml"),
        "{qr}"
    );
    let Some(code) = pyotp_code(&secret, 0) else {
        return;
    };
    browser.type_into("totp-code", &code).await;
    browser.click("totp-confirm-send").await;
    browser
        .wait_text("factor-status", |t| {
            t.starts_with("The authenticator app is set up")
        })
        .await;
    let codes = b
        .execute(
            "return [...document.querySelectorAll('#recovery-codes li')].map((li) => li.textContent);",
            vec![],
        )
        .await
        .unwrap();
    let codes: Vec<String> = serde_json::from_value(codes).unwrap();
    assert_eq!(codes.len(), 10, "{codes:?}");

    // Logged out, the password asks for the code; the next step's code logs in.
    browser.click("logout").await;
    browser.wait_text("status", |t| t == "Not logged in.").await;
    browser.click("login").await;
    browser
        .wait_text("status", |t| {
            t == "Enter the code your authenticator app shows, or a recovery code."
        })
        .await;
    browser.type_into("mfa-code", "000000").await;
    browser.click("mfa-verify").await;
    browser
        .wait_text("status", |t| t.starts_with("Second factor refused"))
        .await;
    let next = pyotp_code(&secret, 1).unwrap();
    browser.type_into("mfa-code", &next).await;
    browser.click("mfa-verify").await;
    browser
        .wait_text("status", |t| t.starts_with("Logged in as mo"))
        .await;
    let claims: Value = serde_json::from_str(&browser.text("claims").await).unwrap();
    assert_eq!(claims["amr"], json!(["pwd", "otp", "mfa"]));

    // And with a recovery code.
    browser.click("logout").await;
    browser.wait_text("status", |t| t == "Not logged in.").await;
    browser.click("login").await;
    browser
        .wait_text("status", |t| t.starts_with("Enter the code"))
        .await;
    browser.type_into("mfa-code", &codes[0]).await;
    browser.click("mfa-verify").await;
    browser
        .wait_text("status", |t| t.starts_with("Logged in as mo"))
        .await;
    browser.click("logout").await;
    browser.wait_text("status", |t| t == "Not logged in.").await;

    // A server that requires a factor: the login leads into enrolment, then
    // asks for the code.
    let s = Server::start("mfa = \"required\"").await;
    b.goto(&format!("{}/", s.base)).await.unwrap();
    browser.type_into("username", "ann").await;
    browser.type_into("password", PASSWORD).await;
    browser.click("signup").await;
    browser
        .wait_text("status", |t| t.starts_with("Signed up as ann"))
        .await;
    browser.click("login").await;
    browser
        .wait_text("status", |t| {
            t.starts_with("This server requires a second factor")
        })
        .await;
    browser.click("totp-start").await;
    browser
        .wait_text("factor-status", |t| {
            t == "Enrolment begun: confirm with a code."
        })
        .await;
    let secret = browser.text("totp-secret").await;
    browser
        .type_into("totp-code", &pyotp_code(&secret, 0).unwrap())
        .await;
    browser.click("totp-confirm-send").await;
    browser
        .wait_text("status", |t| t == "Set up: log in again, with a code.")
        .await;
    browser.click("login").await;
    browser
        .wait_text("status", |t| t.starts_with("Enter the code"))
        .await;
    browser
        .type_into("mfa-code", &pyotp_code(&secret, 1).unwrap())
        .await;
    browser.click("mfa-verify").await;
    browser
        .wait_text("status", |t| t.starts_with("Logged in as ann"))
        .await;
    browser.click("logout").await;
    browser.wait_text("status", |t| t == "Not logged in.").await;
}

/// Signs `name` up on the page at `s` and logs in with the password, in
/// `transport`; the page's other fields are left empty.
async fn sign_up_and_log_in(browser: &Browser, s: &Server, name: &str, transport: &str) {
    let b = &browser.client;
    b.delete_all_cookies().await.unwrap();
    b.goto(&format!("{}/", s.base)).await.unwrap();
    browser.type_into("username", name).await;
    browser.type_into("password", PASSWORD).await;
    browser.click(&format!("transport-{transport}")).await;
    browser.click("signup").await;
    browser
        .wait_text("status", |t| t.starts_with(&format!("Signed up as {name}")))
        .await;
    browser.click("login").await;
    browser
        .wait_text("status", |t| {
            t.starts_with("Logged in") || t.starts_with("This server")
        })
        .await;
}

/// Adds a passkey named `label` with the page's form; waits for the page to
/// say so.
async fn add_passkey(browser: &Browser, label: &str) {
    browser.type_into("passkey-name", label).await;
    browser.click("passkey-add-send").await;
    let expected = format!("The passkey {label} is added: logins now ask for it.");
    browser
        .wait_text("factor-status", |t| {
            t == expected || t.starts_with("Refused")
        })
        .await;
    assert_eq!(browser.text("factor-status").await, expected);
}

/// The recovery codes the page shows.
async fn shown_recovery_codes(browser: &Browser) -> Vec<String> {
    let codes = browser
        .client
        .execute(
            "return [...document.querySelectorAll('#recovery-codes li')].map((li) => li.textContent);",
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value(codes).unwrap()
}

/// Waits until the page lists `count` passkeys; their texts (with their
/// "Remove" buttons') and ids.
async fn passkey_items(browser: &Browser, count: usize) -> Vec<(String, String)> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let found = browser
            .client
            .execute(
                "return [...document.querySelectorAll('#passkey-list li')]
                   .map((li) => [li.textContent, li.dataset.passkey]);",
                vec![],
            )
            .await
            .unwrap();
        let found: Vec<(String, String)> = serde_json::from_value(found).unwrap();
        if found.len() == count {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "{found:?} listed, not {count} passkeys"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// The browser holds a cookie-transport session: the access cookie and
/// both CSRF cookies are among `cookies`.
fn assert_cookie_session(cookies: &[String]) {
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
}

/// Whether the element `id` is shown (not `hidden`).
async fn shown(browser: &Browser, id: &str) -> bool {
    browser.element(id).await.is_displayed().await.unwrap()
}

/// Logs out with the page's button and waits for it.
async fn log_out(browser: &Browser) {
    browser.click("logout").await;
    browser.wait_text("status", |t| t == "Not logged in.").await;
}

/// A passkey (Chromium's virtual authenticator) added on the page, then a
/// login with it alone: no username, no password (`passkey_login = true`).
async fn a_passkey_added_on_the_page_logs_in_alone(browser: &Browser) {
    let s = Server::start_on_localhost("passkey_login = true").await;
    sign_up_and_log_in(browser, &s, "kim", "header").await;
    let authenticator = browser.add_authenticator().await;
    add_passkey(browser, "laptop").await;
    // The user's first factor: ten recovery codes, shown once.
    let codes = shown_recovery_codes(browser).await;
    assert_eq!(codes.len(), 10, "{codes:?}");
    assert!(shown(browser, "recovery-codes-shown").await);
    let listed = passkey_items(browser, 1).await;
    let (text, id) = &listed[0];
    assert!(
        text.starts_with("laptop, added ") && text.ends_with("Z, not used yet Remove"),
        "{text}"
    );
    // For a look at the card (not compared: fonts differ between machines).
    browser
        .client
        .execute(
            "document.getElementById('passkey-list').scrollIntoView({block: 'center'});",
            vec![],
        )
        .await
        .unwrap();
    let png = browser.client.screenshot().await.unwrap();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("browser");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("passkey-added.png"), png).unwrap();
    // The authenticator keeps it, for this server's host.
    let held = browser.authenticator_credentials(&authenticator).await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["isResidentCredential"], true);
    assert_eq!(held[0]["rpId"], "localhost");
    // The server lists it, and the password alone now asks for it.
    let asked = s
        .post(
            "/api/token/",
            json!({"username": "kim", "password": PASSWORD}),
        )
        .await;
    assert_eq!(asked.status, 401, "{}", asked.text);
    assert_eq!(asked.body["code"], "mfa_required");
    assert_eq!(asked.body["methods"], json!(["passkey", "recovery_code"]));

    log_out(browser).await;
    browser.type_into("username", "").await;
    browser.type_into("password", "").await;
    browser.click("passkey-login").await;
    let status = browser.wait_text("status", |t| t != "Not logged in.").await;
    assert_eq!(status, "Logged in as kim (header transport).");
    let claims: Value = serde_json::from_str(&browser.text("claims").await).unwrap();
    assert_eq!(claims["username"], "kim");
    assert_eq!(claims["fresh"], true);
    // A passkey that stays on its device (not backup eligible), which
    // verified its user: two factors in one.
    assert_eq!(claims["amr"], json!(["hwk", "mfa"]));
    let listed = passkey_items(browser, 1).await;
    assert_eq!(&listed[0].1, id);
    assert!(listed[0].0.contains("Z, last used "), "{}", listed[0].0);
    log_out(browser).await;
    browser.remove_authenticator(&authenticator).await;
}

/// A user with a passkey logs in with the password (in cookie transport)
/// and answers the second step with the passkey. On this server logins with
/// a passkey alone are off: the page says what the server said.
async fn a_passkey_answers_the_second_step_of_a_password_login(browser: &Browser) {
    let s = Server::start_on_localhost(
        "token_locations = [\"headers\", \"cookies\"]\ncookie_secure = false",
    )
    .await;
    sign_up_and_log_in(browser, &s, "lee", "cookie").await;
    let authenticator = browser.add_authenticator().await;
    add_passkey(browser, "phone").await;
    log_out(browser).await;
    assert!(!shown(browser, "second-factor").await);

    browser.click("login").await;
    browser
        .wait_text("status", |t| {
            t == "Use a passkey, or enter a recovery code."
        })
        .await;
    assert!(shown(browser, "second-factor").await);
    assert!(shown(browser, "mfa-passkey").await);
    browser.click("mfa-passkey").await;
    let status = browser
        .wait_text("status", |t| !t.starts_with("Use a passkey"))
        .await;
    assert_eq!(status, "Logged in as lee (cookie transport).");
    assert!(!shown(browser, "second-factor").await);
    let cookies = browser.cookie_names().await;
    assert_cookie_session(&cookies);
    let claims: Value = serde_json::from_str(&browser.text("claims").await).unwrap();
    assert_eq!(claims["username"], "lee");
    assert_eq!(claims["amr"], json!(["pwd", "hwk", "mfa"]));
    let listed = passkey_items(browser, 1).await;
    assert!(listed[0].0.starts_with("phone, added "), "{}", listed[0].0);
    assert!(listed[0].0.contains("Z, last used "), "{}", listed[0].0);
    log_out(browser).await;

    // A passkey alone is refused here: the server's words on the page.
    let refused = s.post("/api/auth/passkeys/login/start", json!({})).await;
    let detail =
        "Logging in with a passkey alone is off on this server: log in with your password.";
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert_eq!(
        refused.body,
        json!({"detail": detail, "code": "passkey_login_disabled"})
    );
    browser.click("passkey-login").await;
    let status = browser.wait_text("status", |t| t != "Not logged in.").await;
    assert_eq!(status, format!("Passkey login refused: {detail}"));
    browser.remove_authenticator(&authenticator).await;
}

/// The page lists the user's passkeys and removes one with its button;
/// the user's last factor gone, the password alone logs in again.
async fn a_passkey_is_listed_and_removed_on_the_page(browser: &Browser) {
    let s = Server::start_on_localhost("").await;
    sign_up_and_log_in(browser, &s, "max", "header").await;
    let authenticator = browser.add_authenticator().await;
    add_passkey(browser, "desk").await;
    passkey_items(browser, 1).await;
    // Removing needs a login that used the factor.
    log_out(browser).await;
    browser.click("login").await;
    browser
        .wait_text("status", |t| {
            t == "Use a passkey, or enter a recovery code."
        })
        .await;
    browser.click("mfa-passkey").await;
    browser
        .wait_text("status", |t| t.starts_with("Logged in as max"))
        .await;
    let listed = passkey_items(browser, 1).await;
    assert!(listed[0].0.starts_with("desk, added "), "{}", listed[0].0);
    click_css(browser, "#passkey-list .remove-passkey").await;
    browser
        .wait_text("factor-status", |t| t == "The passkey desk is removed.")
        .await;
    passkey_items(browser, 0).await;

    // The password alone logs in: on the server, and on the page.
    let (access, _) = s.login("max").await;
    let listed = s.get_with_token("/api/auth/passkeys", &access).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.body, json!([]));
    log_out(browser).await;
    browser.click("login").await;
    let status = browser.wait_text("status", |t| t != "Not logged in.").await;
    assert_eq!(status, "Logged in as max (header transport).");
    assert!(!shown(browser, "second-factor").await);
    log_out(browser).await;
    browser.remove_authenticator(&authenticator).await;
}

/// On a server that requires a second factor, the login refused for want
/// of one adds a passkey with its enrolment token, then logs in with it.
async fn a_login_that_must_enrol_adds_a_passkey(browser: &Browser) {
    let s = Server::start_on_localhost("mfa = \"required\"").await;
    sign_up_and_log_in(browser, &s, "ivy", "header").await;
    assert_eq!(
        browser.text("status").await,
        "This server requires a second factor: set up an authenticator app or add a passkey below, then log in again."
    );
    let authenticator = browser.add_authenticator().await;
    add_passkey(browser, "key").await;
    assert_eq!(shown_recovery_codes(browser).await.len(), 10);
    browser
        .wait_text("status", |t| t == "Set up: log in again, with the passkey.")
        .await;
    browser.click("login").await;
    browser
        .wait_text("status", |t| {
            t == "Use a passkey, or enter a recovery code."
        })
        .await;
    browser.click("mfa-passkey").await;
    let status = browser
        .wait_text("status", |t| !t.starts_with("Use a passkey"))
        .await;
    assert_eq!(status, "Logged in as ivy (header transport).");
    log_out(browser).await;
    browser.remove_authenticator(&authenticator).await;
}

/// Swagger UI's password flow ("Authorize") from a page on another origin:
/// a form POST to `/oauth/token` with `X-Requested-With: XMLHttpRequest`,
/// which needs a preflight. Chromium's own CORS check decides: a listed
/// origin gets the tokens, another one a failed fetch (issue 30, item 5).
async fn a_listed_origin_gets_tokens_as_swagger_ui_asks_and_another_is_refused(browser: &Browser) {
    // Each server is an origin of its own (its port): one hosts the page of
    // the listed origin, one the page of another.
    let listed = Server::start("").await;
    let other = Server::start("").await;
    let s = Server::start(&format!("cors_allowed_origins = [\"{}\"]", listed.base)).await;
    s.create_user("swagger", false).await;
    let authorize = "const [url, password, done] = arguments;
         fetch(url, {
           method: 'POST',
           headers: {
             'Content-Type': 'application/x-www-form-urlencoded',
             'X-Requested-With': 'XMLHttpRequest',
           },
           body: new URLSearchParams({ grant_type: 'password', username: 'swagger', password }),
         })
           .then((r) => r.json().then((b) => done(`${r.status} ${typeof b.access_token}`)))
           .catch((e) => done(`failed: ${e.name}`));";
    let b = &browser.client;
    let token_url = json!(format!("{}/oauth/token", s.base));
    b.goto(&format!("{}/healthz", listed.base)).await.unwrap();
    let answer = b
        .execute_async(authorize, vec![token_url.clone(), json!(PASSWORD)])
        .await
        .unwrap();
    assert_eq!(answer, json!("200 string"));
    b.goto(&format!("{}/healthz", other.base)).await.unwrap();
    let answer = b
        .execute_async(authorize, vec![token_url, json!(PASSWORD)])
        .await
        .unwrap();
    assert_eq!(answer, json!("failed: TypeError"));
}

/// axios's browser build, where `.ci/install-test-tools` installs axios
/// (skipped, saying so, when it is missing).
fn axios_browser_build() -> Option<String> {
    let path = std::env::var_os("HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(".cache/tessera-node/node_modules/axios/dist/esm/axios.js");
    let text = std::fs::read_to_string(&path).ok();
    available(&format!("axios in {}", path.display()), text.is_some()).then_some(text?)
}

/// Serves `files` (name, content type, body) on 127.0.0.1: a page of an app
/// on an origin of its own, with no Content-Security-Policy. Its origin.
async fn serve_page(files: Vec<(&'static str, &'static str, String)>) -> String {
    let files: std::sync::Arc<std::collections::HashMap<String, (&'static str, String)>> =
        std::sync::Arc::new(
            files
                .into_iter()
                .map(|(name, kind, body)| (format!("/{name}"), (kind, body)))
                .collect(),
        );
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let files = files.clone();
        async move {
            match files.get(uri.path()) {
                Some((kind, body)) => (
                    axum::http::StatusCode::OK,
                    [(axum::http::header::CONTENT_TYPE, *kind)],
                    body.clone(),
                ),
                None => (
                    axum::http::StatusCode::NOT_FOUND,
                    [(axum::http::header::CONTENT_TYPE, "text/plain")],
                    String::new(),
                ),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    origin
}

/// The axios adapter of the JS client's package in cookie transport, with
/// the real axios in Chromium, on an app's page of another origin (listed in
/// `cors_allowed_origins`): requests carry the cookies (`withCredentials`)
/// and, when unsafe, the CSRF header, never an `Authorization`; five that
/// find the access token expired share one refresh, with rotation and no
/// grace period, where a second refresh of the cookie would end the session.
async fn the_axios_adapter_in_cookie_transport_shares_one_refresh(browser: &Browser) {
    let Some(axios) = axios_browser_build() else {
        return;
    };
    let client_dir = package_dir().join("../../clients/js");
    let read = |name: &str| std::fs::read_to_string(client_dir.join(name)).unwrap();
    const JS: &str = "text/javascript; charset=utf-8";
    let page = serve_page(vec![
        (
            "index.html",
            "text/html; charset=utf-8",
            "<!doctype html><title>app</title>".to_owned(),
        ),
        ("axios.js", JS, axios),
        ("tessera.js", JS, read("tessera.js")),
        ("tessera-axios.js", JS, read("axios.js")),
    ])
    .await;
    let s = Server::start(&format!(
        "access_token_lifetime = \"60s\"\ntoken_locations = [\"headers\", \"cookies\"]\ncookie_secure = false\n\
         rotate_refresh_tokens = true\nblacklist_after_rotation = true\nrefresh_grace_period = \"0s\"\n\
         cors_allowed_origins = [\"{page}\"]"
    ))
    .await;
    s.create_user("pat", false).await;
    let b = &browser.client;
    b.delete_all_cookies().await.unwrap();
    b.goto(&format!("{page}/index.html")).await.unwrap();
    let logged_in = b
        .execute_async(
            "const [tessera, username, password, done] = arguments;
             Promise.all([import('/axios.js'), import('/tessera.js'), import('/tessera-axios.js')])
               .then(async ([{ default: axios }, { createClient }, { attachTessera }]) => {
                 const events = { logouts: 0 };
                 const client = createClient({ baseUrl: tessera, transport: 'cookie', refreshAhead: false,
                                               onLogout: () => events.logouts++ });
                 await client.login(username, password);
                 const api = axios.create({ baseURL: tessera });
                 attachTessera(api, client);
                 window.app = { api, client, events };
                 const me = await api.get('/api/auth/me');
                 done([me.status, me.data.username, me.config.withCredentials,
                       me.config.headers.get('Authorization') ?? null]);
               })
               .catch((e) => done(`failed: ${e}`));",
            vec![json!(s.base), json!("pat"), json!(PASSWORD)],
        )
        .await
        .unwrap();
    assert_eq!(logged_in, json!([200, "pat", true, null]));

    // Past the access token's expiry on the server's clock (the browser's
    // does not move, so the 401s, not the client's own reckoning, tell it).
    s.advance(Duration::from_secs(61));
    let before = refreshes(&s).await;
    let after_expiry = b
        .execute_async(
            "const [tessera, done] = arguments;
             const { api, client, events } = window.app;
             Promise.all(Array.from({ length: 5 }, () => api.get('/api/auth/me')))
               .then(async (answers) => {
                 const ended = await api.post('/api/auth/sessions/end-others');
                 const plain = await fetch(`${tessera}/api/auth/sessions/end-others`,
                                           { method: 'POST', credentials: 'include' });
                 done({
                   statuses: answers.map((a) => a.status),
                   fresh: client.token.claims.fresh,
                   ended: ended.status,
                   csrf: typeof ended.config.headers.get('X-CSRF-TOKEN'),
                   withoutCsrf: [plain.status, (await plain.json()).code],
                   logouts: events.logouts,
                 });
               })
               .catch((e) => done(`failed: ${e}`));",
            vec![json!(s.base)],
        )
        .await
        .unwrap();
    assert_eq!(
        after_expiry,
        json!({
            "statuses": [200, 200, 200, 200, 200],
            "fresh": false,
            "ended": 204,
            "csrf": "string",
            "withoutCsrf": [401, "csrf_failed"],
            "logouts": 0,
        })
    );
    assert_eq!(
        refreshes(&s).await - before,
        1,
        "the five requests must share exactly one refresh"
    );
}

/// "Forgot password" on the page, the link in the mail received over SMTP,
/// the page's new-password form (with the policy's messages), and a login
/// with the new password.
async fn a_forgotten_password_is_reset_from_the_mailed_link(browser: &Browser) {
    let Some(mut sink) = mailbox::SmtpSink::start().await else {
        return;
    };
    let s = Server::start(&sink.config()).await;
    let r = s
        .post(
            "/api/auth/signup",
            json!({"username": "quinn", "password": PASSWORD, "email": "quinn@example.com"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let b = &browser.client;
    b.delete_all_cookies().await.unwrap();
    b.goto(&format!("{}/", s.base)).await.unwrap();
    browser.record_errors().await;
    let html = s.get("/").await.text;
    assert!(html.contains(r#"data-email="on""#), "{html}");
    browser.type_into("forgot-email", "quinn@example.com").await;
    browser.click("forgot-send").await;
    browser
        .wait_text("recovery-status", |t| {
            t.contains("a reset link is on its way")
        })
        .await;

    let mail = sink.next().await;
    assert_eq!(mail.to, ["quinn@example.com"]);
    let link = mail.link(mailbox::PUBLIC_URL);
    // public_url is where users reach this server; here, its address.
    let here = link.replacen(mailbox::PUBLIC_URL, &s.base, 1);
    assert!(here.starts_with(&format!("{}/?reset=", s.base)), "{link}");
    b.goto(&here).await.unwrap();
    browser.record_errors().await;
    // The token leaves the address bar (and so the history) at once.
    let address = b.current_url().await.unwrap();
    assert_eq!(address.query(), None, "{address}");
    assert!(
        browser
            .element("reset-form")
            .await
            .is_displayed()
            .await
            .unwrap()
    );

    // A weak password: the policy's message, and the link still works.
    browser.type_into("new-password", "quinn").await;
    browser.click("reset-send").await;
    let refused = browser
        .wait_text("recovery-status", |t| t.starts_with("Not changed:"))
        .await;
    assert!(
        refused.contains("too similar") || refused.contains("too short"),
        "{refused}"
    );
    let new_password = "paper-lantern-orchard-42!";
    browser.type_into("new-password", new_password).await;
    browser.click("reset-send").await;
    browser
        .wait_text("recovery-status", |t| t.starts_with("Password changed."))
        .await;

    // The old password no longer works; the new one logs in on the page.
    let old = s
        .post(
            "/api/token/",
            json!({"username": "quinn", "password": PASSWORD}),
        )
        .await;
    assert_eq!(old.status, 401);
    browser.type_into("username", "quinn").await;
    browser.type_into("password", new_password).await;
    browser.click("login").await;
    browser
        .wait_text("status", |t| t.starts_with("Logged in as quinn"))
        .await;
    assert_eq!(browser.errors().await, json!([]));
}

/// Makes a tab about to send a refresh wait (up to 300 ms) until another
/// tab sends one too: the window in which two tabs without a shared lock
/// would both refresh, usually a few milliseconds, becomes certain. With the
/// lock the other tab never gets that far (it waits for the lock, then sees
/// the refreshed cookies), and the wait runs out.
const REFRESH_BARRIER: &str = "
    const barrier = new BroadcastChannel('refresh-barrier');
    let heard = false;
    let wake = () => {};
    barrier.onmessage = () => { heard = true; wake(); };
    const fetchBefore = window.fetch;
    window.fetch = async (url, init) => {
      if (String(url).includes('/api/token/refresh')) {
        barrier.postMessage('refreshing');
        if (!heard) await new Promise((resolve) => { wake = resolve; setTimeout(resolve, 300); });
      }
      return fetchBefore(url, init);
    };
    window.refreshBarrier = barrier;";

/// On a server without cookie mode the page does not offer cookie
/// transport, the client asked for it anyway says why not (instead of a
/// TypeError), and a header login works with no error on the page.
async fn the_cookie_option_follows_the_server(browser: &Browser) {
    let s = Server::start("access_token_lifetime = \"2s\"").await;
    s.create_user("pat", false).await;
    for path in ["/", "/static/index.html"] {
        let html = s.get(path).await.text;
        assert!(
            html.contains(r#"<html lang="en" data-token-locations="headers" data-email="off">"#)
        );
    }
    let types = s.get("/static/tessera.d.ts").await;
    assert_eq!(types.status, 200);
    assert_eq!(
        types.header("content-type"),
        Some("application/typescript; charset=utf-8")
    );
    assert!(types.text.contains("export function createClient("));
    let b = &browser.client;
    b.delete_all_cookies().await.unwrap();
    b.goto(&format!("{}/", s.base)).await.unwrap();
    browser.record_errors().await;
    let cookie = browser.element("transport-cookie").await;
    assert!(
        !cookie.is_enabled().await.unwrap(),
        "cookie transport offered by a server without cookie mode"
    );
    let note = browser.element("transport-cookie-off").await;
    assert!(note.is_displayed().await.unwrap());
    assert!(note.text().await.unwrap().contains("\"cookies\""));
    let header = browser.element("transport-header").await;
    assert!(header.is_enabled().await.unwrap() && header.is_selected().await.unwrap());

    let refused = b
        .execute_async(
            "const [username, password, done] = arguments;
             import('/static/tessera.js')
               .then(({ createClient }) => createClient({ transport: 'cookie' }).login(username, password))
               .then(() => done('logged in'), (e) => done(e.message));",
            vec![json!("pat"), json!(PASSWORD)],
        )
        .await
        .unwrap();
    assert_eq!(
        refused,
        json!("cookie transport is off on this server (no \"cookies\" in token_locations)")
    );

    browser.type_into("username", "pat").await;
    browser.type_into("password", PASSWORD).await;
    browser.click("login").await;
    browser
        .wait_text("status", |t| t == "Logged in as pat (header transport).")
        .await;
    // The countdown ticks (every 200 ms), and nothing throws.
    let first = browser.wait_text("countdown", |t| t.ends_with(" s")).await;
    browser.wait_text("countdown", |t| t != first).await;
    assert_eq!(browser.errors().await, json!([]));
}

/// In cookie mode (rotating, with the rotated token blacklisted, no grace
/// period): a reload
/// picks up the session without the password, refreshing once when the
/// access token expired; a second window picks it up too, and when both
/// find the token expired at once, one refresh serves both (two would be a
/// reuse that revokes the session). Then the refresh ahead of expiry.
async fn cookie_sessions_survive_reloads_and_tabs_share_one_refresh(browser: &Browser) {
    let s = Server::start(
        "access_token_lifetime = \"60s\"\ntoken_locations = [\"headers\", \"cookies\"]\ncookie_secure = false\nrotate_refresh_tokens = true\nblacklist_after_rotation = true\nrefresh_grace_period = \"0s\"",
    )
    .await;
    s.create_user("pat", false).await;
    let b = &browser.client;
    let page = format!("{}/", s.base);
    let logged_in = |t: &str| t == "Logged in as pat (cookie transport).";
    b.delete_all_cookies().await.unwrap();
    b.goto(&page).await.unwrap();
    browser.type_into("username", "pat").await;
    browser.type_into("password", PASSWORD).await;
    browser.click("transport-cookie").await;
    browser.click("login").await;
    browser.wait_text("status", logged_in).await;
    let before = refreshes(&s).await;

    // A reload: the session is picked up from the cookies.
    b.goto(&page).await.unwrap();
    browser.record_errors().await;
    browser.wait_text("status", logged_in).await;
    assert!(
        browser
            .element("transport-cookie")
            .await
            .is_selected()
            .await
            .unwrap()
    );
    assert!(browser.element("me").await.is_enabled().await.unwrap());
    let me = browser.text("result").await;
    assert!(
        me.starts_with("200 ") && me.contains("\"username\": \"pat\""),
        "{me}"
    );
    browser
        .wait_text("countdown", |t| t == "unknown until the next refresh")
        .await;
    assert_eq!(
        refreshes(&s).await,
        before,
        "a live access cookie needs no refresh"
    );
    assert_eq!(browser.errors().await, json!([]));

    // A reload after the access token expired: one refresh, whose answer
    // shows the new token's claims.
    s.advance(Duration::from_secs(61));
    b.goto(&page).await.unwrap();
    browser.record_errors().await;
    browser.wait_text("status", logged_in).await;
    let claims: Value = serde_json::from_str(&browser.text("claims").await).unwrap();
    assert_eq!(claims["username"], "pat");
    assert_eq!(claims["fresh"], false);
    assert_eq!(refreshes(&s).await - before, 1);
    browser.wait_text("countdown", |t| t.ends_with(" s")).await;
    assert_eq!(browser.errors().await, json!([]));

    // A second window (a background tab's events would be throttled) picks
    // the session up too. Both tabs get the barrier, and the second waits
    // for the first's signal to fire its five calls, so that both find the
    // token expired at the same moment.
    let first = b.window().await.unwrap();
    let second = b.new_window(false).await.unwrap().handle;
    b.switch_to_window(second.clone()).await.unwrap();
    b.goto(&page).await.unwrap();
    browser.record_errors().await;
    browser.wait_text("status", logged_in).await;
    b.execute(REFRESH_BARRIER, vec![]).await.unwrap();
    b.execute(
        "window.go = new BroadcastChannel('go');
         go.onmessage = () => document.getElementById('burst').click();",
        vec![],
    )
    .await
    .unwrap();
    s.advance(Duration::from_secs(61));
    let before = refreshes(&s).await;
    b.switch_to_window(first.clone()).await.unwrap();
    b.execute(REFRESH_BARRIER, vec![]).await.unwrap();
    b.execute(
        "window.go = new BroadcastChannel('go');
         go.postMessage('go');
         document.getElementById('burst').click();",
        vec![],
    )
    .await
    .unwrap();
    let five = |t: &str| t.contains("of 5 succeeded");
    assert_eq!(browser.wait_text("result", five).await, "5 of 5 succeeded");
    b.switch_to_window(second.clone()).await.unwrap();
    assert_eq!(browser.wait_text("result", five).await, "5 of 5 succeeded");
    assert_eq!(
        refreshes(&s).await - before,
        1,
        "the two tabs must share exactly one refresh"
    );
    // The session lives on in both.
    for window in [&second, &first] {
        b.switch_to_window(window.clone()).await.unwrap();
        browser.click("me").await;
        browser.wait_text("result", |t| t.starts_with("200 ")).await;
        assert_eq!(browser.errors().await, json!([]));
    }
    b.switch_to_window(second).await.unwrap();
    b.close_window().await.unwrap();
    b.switch_to_window(first).await.unwrap();
    browser.click("logout").await;
    browser.wait_text("status", |t| t == "Not logged in.").await;
    assert_eq!(browser.cookie_names().await, Vec::<String>::new());

    // Ahead of expiry: the client schedules a refresh when a tenth of the
    // 60-second lifetime is left. The test runs the timer at once instead,
    // on a fresh page (without the barrier).
    b.goto(&page).await.unwrap();
    let before = refreshes(&s).await;
    let ahead = b
        .execute_async(
            "const [username, password, done] = arguments;
             const delays = [];
             const setTimeoutBefore = window.setTimeout;
             window.setTimeout = (f, delay) => {
               delays.push(delay);
               return setTimeoutBefore(f, delays.length === 1 ? 0 : delay);
             };
             import('/static/tessera.js').then(async ({ createClient }) => {
               const client = createClient();
               await client.login(username, password);
               while (client.token.claims.fresh) await new Promise((r) => setTimeoutBefore(r, 10));
               window.setTimeout = setTimeoutBefore;
               await client.logout();
               done(delays);
             }).catch((e) => done(e.message));",
            vec![json!("pat"), json!(PASSWORD)],
        )
        .await
        .unwrap();
    assert_eq!(
        ahead,
        json!([54_000, 54_000]),
        "scheduled at login and after the refresh"
    );
    assert_eq!(refreshes(&s).await - before, 1);
}

/// Waits until the page's session list has `count` entries.
async fn session_items(browser: &Browser, count: u64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let found = browser
            .client
            .execute(
                "return document.querySelectorAll('#session-list li').length;",
                vec![],
            )
            .await
            .unwrap();
        if found == json!(count) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{found} sessions listed, not {count}"
        );
        tokio::time::sleep(POLL).await;
    }
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
    // On the same browser (a launch is costly), beside the page test: a
    // reset refreshes nothing, so the page test's refresh counts hold.
    a_forgotten_password_is_reset_from_the_mailed_link(&browser).await;
    browser.stop().await;
}
