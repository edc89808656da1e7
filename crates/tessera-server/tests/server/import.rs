//! `tessera import-users` from a real Django's database and dumpdata output
//! (tests/fixtures/django, made by its make_fixtures.py) and from JSON lines,
//! logins with the imported passwords, Django's groups as roles, and every
//! kind of bad source.

use super::harness::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use tessera_store::UserRecord;

fn fixtures() -> String {
    format!("{}/tests/fixtures/django", package_dir().display())
}

/// Settings of these tests: failed logins are part of them.
const CONFIG: &str = "login_rate_limit = \"off\"";

/// The summary of importing the fixtures into an empty database.
const FIRST_SUMMARY: &str =
    "Imported 12 users, 0 already present, 0 skipped, 2 without a usable password.";

/// Each fixture user's password (`None`: Django's unusable password).
fn passwords() -> BTreeMap<String, Option<String>> {
    let text = std::fs::read_to_string(Path::new(&fixtures()).join("passwords.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The fixture users as the jsonl file has them, by username.
fn jsonl_users() -> BTreeMap<String, Value> {
    let text = std::fs::read_to_string(Path::new(&fixtures()).join("users.jsonl")).unwrap();
    text.lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .map(|user| (user["username"].as_str().unwrap().to_owned(), user))
        .collect()
}

/// Each fixture user's Django groups, sorted by code point as Tessera
/// sorts roles: make_fixtures.py's MEMBERSHIPS (its README's table), written
/// out here so that no fixture file is checked against itself.
fn django_groups() -> BTreeMap<String, Vec<String>> {
    let members: [(&str, &[&str]); 5] = [
        ("pbkdf2_user", &["billing", "editors"]),
        ("staff_user", &["ops team"]),
        ("admin", &["editors"]),
        ("inactive_user", &["billing"]),
        ("zoë.ünïcode", &["ops team", "Ünïcode"]),
    ];
    let mut groups: BTreeMap<String, Vec<String>> =
        passwords().into_keys().map(|u| (u, Vec::new())).collect();
    for (username, names) in members {
        let slot = groups.get_mut(username).unwrap();
        *slot = names.iter().map(|n| n.to_string()).collect();
    }
    assert_eq!(groups.len(), 12);
    groups
}

/// Each user's roles as stored, by username.
async fn roles(s: &Server) -> BTreeMap<String, Vec<String>> {
    users(s)
        .await
        .into_iter()
        .map(|u| (u.username, serde_json::from_str(&u.roles).unwrap()))
        .collect()
}

fn django_db() -> String {
    format!("sqlite://{}/db.sqlite3", fixtures())
}

fn fixture(name: &str) -> String {
    format!("{}/{name}", fixtures())
}

/// Runs `tessera import-users ARGS`, expecting success; its standard output.
async fn import(s: &Server, args: &[&str]) -> String {
    let mut all = vec!["import-users"];
    all.extend_from_slice(args);
    let (code, out, err) = s.cli(&all, None).await;
    assert_eq!(code, 0, "import-users {args:?}: {out}\n{err}");
    out
}

/// The users in the database, ordered by id.
async fn users(s: &Server) -> Vec<UserRecord> {
    s.store().await.all_users().await.unwrap()
}

async fn log_in(s: &Server, username: &str, password: &str) -> Reply {
    s.post(
        "/api/token/",
        json!({"username": username, "password": password}),
    )
    .await
}

/// Tessera's own hash, as `tessera_core::password::hash` makes it (in the
/// tests, at the minimum cost they hash at).
fn is_tesseras_own(hash: &str) -> bool {
    hash.starts_with("$argon2id$v=19$m=8,t=1,p=1$")
}

#[tokio::test]
async fn django_users_log_in_with_their_old_passwords_which_become_argon2id() {
    let s = Server::start(CONFIG).await;
    let out = import(&s, &["--django-db", &django_db()]).await;
    assert!(out.ends_with(&format!("{FIRST_SUMMARY}\n")), "{out}");
    // The unknown scheme is told, and Django's unusable password too.
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            without_password(&s, "unusable_user", UNUSABLE)
                .await
                .as_str(),
            without_password(&s, "md5_user", "unknown password hash scheme `md5`")
                .await
                .as_str(),
            FIRST_SUMMARY,
        ]
    );
    for (username, password) in passwords() {
        let before = stored(&s, &username).await;
        let Some(password) = password else {
            assert_eq!(log_in(&s, &username, "").await.status, 400, "{username}");
            assert_eq!(log_in(&s, &username, "!").await.status, 401, "{username}");
            continue;
        };
        let wrong = log_in(&s, &username, &format!("{password}x")).await;
        assert_eq!(wrong.status, 401, "{username} with a wrong password");
        let r = log_in(&s, &username, &password).await;
        if username == "inactive_user" || username == "md5_user" {
            assert_eq!(r.status, 401, "{username}: {}", r.text);
            assert_eq!(stored(&s, &username).await, before, "{username}");
            continue;
        }
        assert_eq!(r.status, 200, "{username}: {}", r.text);
        let me = s.me(r.body["access"].as_str().unwrap()).await;
        assert_eq!(me.body["id"], before.id, "{username}");
        let after = stored(&s, &username).await;
        assert!(!is_tesseras_own(&before.password_hash), "{username}");
        assert!(
            is_tesseras_own(&after.password_hash),
            "{username}: {}",
            after.password_hash
        );
        assert!(after.last_login > before.last_login, "{username}");
        // The new hash holds the same password, and nothing else.
        assert_eq!(log_in(&s, &username, &password).await.status, 200);
        assert_eq!(log_in(&s, &username, "wrong").await.status, 401);
    }
    s.assert_healthy().await;
}

/// Why a user with Django's unusable password (`!...`) has none.
const UNUSABLE: &str = "none was set (an empty hash, or an unusable one: `!...`)";

/// The importer's line for `username`, imported from the fixture database
/// without a usable password because of `reason`.
async fn without_password(s: &Server, username: &str, reason: &str) -> String {
    let id = stored(s, username).await.id;
    format!(
        "imported row {} (id {id}, \"{username}\") without a usable password: {reason}",
        row_of(s, id).await
    )
}

/// Issue 30, item 4: Flask's users, with the hashes werkzeug's
/// `generate_password_hash` wrote (tests/fixtures/werkzeug, made by its
/// make_fixtures.py with werkzeug itself), were imported without a usable
/// password. Both of its kinds log in now, scrypt at werkzeug's default
/// cost among them, and become Argon2id; a hash past the budget is named.
#[tokio::test]
async fn flask_users_log_in_with_their_werkzeug_hashes_which_become_argon2id() {
    let s = Server::start(CONFIG).await;
    let dir = format!("{}/tests/fixtures/werkzeug", package_dir().display());
    let out = import(&s, &["--jsonl", &format!("{dir}/users.jsonl")]).await;
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "imported line 5 (id 5, \"flask_sha512_costly\") without a usable password: \
             password hash too costly to check: werkzeug pbkdf2:sha512 iterations 1000000: \
             the work of 26 native logins (at most 20)",
            "Imported 5 users, 0 already present, 0 skipped, 1 without a usable password.",
        ]
    );
    let text = std::fs::read_to_string(format!("{dir}/passwords.json")).unwrap();
    let passwords: BTreeMap<String, String> = serde_json::from_str(&text).unwrap();
    assert_eq!(passwords.len(), 5);
    for (username, password) in passwords {
        let before = stored(&s, &username).await;
        let wrong = log_in(&s, &username, &format!("{password}x")).await;
        assert_eq!(wrong.status, 401, "{username} with a wrong password");
        let r = log_in(&s, &username, &password).await;
        if username == "flask_sha512_costly" {
            assert_eq!(r.status, 401, "{username}: {}", r.text);
            assert_eq!(stored(&s, &username).await, before, "{username}");
            continue;
        }
        assert_eq!(r.status, 200, "{username}: {}", r.text);
        let after = stored(&s, &username).await;
        assert!(
            before.password_hash.starts_with("scrypt:")
                || before.password_hash.starts_with("pbkdf2:"),
            "{username}: {}",
            before.password_hash
        );
        assert!(
            is_tesseras_own(&after.password_hash),
            "{username}: {}",
            after.password_hash
        );
        assert_eq!(log_in(&s, &username, &password).await.status, 200);
        assert_eq!(log_in(&s, &username, "wrong").await.status, 401);
    }
    s.assert_healthy().await;
}

