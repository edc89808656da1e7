//! docs/MIGRATING.md's Django worked example, run as written. Its fenced
//! blocks are read from the guide, so that a change to the guide that
//! breaks the recipe breaks this test, and run for real: two projects made
//! by Django's `startproject` with Django REST framework and
//! djangorestframework-simplejwt (from the virtual environment
//! `.ci/install-test-tools` makes), each given the guide's `settings.py`
//! block. `orders`, whose users Django created and whose `auth_user`
//! Tessera imports, keeps serving `/api/orders/`; `front`, a second
//! service, serves clients by calling `orders` on their behalf with the
//! guide's forwarding snippet. Tessera runs from the guide's `tessera.toml`
//! and its commands (`openssl`, `import-users`, `serve`) in a shell, and
//! the guide's client logs in, refreshes, calls `front` and blacklists.
//! Only addresses and file names change (127.0.0.1, free ports, the test's
//! own directory), and each change checks that the guide still has the text
//! it replaces. The fixtures are in `tests/fixtures/django_services`.

use super::harness::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// What the example imports in Python.
const MODULES: &str =
    "django, rest_framework, rest_framework_simplejwt, requests, jwt, cryptography";

/// The part of the guide the example is in.
const PART: &str = "From djangorestframework-simplejwt";

/// alice's password in Django, which the guide's client logs in with.
const ALICE_PASSWORD: &str = "correct horse battery staple";

/// admin's password in Django (users.py).
const ADMIN_PASSWORD: &str = "staff password 42";

/// The line of `front_urls.py` that the guide's forwarding snippet replaces.
const FORWARDING_MARK: &str =
    "    # MIGRATING.md's forwarding snippet, its request's answer kept as `forwarded`\n";

/// What the test adds to the guide's commands to learn the secret they made
/// (the Django services need it, as they would from the secret store).
const KEY_LINE: &str = "test: signing key ";

/// How long any one step (a command, a server starting) may take.
const STEP: Duration = Duration::from_secs(30);

/// A fenced block of the guide, with the `##` part and `###` section it is in.
struct Block {
    part: String,
    section: String,
    info: String,
    text: String,
}

/// Every fenced block of docs/MIGRATING.md.
fn guide_blocks() -> Vec<Block> {
    let guide = std::fs::read_to_string(package_dir().join("../../docs/MIGRATING.md")).unwrap();
    let (mut part, mut section) = (String::new(), String::new());
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for line in guide.lines() {
        if let Some(block) = open.as_mut() {
            if line.trim_end() == "```" {
                blocks.extend(open.take());
            } else {
                block.text.push_str(line);
                block.text.push('\n');
            }
        } else if let Some(info) = line.strip_prefix("```") {
            open = Some(Block {
                part: part.clone(),
                section: section.clone(),
                info: info.trim().to_owned(),
                text: String::new(),
            });
        } else if let Some(heading) = line.strip_prefix("## ") {
            part = heading.trim().to_owned();
            section.clear();
        } else if let Some(heading) = line.strip_prefix("### ") {
            section = heading.trim().to_owned();
        }
    }
    assert!(
        open.is_none(),
        "docs/MIGRATING.md: a fenced block is not closed"
    );
    blocks
}

/// The fenced blocks of one `###` section of the simplejwt part, in order:
/// (info string, text).
fn section(name: &str) -> Vec<(String, String)> {
    let found: Vec<(String, String)> = guide_blocks()
        .into_iter()
        .filter(|b| b.part == PART && b.section == name)
        .map(|b| (b.info, b.text))
        .collect();
    assert!(
        !found.is_empty(),
        "docs/MIGRATING.md has no fenced block in {PART} / {name}"
    );
    found
}

/// `text` (a block of the guide) with `from` replaced by `to`; `from` must
/// be there, so that the test notices the guide changing under it.
fn swap(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "docs/MIGRATING.md's block no longer has {from:?}:\n{text}"
    );
    text.replace(from, to)
}

