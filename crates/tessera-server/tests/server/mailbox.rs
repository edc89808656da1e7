//! A real SMTP server on 127.0.0.1 for the mail tests: Python's aiosmtpd
//! (in the virtual environment `.ci/install-test-tools` makes) running
//! `fixtures/smtp_sink.py`, whose stdout gives each message received.
//! Also two servers that misbehave: one that drops every connection, and
//! one that never answers.

use serde_json::Value;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// A message the sink accepted.
#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub body: String,
    pub content_type: String,
    pub charset: String,
    pub headers: Vec<(String, String)>,
}

impl Mail {
    /// The first link in the body that starts with `prefix`.
    pub fn link(&self, prefix: &str) -> String {
        self.body
            .split_whitespace()
            .find(|word| word.starts_with(prefix))
            .unwrap_or_else(|| panic!("no link {prefix} in {}", self.body))
            .to_owned()
    }

    /// The value of the `name` parameter of the first link with it.
    pub fn token(&self, name: &str) -> String {
        let marker = format!("?{name}=");
        let word = self
            .body
            .split_whitespace()
            .find(|w| w.contains(&marker))
            .unwrap_or_else(|| panic!("no {marker} link in {}", self.body));
        word.split(&marker).nth(1).unwrap_or_default().to_owned()
    }
}

/// The Python with aiosmtpd, or `None` (the test is skipped, saying so).
pub fn python() -> Option<PathBuf> {
    if !super::harness::servers_can_start() {
        let _ = super::harness::postgres_admin_url(); // says why the test is skipped
        return None;
    }
    let venv = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(".cache/tessera-pyjwt");
    let python = venv.join("bin/python");
    let ready = std::process::Command::new(&python)
        .args(["-c", "import aiosmtpd"])
        .output()
        .is_ok_and(|o| o.status.success());
    let what = format!("aiosmtpd in the virtual environment {}", venv.display());
    super::harness::available(&what, ready).then_some(python)
}

/// A port of 127.0.0.1 where no mail server runs yet: bound, so that no
/// other test's server can take it meanwhile, and not listening, so that a
/// connection is refused at once. Dropped right before a mail server starts
/// on it.
pub struct ClosedPort {
    pub port: u16,
    _socket: tokio::net::TcpSocket,
}

impl ClosedPort {
    pub fn new() -> ClosedPort {
        // Without SO_REUSEADDR: no other socket may bind the port.
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("bind");
        let port = socket.local_addr().expect("addr").port();
        ClosedPort {
            port,
            _socket: socket,
        }
    }
}

/// The SMTP sink: a child process, killed when dropped.
pub struct SmtpSink {
    pub port: u16,
    child: Child,
    mail: mpsc::UnboundedReceiver<Mail>,
}

impl SmtpSink {
    /// A sink on a port of its own; `None` without aiosmtpd.
    pub async fn start() -> Option<SmtpSink> {
        Self::start_on(0, false).await
    }

    /// A sink on `port` (0: any); with `refuse`, every recipient is refused.
    pub async fn start_on(port: u16, refuse: bool) -> Option<SmtpSink> {
        if !super::harness::servers_can_start() {
            let _ = super::harness::postgres_admin_url(); // says why the test is skipped
            return None;
        }
        let python = python()?;
        let script = super::harness::package_dir().join("tests/fixtures/smtp_sink.py");
        let mut command = Command::new(python);
        command.arg(script).arg(port.to_string());
        if refuse {
            command.arg("--refuse-recipients");
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start the SMTP sink");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the SMTP sink did not start in time")
            .expect("read the SMTP sink")
            .expect("the SMTP sink exited");
        let ready: Value = serde_json::from_str(&ready).expect("ready line");
        let port = ready["ready"].as_u64().expect("port") as u16;
        let (send, mail) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let v: Value = serde_json::from_str(&line).expect("a JSON line");
                let text = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
                let _ = send.send(Mail {
                    from: text("from"),
                    to: v["to"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|t| t.as_str())
                                .map(str::to_owned)
                                .collect()
                        })
                        .unwrap_or_default(),
                    subject: text("subject"),
                    body: text("body"),
                    content_type: text("content_type"),
                    charset: text("charset"),
                    headers: v["headers"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .map(|h| {
                                    let part =
                                        |i: usize| h[i].as_str().unwrap_or_default().to_owned();
                                    (part(0), part(1))
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                });
            }
        });
        Some(SmtpSink { port, child, mail })
    }

    /// `smtp_url` and `public_url` for a server that mails through this sink.
    pub fn config(&self) -> String {
        config_for(self.port)
    }

    /// The next message, waiting at most `within`.
    pub async fn next_within(&mut self, within: Duration) -> Option<Mail> {
        tokio::time::timeout(within, self.mail.recv())
            .await
            .ok()
            .flatten()
    }

    /// The next message; fails the test after 20 s.
    pub async fn next(&mut self) -> Mail {
        self.next_within(Duration::from_secs(20))
            .await
            .expect("no mail arrived within 20 s")
    }

    /// Stops the sink (its port is free afterwards).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// The mail settings of a server whose mail server is on `port`.
pub fn config_for(port: u16) -> String {
    format!("smtp_url = \"smtp://127.0.0.1:{port}\"\npublic_url = \"{PUBLIC_URL}\"\n")
}

/// The `public_url` of the mail tests: links must be built from it.
pub const PUBLIC_URL: &str = "https://auth.tessera.test";

/// A mail server that misbehaves, on a port of its own, until dropped.
pub struct BadServer {
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for BadServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl BadServer {
    /// Accepts connections and closes them at once.
    pub async fn dropping() -> BadServer {
        Self::serve(false).await
    }

    /// Accepts connections and never says a word.
    pub async fn silent() -> BadServer {
        Self::serve(true).await
    }

    async fn serve(hold: bool) -> BadServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                if hold {
                    held.push(socket);
                }
            }
        });
        BadServer { port, task }
    }
}