/// Where the user with `id` is in the fixture database, counted from 1 in
/// id order (the importer's row numbers).
async fn row_of(s: &Server, id: i64) -> usize {
    users(s).await.iter().position(|u| u.id == id).unwrap() + 1
}

async fn stored(s: &Server, username: &str) -> UserRecord {
    let users = users(s).await;
    let user = users.into_iter().find(|u| u.username == username);
    user.unwrap_or_else(|| panic!("{username} is not in the database"))
}

#[tokio::test]
async fn the_api_shows_each_imported_user_as_django_had_it() {
    let s = Server::start(CONFIG).await;
    import(&s, &["--django-db", &django_db()]).await;
    let admin = passwords()["admin"].clone().unwrap();
    let r = log_in(&s, "admin", &admin).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let access = r.body["access"].as_str().unwrap().to_owned();
    let listed = s
        .get_with_token("/api/admin/users?page_size=100", &access)
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let listed: BTreeMap<String, Value> = listed.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["username"].as_str().unwrap().to_owned(), u.clone()))
        .collect();
    let expected = jsonl_users();
    assert_eq!(
        listed.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (username, want) in &expected {
        let got = &listed[username];
        assert_eq!(got["id"], want["id"], "{username}");
        assert_eq!(got["email"], want["email"], "{username}");
        assert_eq!(got["is_staff"], want["is_staff"], "{username}");
        assert_eq!(got["is_active"], want["is_active"], "{username}");
        assert_eq!(got["roles"], json!(django_groups()[username]), "{username}");
        // The API shows whole seconds; Django kept microseconds.
        let joined = want["date_joined"].as_str().unwrap();
        assert_eq!(
            got["date_joined"].as_str().unwrap(),
            format!("{}Z", &joined[..19]),
            "{username}"
        );
    }
    assert_eq!(listed["admin"]["is_staff"], true);
    assert_eq!(listed["staff_user"]["is_staff"], true);
    assert_eq!(listed["inactive_user"]["is_active"], false);
    assert!(listed.contains_key("zoë.ünïcode"));
    // A signup takes an id after the highest imported one.
    let new = s.signup("newcomer").await;
    assert_eq!(new.body["id"], 43, "{}", new.text);
}

#[tokio::test]
async fn the_three_sources_import_the_same_users() {
    let from_db = Server::start(CONFIG).await;
    import(&from_db, &["--django-db", &django_db()]).await;
    let expected = users(&from_db).await;
    assert_eq!(expected.len(), 12);
    assert_eq!(expected.last().map(|u| u.id), Some(42));
    // Their groups too (compared below with every other source's).
    assert_eq!(roles(&from_db).await, django_groups());
    for (flag, file) in [
        ("--django-json", "auth_user.json"),
        ("--django-json", "auth_user.natural.json"),
        ("--jsonl", "users.jsonl"),
    ] {
        let s = Server::start(CONFIG).await;
        let out = import(&s, &[flag, &fixture(file)]).await;
        assert!(
            out.ends_with(&format!("{FIRST_SUMMARY}\n")),
            "{file}: {out}"
        );
        let mut got = users(&s).await;
        if flag == "--jsonl" {
            // The jsonl format has no is_superuser (a superuser comes as
            // staff); everything else is the same.
            let admin = got.iter_mut().find(|u| u.username == "admin").unwrap();
            assert!(admin.is_staff && !admin.is_superuser);
            admin.is_superuser = true;
        }
        // dumpdata keeps milliseconds and jsonl microseconds; everything is
        // stored in whole seconds, so all three agree. The roles are the
        // same sorted array whether the source named the groups by id
        // (unsorted), by natural key or in jsonl's "roles".
        assert_eq!(got, expected, "{file}");
        // The same hashes, so the same logins (each kind is logged in with
        // above); one through this source, with a non-ASCII password.
        let password = passwords()["zoë.ünïcode"].clone().unwrap();
        assert_eq!(
            log_in(&s, "zoë.ünïcode", &password).await.status,
            200,
            "{file}"
        );
        assert_eq!(
            log_in(&s, "zoë.ünïcode", "pässwörd").await.status,
            401,
            "{file}"
        );
    }
}