/// The blocks of the guide the example is made of.
struct Recipe {
    /// `tessera.toml`.
    toml: String,
    /// The commands that make the secret, import and serve.
    commands: String,
    /// The client's Python.
    client: String,
    /// The `settings.py` block of the Django services.
    settings: String,
    /// `SIMPLE_JWT` with `JWK_URL`, for an asymmetric algorithm.
    jwks: String,
    /// How a service forwards the token it received.
    forwarding: String,
}

impl Recipe {
    fn read() -> Recipe {
        let worked = section("Worked example");
        let infos: Vec<&str> = worked.iter().map(|(info, _)| info.as_str()).collect();
        assert_eq!(
            infos,
            ["toml", "sh", "python", "python", "python"],
            "docs/MIGRATING.md's Django worked example has other blocks now; this test runs \
             them in order: tessera.toml, the commands, the client, settings.py, SIMPLE_JWT for the JWKS"
        );
        let mut texts = worked.into_iter().map(|(_, text)| text);
        let [toml, commands, client, settings, jwks] =
            std::array::from_fn(|_| texts.next().expect("five blocks"));
        assert!(settings.starts_with("# settings.py\n"), "{settings}");
        assert!(jwks.contains("\"JWK_URL\""), "{jwks}");
        let mut forwarding = section("What changes for your Django services");
        assert_eq!(
            forwarding.len(),
            1,
            "the forwarding snippet is no longer the one block of its section"
        );
        let (info, forwarding) = forwarding.remove(0);
        assert_eq!(info, "python");
        Recipe {
            toml,
            commands,
            client,
            settings,
            jwks,
            forwarding,
        }
    }
}

/// Which key the Django services verify Tessera's tokens with.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Keys {
    /// The worked example: HS256, Tessera's `signing_key` from
    /// `TESSERA_SIGNING_KEY`, the same secret in the services.
    Secret,
    /// The guide's variant for an asymmetric algorithm: ES256 with
    /// `signing_key` unset, the services reading the JWKS.
    Jwks,
}

/// A long-running process (the guide's commands, a Django server), in a
/// process group of its own: dropping this kills it with everything it
/// started (the shell's `tessera serve`), whether the test passed or not.
struct Group {
    child: tokio::process::Child,
    pid: u32,
}

impl Group {
    fn spawn(command: &mut tokio::process::Command) -> Group {
        let child = command
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .expect("spawn");
        let pid = child.id().expect("a pid");
        Group { child, pid }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let group = -libc::pid_t::try_from(self.pid).expect("a pid");
        // SAFETY: kill(2) touches no memory of this process; the group is
        // the one this child leads (process_group(0)).
        unsafe { libc::kill(group, libc::SIGKILL) };
    }
}

/// A free port on 127.0.0.1 for a Django server (which cannot be given 0).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A file of `tests/fixtures/django_services`.
fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        package_dir()
            .join("tests/fixtures/django_services")
            .join(name),
    )
    .unwrap()
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    file.write_all(text.as_bytes()).unwrap();
}

/// The test's Python processes reach 127.0.0.1 directly, whatever proxy
/// the environment names.
const NO_PROXY: [(&str, &str); 2] = [("NO_PROXY", "127.0.0.1"), ("no_proxy", "127.0.0.1")];

/// Runs `python args` in `dir` to its end with `stdin`, within [`STEP`];
/// its standard output (it must succeed).
async fn run_python(python: &Path, dir: &Path, args: &[&str], stdin: &str) -> String {
    let mut child = tokio::process::Command::new(python)
        .args(args)
        .current_dir(dir)
        .envs(NO_PROXY)
        .env_remove("DJANGO_SETTINGS_MODULE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn python");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let out = tokio::time::timeout(STEP, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("python {args:?} took longer than {STEP:?}"))
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "python {args:?}: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

/// A request's answer, as the harness's tests look at one.
async fn call(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        body,
        text,
    }
}

/// The example running: Tessera, the two Django services, their files.
struct Example {
    // Fields drop in order: the processes end before their directory goes.
    _tessera: Group,
    _orders: Group,
    _front: Group,
    /// Tessera, the guide's `https://auth.example.com`.
    auth: String,
    /// The orders service, which only `front` calls in the guide.
    orders: String,
    /// The front service, the guide's `https://app.example.com`.
    front: String,
    /// The secret the guide's commands made (HS256).
    signing_key: Option<String>,
    /// What users.py printed before the move: the Django ids and a token of simplejwt's.
    before: Value,
    /// The guide's client block, for [`Example::run_client`].
    client: String,
    python: PathBuf,
    http: reqwest::Client,
    dir: tempfile::TempDir,
}

impl Example {
    /// Sets the example up as the guide says; `None` (skipped, saying so)
    /// without Python's packages or openssl.
    async fn start(keys: Keys) -> Option<Example> {
        // The example brings its own SQLite files: on the PostgreSQL binary it
        // would run again exactly as here.
        if on_postgres() {
            return None;
        }
        let python = super::interop::python(
            MODULES,
            "Django, Django REST framework, djangorestframework-simplejwt and requests",
        )?;
        let openssl = std::process::Command::new("openssl")
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success());
        if keys == Keys::Secret
            && !available(
                "openssl (the guide's commands make the secret with it)",
                openssl,
            )
        {
            return None;
        }
        let recipe = Recipe::read();
        let dir = tempfile::Builder::new()
            .prefix("tessera-django")
            .tempdir()
            .unwrap();
        let root = dir.path();

        // Before the move: two DRF projects, and orders' users made by Django.
        for name in ["orders", "front"] {
            run_python(&python, root, &["-m", "django", "startproject", name], "").await;
            append(
                &root.join(name).join(name).join("settings.py"),
                "\nINSTALLED_APPS += [\"rest_framework\"]\n",
            );
        }
        let orders_dir = root.join("orders");
        run_python(&python, &orders_dir, &["manage.py", "migrate", "-v0"], "").await;
        let users = fixture("users.py");
        let printed = run_python(
            &python,
            &orders_dir,
            &["manage.py", "shell", "-v0", "-c", &users],
            "",
        )
        .await;
        let before: Value = serde_json::from_str(printed.trim()).expect(&printed);