#[tokio::test]
async fn a_second_import_of_any_source_changes_nothing_and_says_so() {
    let s = Server::start(CONFIG).await;
    import(&s, &["--django-db", &django_db()]).await;
    // One user has logged in since (new hash, last_login).
    let password = passwords()["pbkdf2_user"].clone().unwrap();
    assert_eq!(log_in(&s, "pbkdf2_user", &password).await.status, 200);
    let before = users(&s).await;
    let again = "Imported 0 users, 12 already present, 0 skipped, 0 without a usable password. \
                 Nothing to do: every user is already here.\n";
    for args in [
        ["--django-db", &django_db()],
        ["--django-json", &fixture("auth_user.json")],
        ["--django-json", &fixture("auth_user.natural.json")],
        ["--jsonl", &fixture("users.jsonl")],
    ] {
        assert_eq!(import(&s, &args).await, again, "{args:?}");
    }
    assert_eq!(users(&s).await, before);
    assert_eq!(log_in(&s, "pbkdf2_user", &password).await.status, 200);
}

#[tokio::test]
async fn a_dry_run_reports_everything_and_writes_nothing() {
    let s = Server::start(CONFIG).await;
    let out = import(
        &s,
        &["--django-json", &fixture("auth_user.json"), "--dry-run"],
    )
    .await;
    assert!(
        out.ends_with(
            "Dry run, nothing written: would import 12 users, 0 already present, 0 skipped, \
             2 without a usable password.\n"
        ),
        "{out}"
    );
    // Both are named, the `!` user too: it was only counted (issue 30,
    // item 4). dumpdata's rows are its array's elements, the 5 groups
    // first, then the users in id order: unusable_user (id 10) is the 15th.
    let named: Vec<_> = out.lines().filter(|l| l.starts_with("imported ")).collect();
    assert_eq!(
        named,
        [
            format!(
                "imported row 15 (id 10, \"unusable_user\") without a usable password: {UNUSABLE}"
            )
            .as_str(),
            "imported row 16 (id 20, \"md5_user\") without a usable password: unknown password hash scheme `md5`",
        ],
        "{out}"
    );
    assert!(users(&s).await.is_empty());
    // Not even the id sequence moved.
    assert_eq!(s.signup("first").await.body["id"], 1);
}

/// A jsonl file in the server's directory with these lines.
fn jsonl(s: &Server, name: &str, lines: &[String]) -> String {
    let path = s.dir().join(name);
    std::fs::write(&path, lines.join("\n")).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn bad_rows_are_skipped_each_with_a_line_and_the_good_ones_imported() {
    let s = Server::start(CONFIG).await;
    s.create_user("Joe", false).await;
    let joe = stored(&s, "Joe").await;
    let good = passwords();
    let pbkdf2 = jsonl_users()["pbkdf2_user"]["password"].clone();
    let row = |fields: Value| fields.to_string();
    let lines = [
        row(json!({"id": 100, "username": "good", "password": pbkdf2})),
        row(json!({"id": 101, "password": pbkdf2})),
        row(json!({"id": 102, "username": "nopass"})),
        row(json!({"id": "seven", "username": "badid", "password": pbkdf2})),
        row(
            json!({"id": 104, "username": "baddate", "password": pbkdf2, "date_joined": "31/01/2024"}),
        ),
        "{\"id\": 105, \"username\": \"cut".into(),
        "[1, 2]".into(),
        // NFKC makes this "Joe", who exists with another id.
        row(json!({"id": 108, "username": "Ｊｏｅ", "password": pbkdf2})),
        row(json!({"id": 100, "username": "again", "password": pbkdf2})),
        row(json!({"id": 110, "username": "sha512", "password": "sha512$salt$abc"})),
        row(
            json!({"id": 111, "username": "pbkdf2_huge", "password": "pbkdf2_sha256$1000000000000$salt$aGFzaA=="}),
        ),
        row(
            json!({"id": 112, "username": "bcrypt_31", "password": "bcrypt$$2b$31$abcdefghijklmnopqrstuuVXi7ffDnEtDAtvM8RrUc7dxXjPMgAVm"}),
        ),
        row(
            json!({"id": 113, "username": "scrypt_huge", "password": "scrypt$1099511627776$salt$8$1$aGFzaA=="}),
        ),
        row(
            json!({"id": 114, "username": "argon_huge", "password": "$argon2id$v=19$m=4194304,t=1,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG"}),
        ),
        // Issue 29 item 7: few iterations, but a 256 KiB key (8,192 blocks
        // each running every iteration); two logins pinned the server.
        row(
            json!({"id": 115, "username": "pbkdf2_long_key", "password": format!("pbkdf2_sha256$200000$salt${}", "A".repeat(4 * 87_382))}),
        ),
    ];
    let file = jsonl(&s, "bad.jsonl", &lines);
    let out = import(&s, &["--jsonl", &file]).await;
    let expected = [
        "skipped line 2: no username".to_owned(),
        "skipped line 3: no password field".to_owned(),
        "skipped line 4: id \"seven\" is not a positive integer".to_owned(),
        "skipped line 5: date_joined \"31/01/2024\" is not a date (expected RFC 3339, such as 2024-01-31T08:00:00Z)".to_owned(),
        "skipped line 6: is not JSON (EOF while parsing a string at line 1 column 28)".to_owned(),
        "skipped line 7: is not a JSON object".to_owned(),
        "skipped line 9 (id 100, \"again\"): the same id as line 1".to_owned(),
        format!("skipped line 8 (id 108, \"Joe\"): its username (after normalisation) belongs to another user here, id {}", joe.id),
        "imported line 10 (id 110, \"sha512\") without a usable password: unknown password hash scheme `sha512`".to_owned(),
        "imported line 11 (id 111, \"pbkdf2_huge\") without a usable password: password hash too costly to check: pbkdf2_sha256 iterations 1000000000000: the work of 12849507 native logins (at most 20)".to_owned(),
        "imported line 12 (id 112, \"bcrypt_31\") without a usable password: password hash too costly to check: bcrypt cost 31: the work of 8830114 native logins (at most 20)".to_owned(),
        "imported line 13 (id 113, \"scrypt_huge\") without a usable password: password hash too costly to check: scrypt N=2^40, r=8: 1073741824 MiB of memory (at most 256)".to_owned(),
        "imported line 14 (id 114, \"argon_huge\") without a usable password: password hash too costly to check: argon2 memory 4194304 KiB (at most 262144)".to_owned(),
        "imported line 15 (id 115, \"pbkdf2_long_key\") without a usable password: malformed pbkdf2_sha256 password hash".to_owned(),
        "Imported 7 users, 0 already present, 8 skipped, 6 without a usable password.".to_owned(),
    ];
    assert_eq!(out.lines().collect::<Vec<_>>(), expected);
    // The good row logs in; the costly hashes are refused without being run.
    let password = good["pbkdf2_user"].clone().unwrap();
    assert_eq!(log_in(&s, "good", &password).await.status, 200);
    for username in [
        "pbkdf2_huge",
        "bcrypt_31",
        "scrypt_huge",
        "argon_huge",
        "pbkdf2_long_key",
    ] {
        let started = std::time::Instant::now();
        assert_eq!(log_in(&s, username, "password").await.status, 401);
        assert!(started.elapsed().as_secs() < 5, "{username}");
    }
    assert_eq!(
        stored(&s, "Joe").await,
        joe,
        "the existing user is untouched"
    );
    s.assert_healthy().await;
}

/// Issue 29 item 12: bcrypt reads a password's first 72 bytes, so any
/// password sharing them logged in to a plain bcrypt user and became the
/// user's password, after which the owner's own was refused.
#[tokio::test]
async fn a_plain_bcrypt_user_is_not_logged_in_with_what_bcrypt_cannot_tell_apart() {
    let s = Server::start(CONFIG).await;
    // passlib's bcrypt of 100 "x" (tessera-core's vectors.json).
    let hash = "$2b$04$tdb1/97EC58fLzIsHBgPUee7Nj1Y/uQzx4zIX4hSD7PDcIanOzVB.";
    let line = json!({"id": 7, "username": "long", "password": hash}).to_string();
    let file = jsonl(&s, "long.jsonl", &[line]);
    import(&s, &["--jsonl", &file]).await;
    let before = stored(&s, "long").await;
    let someone_else = format!("{}, and then anything", "x".repeat(72));
    let owner = "x".repeat(100);
    for password in [&someone_else, &owner] {
        let r = log_in(&s, "long", password).await;
        assert_eq!(r.status, 401, "{password}: {}", r.text);
    }
    assert_eq!(stored(&s, "long").await, before, "the hash is kept");
}

#[tokio::test]
async fn ids_past_the_bound_are_skipped_and_signups_go_on_after_the_rest() {
    let s = Server::start(CONFIG).await;
    let row =
        |id: i64, name: &str| json!({"id": id, "username": name, "password": "!"}).to_string();
    let lines = [
        row(i64::MAX, "max"),
        row((1 << 52) + 1, "past"),
        row(1 << 52, "edge"),
    ];
    let file = jsonl(&s, "ids.jsonl", &lines);
    let out = import(&s, &["--jsonl", &file]).await;
    let bound = "the largest id imported is 4503599627370496 (2^52), which leaves new accounts ids that JavaScript reads exactly";
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            format!("skipped line 1: id 9223372036854775807 is too large: {bound}").as_str(),
            format!("skipped line 2: id 4503599627370497 is too large: {bound}").as_str(),
            format!("imported line 3 (id 4503599627370496, \"edge\") without a usable password: {UNUSABLE}").as_str(),
            "Imported 1 user, 0 already present, 2 skipped, 1 without a usable password.",
        ]
    );
    // A signup (and createsuperuser) takes the next id.
    let r = s.signup("newcomer").await;
    assert_eq!(r.body["id"], (1_i64 << 52) + 1, "{}", r.text);
    let (code, out, err) = s
        .cli(
            &["createsuperuser", "--username", "admin", "--password-stdin"],
            Some(&format!("{PASSWORD}\n")),
        )
        .await;
    assert_eq!(code, 0, "{out}{err}");
}

#[tokio::test]
async fn with_every_user_id_taken_a_signup_is_refused_clearly_not_a_500() {
    let s = Server::start(CONFIG).await;
    s.create_user("first", false).await;
    // Where an old import left the id sequence: at its end.
    if on_postgres() {
        s.sql("SELECT setval('users_id_seq', 9223372036854775807)")
            .await;
    } else {
        s.sql("UPDATE sqlite_sequence SET seq = 9223372036854775807 WHERE name = 'users'")
            .await;
    }
    let r = s
        .post(
            "/api/auth/signup",
            json!({"username": "late", "password": PASSWORD}),
        )
        .await;
    assert_eq!(
        (r.status, &r.body),
        (
            503,
            &json!({"detail": "No user id is left for a new account.", "code": "user_ids_exhausted"})
        ),
        "{}",
        r.text
    );
    let (code, _, err) = s
        .cli(
            &["createsuperuser", "--username", "admin", "--password-stdin"],
            Some(&format!("{PASSWORD}\n")),
        )
        .await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no user id is left"), "{err}");
    s.assert_healthy().await;
}