        // Tessera, from the guide's tessera.toml and commands.
        let tessera_dir = root.join("tessera");
        std::fs::create_dir(&tessera_dir).unwrap();
        let mut toml = swap(
            &recipe.toml,
            "bind = \"0.0.0.0:8000\"",
            "bind = \"127.0.0.1:0\"",
        );
        toml = swap(
            &toml,
            "sqlite:///var/lib/tessera/tessera.db",
            &format!("sqlite://{}", tessera_dir.join("tessera.db").display()),
        );
        if keys == Keys::Jwks {
            toml = swap(&toml, "algorithm = \"HS256\"", "algorithm = \"ES256\"");
        }
        std::fs::write(tessera_dir.join("tessera.toml"), toml).unwrap();
        let django_db = format!("sqlite://{}", orders_dir.join("db.sqlite3").display());
        let mut commands = swap(&recipe.commands, "postgres://app@db/app", &django_db);
        let export = commands
            .lines()
            .find(|l| l.starts_with("export TESSERA_SIGNING_KEY="))
            .expect("the guide's commands no longer export TESSERA_SIGNING_KEY")
            .to_owned();
        commands = match keys {
            Keys::Secret => swap(
                &commands,
                &export,
                &format!("{export}\necho \"{KEY_LINE}$TESSERA_SIGNING_KEY\""),
            ),
            // signing_key unset, as the guide says for an asymmetric algorithm.
            Keys::Jwks => swap(&commands, &format!("{export}\n"), ""),
        };
        let bin = Path::new(binary()).parent().unwrap().to_owned();
        let path = std::env::var_os("PATH").unwrap_or_default();
        let path =
            std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(&path))).unwrap();
        let log = std::fs::File::create(root.join("tessera.log")).unwrap();
        let mut tessera = Group::spawn(
            tokio::process::Command::new("bash")
                .args(["-e", "-c", &commands])
                .current_dir(&tessera_dir)
                .env("PATH", path)
                .env_remove("TESSERA_SIGNING_KEY")
                .env_remove("TESSERA_CONFIG")
                .envs(hashing_env())
                .stdout(Stdio::piped())
                .stderr(log),
        );
        let mut lines = BufReader::new(tessera.child.stdout.take().unwrap()).lines();
        let mut said = Vec::new();
        let addr = tokio::time::timeout(STEP, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(addr) = line.split("listening on ").nth(1) {
                    return addr.trim().to_owned();
                }
                said.push(line);
            }
            panic!(
                "the guide's commands ended before Tessera listened: {said:?}\n{}",
                std::fs::read_to_string(root.join("tessera.log")).unwrap_or_default()
            );
        })
        .await
        .expect("Tessera did not listen in time");
        // Keep draining, so that Tessera never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        assert!(
            said.iter().any(|l| l
                == "Imported 2 users, 0 already present, 0 skipped, 0 without a usable password."),
            "{said:?}"
        );
        let signing_key = said
            .iter()
            .find_map(|l| l.strip_prefix(KEY_LINE))
            .map(str::to_owned);
        assert_eq!(signing_key.is_some(), keys == Keys::Secret, "{said:?}");
        let auth = format!("http://{addr}");

        // The move: each service takes the guide's settings.py block (with
        // the JWKS, its SIMPLE_JWT becomes the guide's other one) and its
        // urls.py, less simplejwt's token views.
        let settings = match keys {
            Keys::Secret => recipe.settings.clone(),
            Keys::Jwks => {
                let s = &recipe.settings;
                let start = s.find("SIMPLE_JWT = {").expect("SIMPLE_JWT in settings.py");
                let end = start + s[start..].find("\n}\n").expect("SIMPLE_JWT's end") + 3;
                let jwks = swap(&recipe.jwks, "https://auth.example.com", &auth);
                format!("{}{jwks}{}", &s[..start], &s[end..])
            }
        };
        for name in ["orders", "front"] {
            append(
                &root.join(name).join(name).join("settings.py"),
                &format!("\n{settings}"),
            );
        }
        std::fs::write(orders_dir.join("orders/urls.py"), fixture("orders_urls.py")).unwrap();
        let mut forwarding: Vec<String> = recipe.forwarding.lines().map(str::to_owned).collect();
        let last = forwarding.last_mut().expect("a forwarding snippet");
        assert!(
            last.starts_with("requests.get(f\"{BACKEND}"),
            "the guide's forwarding snippet no longer ends with its request: {}",
            recipe.forwarding
        );
        last.insert_str(0, "forwarded = ");
        let forwarding: String = forwarding.iter().map(|l| format!("    {l}\n")).collect();
        std::fs::write(
            root.join("front/front/urls.py"),
            swap(&fixture("front_urls.py"), FORWARDING_MARK, &forwarding),
        )
        .unwrap();

        let (orders_port, front_port) = (free_port(), free_port());
        let orders = format!("http://127.0.0.1:{orders_port}");
        let key_env: Vec<(&str, &str)> = signing_key
            .iter()
            .map(|k| ("TESSERA_SIGNING_KEY", k.as_str()))
            .collect();
        let django = |name: &str, port: u16, env: &[(&str, &str)]| {
            let log = std::fs::File::create(root.join(format!("{name}.log"))).unwrap();
            Group::spawn(
                tokio::process::Command::new(&python)
                    .args(["manage.py", "runserver", "--noreload"])
                    .arg(format!("127.0.0.1:{port}"))
                    .current_dir(root.join(name))
                    .envs(NO_PROXY)
                    .env_remove("DJANGO_SETTINGS_MODULE")
                    .env_remove("TESSERA_SIGNING_KEY")
                    .envs(key_env.iter().copied())
                    .envs(env.iter().copied())
                    .stdout(log.try_clone().unwrap())
                    .stderr(log),
            )
        };
        let mut orders_server = django("orders", orders_port, &[]);
        let mut front_server = django(
            "front",
            front_port,
            &[("BACKEND", &orders), ("TESSERA", &auth)],
        );
        until_listening(orders_port, &mut orders_server, &root.join("orders.log")).await;
        until_listening(front_port, &mut front_server, &root.join("front.log")).await;

        let client = swap(&recipe.client, "https://auth.example.com", &auth);
        let front = format!("http://127.0.0.1:{front_port}");
        let client = swap(&client, "https://app.example.com", &front);
        Some(Example {
            _tessera: tessera,
            _orders: orders_server,
            _front: front_server,
            auth,
            orders,
            front,
            signing_key,
            before,
            client,
            python,
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(STEP)
                .build()
                .unwrap(),
            dir,
        })
    }

    /// Runs the guide's client block: each answer it got and its `tokens`.
    async fn run_client(&self) -> Value {
        let client = fixture("client.py");
        let printed = run_python(
            &self.python,
            self.dir.path(),
            &["-c", &client],
            &self.client,
        )
        .await;
        serde_json::from_str(printed.trim()).expect(&printed)
    }

    /// A password login at Tessera: (access, refresh).
    async fn login(&self, username: &str, password: &str) -> (String, String) {
        let r = call(
            self.http
                .post(format!("{}/api/token/", self.auth))
                .json(&json!({"username": username, "password": password})),
        )
        .await;
        assert_eq!(r.status, 200, "login {username}: {}", r.text);
        let token = |name: &str| r.body[name].as_str().expect(name).to_owned();
        (token("access"), token("refresh"))
    }

    /// `GET url` with this bearer token.
    async fn get(&self, url: &str, token: &str) -> Reply {
        call(self.http.get(url).bearer_auth(token)).await
    }

    /// Checks what the guide's client got, step by step: Tessera's login and
    /// refresh in simplejwt's shape, `front` answering with what `orders`
    /// said of the token it was forwarded, and the blacklist's `{}`.
    fn assert_client(&self, client: &Value, algorithm: &str) {
        let calls = client["calls"].as_array().expect("calls");
        let seen: Vec<(&str, String, u64)> = calls
            .iter()
            .map(|c| {
                (
                    c["method"].as_str().unwrap(),
                    c["url"].as_str().unwrap().to_owned(),
                    c["status"].as_u64().unwrap(),
                )
            })
            .collect();
        let (auth, front) = (&self.auth, &self.front);
        assert_eq!(
            seen,
            [
                ("POST", format!("{auth}/api/token/"), 200),
                ("POST", format!("{auth}/api/token/refresh/"), 200),
                ("GET", format!("{front}/api/orders/"), 200),
                ("POST", format!("{auth}/api/token/blacklist/"), 200),
            ],
            "{client:#}"
        );
        let (login, refreshed) = (&calls[0]["body"], &calls[1]["body"]);
        for body in [login, refreshed] {
            let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
            assert_eq!(keys, ["access", "refresh"], "{body}");
            let access = body["access"].as_str().unwrap();
            let header = segment(access, 0);
            assert_eq!(header["alg"], algorithm, "{header}");
            assert!(header["kid"].is_string(), "{header}");
            let claims = segment(access, 1);
            assert_eq!(
                (
                    &claims["token_type"],
                    &claims["user_id"],
                    &claims["username"],
                    &claims["is_staff"]
                ),
                (&json!("access"), &json!(41), &json!("alice"), &json!(false)),
                "{claims}"
            );
        }
        // Rotation: the client keeps the new refresh token (`tokens |= ...`).
        assert_ne!(login["refresh"], refreshed["refresh"]);
        assert_eq!(&client["tokens"], refreshed);
        assert_eq!(calls[2]["body"], alice_at_orders(), "{client:#}");
        assert_eq!(calls[3]["body"], json!({}));
    }
}