#[tokio::test]
async fn a_nul_in_any_text_field_skips_its_row_alone_and_names_its_line() {
    // Three batches of 1,000, a NUL in the second and third: PostgreSQL
    // refuses NUL in text, and a whole batch failed with it, unnamed.
    let s = Server::start(CONFIG).await;
    let lines: Vec<String> = (1..=2001)
        .map(|n| {
            let mut row = json!({"id": n, "username": format!("user{n}"), "password": "!"});
            match n {
                1500 => row["password"] = json!("pbkdf2_sha256$1000$sa\u{0}lt$aGFzaA=="),
                1600 => row["email"] = json!("a\u{0}@example.com"),
                2001 => row["username"] = json!("user\u{0}2001"),
                _ => {}
            }
            row.to_string()
        })
        .collect();
    assert!(lines[1499].contains("\\u0000"), "{}", lines[1499]);
    let file = jsonl(&s, "nul.jsonl", &lines);
    for dry_run in [true, false] {
        let mut args = vec!["--jsonl", file.as_str()];
        if dry_run {
            args.push("--dry-run");
        }
        let out = import(&s, &args).await;
        // Each user without a password is named (all 1998 here).
        let (named, out): (Vec<&str>, Vec<&str>) =
            out.lines().partition(|l| l.starts_with("imported line "));
        assert_eq!(named.len(), 1998);
        assert!(named[0].starts_with("imported line 1 (id 1, \"user1\")"));
        let summary = "1998 users, 0 already present, 3 skipped, 1998 without a usable password.";
        let summary = if dry_run {
            format!("Dry run, nothing written: would import {summary}")
        } else {
            format!("Imported {summary}")
        };
        assert_eq!(
            out,
            [
                "skipped line 1500: password holds a NUL character, which Tessera does not store",
                "skipped line 1600: email holds a NUL character, which Tessera does not store",
                "skipped line 2001: username \"user\\u00002001\" cannot be used: Enter a valid username. This value may not contain control characters.",
                summary.as_str(),
            ]
        );
    }
    let imported = users(&s).await;
    assert_eq!(imported.len(), 1998);
    assert!(!imported.iter().any(|u| [1500, 1600, 2001].contains(&u.id)));
    // Run again: every row is there or skipped alike.
    let out = import(&s, &["--jsonl", &file]).await;
    assert!(
        out.ends_with(
            "Imported 0 users, 1998 already present, 3 skipped, 0 without a usable password.\n"
        ),
        "{out}"
    );
}

#[tokio::test]
async fn the_report_quotes_long_values_cut_short_and_escaped() {
    let s = Server::start(CONFIG).await;
    let lines = [
        json!({"id": 1, "username": "a".repeat(5000), "password": "!"}).to_string(),
        json!({"id": 2, "username": "b", "password": "!", "email": (0..2000).collect::<Vec<_>>()})
            .to_string(),
        // Imported (Django's names may hold a bidi override), with a hash
        // whose "scheme" is a terminal sequence.
        json!({"id": 3, "username": "x\u{202e}y", "password": "z\u{9b}2K$salt$hash"}).to_string(),
    ];
    let file = jsonl(&s, "long.jsonl", &lines);
    let out = import(&s, &["--jsonl", &file]).await;
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            format!(
                "skipped line 1: username \"{}…\" cannot be used: Ensure this field has no more than 150 characters.",
                "a".repeat(64)
            )
            .as_str(),
            "skipped line 2: email [0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,2… is not a string",
            r#"imported line 3 (id 3, "x\u202ey") without a usable password: unknown password hash scheme `z\u009b2K`"#,
            "Imported 1 user, 0 already present, 2 skipped, 1 without a usable password.",
        ]
    );
}

#[tokio::test]
async fn a_truncated_dumpdata_file_imports_the_users_before_the_cut() {
    let s = Server::start(CONFIG).await;
    let whole = std::fs::read_to_string(fixture("auth_user.json")).unwrap();
    // Cut inside the fourth user: the ninth element, after the 5 groups.
    let fourth = whole
        .match_indices("\"model\": \"auth.user\"")
        .nth(3)
        .unwrap()
        .0;
    let path = s.dir().join("cut.json");
    std::fs::write(&path, &whole[..fourth + 30]).unwrap();
    let out = import(&s, &["--django-json", &path.display().to_string()]).await;
    let lines: Vec<_> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with(
            "skipped row 9: and what follows cannot be read: the file is cut short or is not JSON here"
        ),
        "{out}"
    );
    assert!(
        lines[1].starts_with("Imported 3 users, 0 already present, 1 skipped,"),
        "{out}"
    );
    assert_eq!(users(&s).await.len(), 3);
    // The first user's two groups came with it.
    assert_eq!(
        roles(&s).await["pbkdf2_user"],
        django_groups()["pbkdf2_user"]
    );
    // Run again on the whole file: the rest comes, nothing twice.
    let out = import(&s, &["--django-json", &fixture("auth_user.json")]).await;
    assert!(
        out.ends_with(
            "Imported 9 users, 3 already present, 0 skipped, 2 without a usable password.\n"
        ),
        "{out}"
    );
}

#[tokio::test]
async fn a_source_that_cannot_be_read_exits_non_zero_and_writes_nothing() {
    let s = Server::start(CONFIG).await;
    let dir = s.dir().to_owned();
    std::fs::write(dir.join("empty.sqlite3"), b"").unwrap();
    std::fs::write(dir.join("not.json"), b"this is not JSON").unwrap();
    std::fs::write(dir.join("object.json"), br#"{"model": "auth.user"}"#).unwrap();
    std::fs::write(
        dir.join("garbage.jsonl"),
        b"\x00\x01\x02\nnot json either\n",
    )
    .unwrap();
    let cases: [(&[&str], &str); 7] = [
        (&["--jsonl", "missing.jsonl"], "cannot read missing.jsonl"),
        (
            &["--django-json", "not.json"],
            "not.json is not `dumpdata` output",
        ),
        (
            &["--django-json", "object.json"],
            "object.json is not `dumpdata` output",
        ),
        (
            &["--jsonl", "garbage.jsonl"],
            "no row of the source could be read as a user",
        ),
        (
            &["--django-db", "sqlite://empty.sqlite3"],
            "sqlite://empty.sqlite3 is not a Django database with an auth_user table",
        ),
        (
            &["--django-db", "sqlite://missing.sqlite3"],
            "cannot open sqlite://missing.sqlite3",
        ),
        (
            &["--django-db", "mysql://localhost/db"],
            "--django-db: expected sqlite://PATH or postgres://",
        ),
    ];
    for (args, message) in cases {
        let mut all = vec!["import-users"];
        all.extend_from_slice(args);
        let (code, out, err) = s.cli(&all, None).await;
        assert_eq!(code, 1, "{args:?}: {out} {err}");
        assert!(err.contains(message), "{args:?}: {err}");
    }
    // Two sources at once, or none: clap's usage error.
    let (code, _, err) = s.cli(&["import-users"], None).await;
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = s
        .cli(
            &["import-users", "--jsonl", "a", "--django-json", "b"],
            None,
        )
        .await;
    assert_eq!(code, 2, "{err}");
    assert!(users(&s).await.is_empty());
    assert!(
        !dir.join("missing.sqlite3").exists(),
        "a read opens nothing new"
    );
    s.assert_healthy().await;
}

#[tokio::test]
async fn an_administrator_sets_the_password_of_a_user_who_has_none() {
    let s = Server::start(CONFIG).await;
    import(&s, &["--django-db", &django_db()]).await;
    let set = async |name: &str, password: &str| {
        s.cli(
            &["users", "set-password", name, "--password-stdin"],
            Some(&format!("{password}\n")),
        )
        .await
    };
    let (code, _, err) = set("unusable_user", "short").await;
    assert_eq!(code, 1);
    assert!(err.contains("This password is too short."), "{err}");
    let (code, out, err) = set("unusable_user", PASSWORD).await;
    assert_eq!(code, 0, "{err}");
    let user = stored(&s, "unusable_user").await;
    assert_eq!(
        out,
        format!(
            "Password set for unusable_user (id {}): Tessera refuses their earlier tokens at \
             once, and so do services following its revocation feed within a second; other \
             services that verify tokens themselves accept their earlier access tokens until \
             these expire (access_token_lifetime, 5m).\n",
            user.id
        )
    );
    assert!(is_tesseras_own(&user.password_hash));
    assert_eq!(log_in(&s, "unusable_user", PASSWORD).await.status, 200);
    let (code, _, err) = set("nobody", PASSWORD).await;
    assert_eq!((code, err.trim()), (1, "tessera: no user `nobody`"));
}

#[tokio::test]
async fn a_django_database_on_postgresql_imports_as_on_sqlite() {
    let Some(admin) = postgres_admin_url() else {
        return;
    };
    let source = tessera_store::scratch::ScratchDatabase::create(&admin)
        .await
        .unwrap();
    let dump = std::fs::read_to_string(fixture("auth_user.postgres.sql")).unwrap();
    let pool = sqlx::PgPool::connect(&source.url).await.unwrap();
    sqlx::raw_sql(&dump).execute(&pool).await.unwrap();
    pool.close().await;
    let from_sqlite = Server::start(CONFIG).await;
    import(&from_sqlite, &["--django-db", &django_db()]).await;
    let s = Server::start(CONFIG).await;
    let out = import(&s, &["--django-db", &source.url]).await;
    assert!(out.ends_with(&format!("{FIRST_SUMMARY}\n")), "{out}");
    assert_eq!(users(&s).await, users(&from_sqlite).await);
    // The groups came through json_agg as through SQLite's
    // json_group_array, sorted by code point as Tessera keeps roles
    // ("Ünïcode" after the lowercase names).
    assert_eq!(roles(&s).await, django_groups());
    let password = passwords()["scrypt_user"].clone().unwrap();
    assert_eq!(log_in(&s, "scrypt_user", &password).await.status, 200);
    // The same database without its memberships' table: refused before a
    // row is read.
    let pool = sqlx::PgPool::connect(&source.url).await.unwrap();
    sqlx::raw_sql("DROP TABLE public.auth_user_groups")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let empty = Server::start(CONFIG).await;
    let mut all = vec!["import-users", "--django-db", source.url.as_str()];
    let (code, out, err) = empty.cli(&all, None).await;
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    assert_eq!(
        err,
        format!(
            "tessera: {} has an auth_user table but not Django's group tables (auth_group, \
             auth_user_groups), so its users' groups cannot be imported as roles (error \
             returned from database: relation \"auth_user_groups\" does not exist)\n",
            source.url
        )
    );
    all.push("--dry-run");
    assert_eq!(empty.cli(&all, None).await.0, 1);
    assert!(users(&empty).await.is_empty());
}

#[tokio::test]
async fn an_imported_superusers_token_says_so_under_the_name_claim_names_gives() {
    let s = Server::start(&format!(
        "{CONFIG}\nextra_claims = [\"is_staff\", \"is_superuser\"]\n\
         claim_names = {{ is_staff = \"is_admin\", is_superuser = \"is_root\" }}"
    ))
    .await;
    import(&s, &["--django-json", &fixture("auth_user.json")]).await;
    let password = passwords()["admin"].clone().unwrap();
    let r = log_in(&s, "admin", &password).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let claims = segment(r.body["access"].as_str().unwrap(), 1);
    assert_eq!(
        (&claims["is_admin"], &claims["is_root"]),
        (&json!(true), &json!(true))
    );
    assert!(claims.get("is_staff").is_none() && claims.get("is_superuser").is_none());
    // A staff user who is not a superuser: Django kept the two apart, and
    // so does the token.
    let password = passwords()["staff_user"].clone().unwrap();
    let r = log_in(&s, "staff_user", &password).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let claims = segment(r.body["access"].as_str().unwrap(), 1);
    assert_eq!(
        (&claims["is_admin"], &claims["is_root"]),
        (&json!(true), &json!(false))
    );
}

/// Issue 35: a Django user's groups are their roles, which a service reads
/// in the access token (`extra_claims = ["roles"]`) and the user in /me.
#[tokio::test]
async fn a_django_users_groups_are_the_roles_their_token_carries() {
    let s = Server::start(&format!("{CONFIG}\nextra_claims = [\"roles\"]")).await;
    import(&s, &["--django-db", &django_db()]).await;
    let groups = django_groups();
    assert_eq!(roles(&s).await, groups);
    let mut logged_in = 0;
    for (username, password) in passwords() {
        // Those who cannot log in: no password, an inactive account, a
        // hash Tessera does not read.
        let Some(password) = password else { continue };
        if username == "inactive_user" || username == "md5_user" {
            continue;
        }
        let r = log_in(&s, &username, &password).await;
        assert_eq!(r.status, 200, "{username}: {}", r.text);
        let want = json!(groups[&username]);
        let access = r.body["access"].as_str().unwrap();
        assert_eq!(segment(access, 1)["roles"], want, "{username}");
        assert_eq!(s.me(access).await.body["roles"], want, "{username}");
        // A refreshed token carries them too.
        let r = s
            .post("/api/token/refresh/", json!({"refresh": r.body["refresh"]}))
            .await;
        assert_eq!(r.status, 200, "{username}: {}", r.text);
        let access = r.body["access"].as_str().unwrap();
        assert_eq!(segment(access, 1)["roles"], want, "{username}");
        logged_in += 1;
    }
    // Among them users in two groups, the superuser in one, and users in
    // none (whose tokens carry `[]`).
    assert_eq!(logged_in, 9);
    for username in ["pbkdf2_user", "zoë.ünïcode", "admin"] {
        assert!(!groups[username].is_empty(), "{username}");
    }
    s.assert_healthy().await;
}

/// A copy of the fixture database in the server's directory with these
/// tables dropped; its `sqlite://` URL, relative to that directory (where
/// the CLI runs).
async fn django_db_without(s: &Server, name: &str, tables: &[&str]) -> String {
    let path = s.dir().join(name);
    std::fs::copy(format!("{}/db.sqlite3", fixtures()), &path).unwrap();
    // Without foreign keys: auth_user_groups refers to auth_group.
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .foreign_keys(false);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    for table in tables {
        sqlx::raw_sql(&format!("DROP TABLE {table}"))
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;
    format!("sqlite://{name}")
}

#[tokio::test]
async fn a_django_database_without_the_group_tables_is_refused_and_nothing_imported() {
    let s = Server::start(CONFIG).await;
    let neither =
        django_db_without(&s, "neither.sqlite3", &["auth_user_groups", "auth_group"]).await;
    let no_links = django_db_without(&s, "no_links.sqlite3", &["auth_user_groups"]).await;
    let no_groups = django_db_without(&s, "no_groups.sqlite3", &["auth_group"]).await;
    for (url, missing) in [
        (&neither, "auth_user_groups"),
        (&no_links, "auth_user_groups"),
        (&no_groups, "auth_group"),
    ] {
        for dry_run in [false, true] {
            let mut args = vec!["import-users", "--django-db", url.as_str()];
            if dry_run {
                args.push("--dry-run");
            }
            let (code, out, err) = s.cli(&args, None).await;
            assert_eq!((code, out.as_str()), (1, ""), "{args:?}: {err}");
            assert_eq!(
                err,
                format!(
                    "tessera: {url} has an auth_user table but not Django's group tables \
                     (auth_group, auth_user_groups), so its users' groups cannot be imported \
                     as roles (error returned from database: (code: 1) no such table: {missing})\n"
                ),
                "{args:?}"
            );
        }
    }
    assert!(users(&s).await.is_empty());
    // Not even the id sequence moved, nor was an import logged.
    assert_eq!(s.signup("first").await.body["id"], 1);
    s.assert_healthy().await;
}

/// `fixture("auth_user.json")`'s elements, changed by `change`, as a file
/// in the server's directory; its path.
fn dumpdata(s: &Server, name: &str, change: impl FnOnce(&mut Vec<Value>)) -> String {
    let text = std::fs::read_to_string(fixture("auth_user.json")).unwrap();
    let mut elements: Vec<Value> = serde_json::from_str(&text).unwrap();
    change(&mut elements);
    let path = s.dir().join(name);
    std::fs::write(&path, serde_json::to_string_pretty(&elements).unwrap()).unwrap();
    path.display().to_string()
}

/// The dumpdata element of the user `username`.
fn element<'a>(elements: &'a mut [Value], username: &str) -> &'a mut Value {
    let found = elements
        .iter_mut()
        .find(|e| e["fields"]["username"] == username);
    found.unwrap_or_else(|| panic!("{username} is not in the file"))
}