/// What `orders` answers to alice's access token: her Django id (kept by
/// the import, so its own `auth_user` row is hers).
fn alice_at_orders() -> Value {
    json!({"service": "orders", "user_id": 41, "username": "alice", "is_staff": false, "auth_user": "alice"})
}

/// simplejwt's 401 for a presented access token it refuses.
fn simplejwt_refusal(message: &str) -> Value {
    json!({
        "detail": "Given token not valid for any token type",
        "code": "token_not_valid",
        "messages": [{"token_class": "AccessToken", "token_type": "access", "message": message}],
    })
}

/// Waits (within [`STEP`]) until a Django server listens on `port`.
async fn until_listening(port: u16, server: &mut Group, log: &Path) {
    let deadline = Instant::now() + STEP;
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        let log = || std::fs::read_to_string(log).unwrap_or_default();
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!(
                "a Django server ended ({status}) before listening:\n{}",
                log()
            );
        }
        assert!(
            Instant::now() < deadline,
            "a Django server did not listen within {STEP:?}:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_django_worked_example_runs_as_written() {
    let Some(example) = Example::start(Keys::Secret).await else {
        return;
    };
    assert_eq!(
        (&example.before["alice"], &example.before["admin"]),
        (&json!(41), &json!(7))
    );
    let client = example.run_client().await;
    example.assert_client(&client, "HS256");
    let (auth, orders, front) = (&example.auth, &example.orders, &example.front);
    let access = client["tokens"]["access"].as_str().unwrap();
    let refresh = client["tokens"]["refresh"].as_str().unwrap();

    // After the blacklist, Tessera refuses that login's access token at once...
    let me = example.get(&format!("{auth}/api/auth/me"), access).await;
    assert_refused(&me, "revoked");
    let check = example.get(&format!("{auth}/api/auth/check"), access).await;
    assert_refused(&check, "revoked");
    let introspected = call(
        example
            .http
            .post(format!("{auth}/oauth/introspect"))
            .form(&[("token", access)]),
    )
    .await;
    assert_eq!(
        (introspected.status, &introspected.body),
        (200, &json!({"active": false}))
    );
    // ...while a service that verifies tokens by itself cannot see it, as
    // the guide warns.
    let r = example.get(&format!("{orders}/api/orders/"), access).await;
    assert_eq!((r.status, &r.body), (200, &alice_at_orders()), "{}", r.text);
    let r = call(
        example
            .http
            .post(format!("{auth}/api/token/refresh/"))
            .json(&json!({"refresh": refresh})),
    )
    .await;
    assert_token_not_valid(&r);

    // Forwarded as the guide says, the token is Tessera's own; turned into
    // a string by simplejwt, it is signed again without Tessera's kid, fid
    // and ver, and Tessera refuses it.
    let (access, refresh) = example.login("alice", ALICE_PASSWORD).await;
    let r = example.get(&format!("{front}/api/me/"), &access).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let by_token = &r.body["token"];
    assert_eq!(by_token["status"], 200, "{}", r.text);
    assert_eq!(
        (&by_token["body"]["id"], &by_token["body"]["username"]),
        (&json!(41), &json!("alice")),
        "{}",
        r.text
    );
    assert_eq!(
        r.body["str"],
        json!({"status": 401, "body": {"detail": "Given token not valid for any token type", "code": "token_not_valid", "reason": "invalid"}}),
        "{}",
        r.text
    );

    // The services take access tokens only (simplejwt's AccessToken checks
    // token_type), none at all is refused, and simplejwt's own tokens from
    // before the move are refused by the services (another key) and by
    // Tessera (no kid, fid, ver): everyone logs in once more.
    for url in [
        format!("{orders}/api/orders/"),
        format!("{front}/api/orders/"),
    ] {
        let r = example.get(&url, &refresh).await;
        assert_eq!(
            (r.status, &r.body),
            (401, &simplejwt_refusal("Token has wrong type")),
            "{url}"
        );
        let r = call(example.http.get(&url)).await;
        assert_eq!(
            (r.status, &r.body),
            (
                401,
                &json!({"detail": "Authentication credentials were not provided."})
            ),
            "{url}"
        );
        let old = example.before["old_access"].as_str().unwrap();
        let r = example.get(&url, old).await;
        assert_eq!(
            (r.status, &r.body),
            (401, &simplejwt_refusal("Token is invalid")),
            "{url}"
        );
    }
    let old = example.before["old_access"].as_str().unwrap();
    let r = call(
        example
            .http
            .post(format!("{auth}/api/token/verify/"))
            .json(&json!({"token": old})),
    )
    .await;
    assert_token_not_valid(&r);

    // Staff came over with the import and their Django password: is_staff
    // reaches the services, and the admin API lists Django's users at
    // Django's ids.
    let (staff, _) = example.login("admin", ADMIN_PASSWORD).await;
    let r = example.get(&format!("{front}/api/orders/"), &staff).await;
    assert_eq!(
        (r.status, &r.body),
        (
            200,
            &json!({"service": "orders", "user_id": 7, "username": "admin", "is_staff": true, "auth_user": "admin"})
        ),
        "{}",
        r.text
    );
    let r = example
        .get(&format!("{auth}/api/admin/users"), &staff)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let listed: Vec<(&Value, &Value, &Value)> = r.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (&u["id"], &u["username"], &u["is_staff"]))
        .collect();
    assert_eq!(
        listed,
        [
            (&json!(7), &json!("admin"), &json!(true)),
            (&json!(41), &json!("alice"), &json!(false))
        ]
    );

    // There is no createsuperuser to run: for a name the import brought it
    // fails, as the guide says.
    let out = tokio::process::Command::new(binary())
        .args([
            "--config",
            "tessera.toml",
            "createsuperuser",
            "--username",
            "admin",
            "--password-stdin",
        ])
        .current_dir(example.dir.path().join("tessera"))
        .env(
            "TESSERA_SIGNING_KEY",
            example.signing_key.as_deref().unwrap(),
        )
        .env_remove("TESSERA_CONFIG")
        .envs(hashing_env())
        .stdin(Stdio::null())
        .output();
    let out = tokio::time::timeout(STEP, out).await.unwrap().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("A user with that username already exists."),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_django_worked_example_verifies_through_the_jwks_with_es256() {
    let Some(example) = Example::start(Keys::Jwks).await else {
        return;
    };
    let client = example.run_client().await;
    example.assert_client(&client, "ES256");
    let (orders, front) = (&example.orders, &example.front);

    let (access, refresh) = example.login("alice", ALICE_PASSWORD).await;
    let r = example.get(&format!("{orders}/api/orders/"), &access).await;
    assert_eq!((r.status, &r.body), (200, &alice_at_orders()), "{}", r.text);
    let r = example
        .get(&format!("{orders}/api/orders/"), &refresh)
        .await;
    assert_eq!(
        (r.status, &r.body),
        (401, &simplejwt_refusal("Token has wrong type"))
    );
    // With the JWKS, the forwarded token is Tessera's own, and simplejwt
    // cannot even sign the string form: its signing key is Django's
    // SECRET_KEY, which PyJWT cannot read as an EC key.
    let r = example.get(&format!("{front}/api/me/"), &access).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["token"]["status"], 200, "{}", r.text);
    assert_eq!(r.body["token"]["body"]["id"], 41, "{}", r.text);
    assert_eq!(r.body["str"], json!({"error": "ValueError"}), "{}", r.text);
}