/// Why a dumpdata user naming the group with `id` is skipped when the file
/// has no such group.
fn unknown_group(id: i64) -> String {
    format!(
        "group {id} is not in the file: dump the groups with the users \
         (manage.py dumpdata auth.group auth.user), or name them (--natural-foreign)"
    )
}

/// The remarks of importing the fixture users from dumpdata with the 5
/// groups before them: the two users without a usable password.
const DUMPDATA_REMARKS: [&str; 2] = [
    "imported row 15 (id 10, \"unusable_user\") without a usable password: none was set (an empty hash, or an unusable one: `!...`)",
    "imported row 16 (id 20, \"md5_user\") without a usable password: unknown password hash scheme `md5`",
];

#[tokio::test]
async fn a_dumpdata_user_in_a_group_the_file_lacks_is_skipped_and_named() {
    let s = Server::start(CONFIG).await;
    let file = dumpdata(&s, "unknown.json", |elements| {
        element(elements, "pbkdf2_user")["fields"]["groups"] = json!([1, 99]);
        element(elements, "staff_user")["fields"]["groups"] = json!([[["ops team"]]]);
        element(elements, "scrypt_user")["fields"]["groups"] = json!(["ops team"]);
        element(elements, "argon_user")["fields"]["groups"] = json!({"id": 1});
    });
    let out = import(&s, &["--django-json", &file]).await;
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            format!("skipped row 6: {}", unknown_group(99)).as_str(),
            "skipped row 8: groups {\"id\":1} is not a list",
            "skipped row 11: group \"ops team\" is neither an id nor a natural key",
            "skipped row 12: group [[\"ops team\"]] is not a group's natural key ([\"name\"])",
            DUMPDATA_REMARKS[0],
            DUMPDATA_REMARKS[1],
            "Imported 8 users, 0 already present, 4 skipped, 2 without a usable password.",
        ]
    );
    let mut want = django_groups();
    for skipped in ["pbkdf2_user", "argon_user", "scrypt_user", "staff_user"] {
        want.remove(skipped);
    }
    assert_eq!(roles(&s).await, want);
}

/// `dumpdata auth.user` alone (without auth.group) names the groups by
/// ids the file cannot resolve: each user in a group is skipped, saying
/// what to run instead, and those in none are imported.
#[tokio::test]
async fn dumpdata_of_the_users_alone_skips_those_in_groups_and_says_what_to_dump() {
    let s = Server::start(CONFIG).await;
    let file = dumpdata(&s, "users_only.json", |elements| {
        elements.retain(|e| e["model"] == "auth.user");
    });
    let out = import(&s, &["--django-json", &file]).await;
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            // pbkdf2_user (groups [1, 2]: the first is told), staff_user,
            // admin, inactive_user, zoë.ünïcode (groups [3, 4]); rows are
            // skipped as they are read, the users without a usable
            // password named once their batch is written.
            format!("skipped row 1: {}", unknown_group(1)).as_str(),
            format!("skipped row 7: {}", unknown_group(3)).as_str(),
            format!("skipped row 8: {}", unknown_group(1)).as_str(),
            format!("skipped row 9: {}", unknown_group(2)).as_str(),
            format!("skipped row 12: {}", unknown_group(3)).as_str(),
            "imported row 10 (id 10, \"unusable_user\") without a usable password: none was set (an empty hash, or an unusable one: `!...`)",
            "imported row 11 (id 20, \"md5_user\") without a usable password: unknown password hash scheme `md5`",
            "Imported 7 users, 0 already present, 5 skipped, 2 without a usable password.",
        ]
    );
    let want: BTreeMap<_, _> = django_groups()
        .into_iter()
        .filter(|(_, groups)| groups.is_empty())
        .collect();
    assert_eq!(want.len(), 7);
    assert_eq!(roles(&s).await, want);
    // With the groups dumped too, the rest come, with their groups.
    let out = import(&s, &["--django-json", &fixture("auth_user.json")]).await;
    assert!(
        out.ends_with(
            "Imported 5 users, 7 already present, 0 skipped, 0 without a usable password.\n"
        ),
        "{out}"
    );
    assert_eq!(roles(&s).await, django_groups());
}

#[tokio::test]
async fn a_jsonl_line_with_bad_roles_is_skipped_and_named_and_the_rest_imported() {
    let s = Server::start(CONFIG).await;
    let pbkdf2 = jsonl_users()["pbkdf2_user"]["password"].clone();
    let line = |id: i64, roles: Value| {
        json!({"id": id, "username": format!("user{id}"), "password": pbkdf2, "roles": roles})
            .to_string()
    };
    let many: Vec<String> = (0..101).map(|i| format!("r{i}")).collect();
    let lines = [
        // Sorted and each once, as Tessera keeps roles.
        line(1, json!(["ops team", "Ünïcode", "billing", "billing"])),
        line(2, json!(["editors", " "])),
        line(3, json!(["x".repeat(151)])),
        line(4, json!(["a\u{7}b"])),
        line(5, json!("editors")),
        line(6, json!(["editors", 7])),
        line(7, json!(many)),
        line(8, json!([""])),
        // No roles: none, like null and [].
        json!({"id": 9, "username": "user9", "password": pbkdf2}).to_string(),
        line(10, Value::Null),
        line(11, json!([])),
        // The longest name there may be.
        line(12, json!(["y".repeat(150)])),
    ];
    let file = jsonl(&s, "roles.jsonl", &lines);
    let out = import(&s, &["--jsonl", &file]).await;
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "skipped line 2: roles: A role name may not be blank.".to_owned(),
            format!(
                "skipped line 3: roles: Role \"{}...\" is longer than 150 characters.",
                "x".repeat(40)
            ),
            "skipped line 4: roles: Role \"a\\u{7}b\" contains a control character.".to_owned(),
            "skipped line 5: roles \"editors\" is not an array of names".to_owned(),
            "skipped line 6: roles [\"editors\",7] is not an array of names".to_owned(),
            "skipped line 7: roles: A user has at most 100 roles.".to_owned(),
            "skipped line 8: roles: A role name may not be blank.".to_owned(),
            "Imported 5 users, 0 already present, 7 skipped, 0 without a usable password."
                .to_owned(),
        ]
    );
    let got = roles(&s).await;
    let none: Vec<String> = Vec::new();
    assert_eq!(
        got,
        BTreeMap::from([
            (
                "user1".to_owned(),
                vec!["billing".into(), "ops team".into(), "Ünïcode".into()]
            ),
            ("user9".to_owned(), none.clone()),
            ("user10".to_owned(), none.clone()),
            ("user11".to_owned(), none),
            ("user12".to_owned(), vec!["y".repeat(150)]),
        ])
    );
}
