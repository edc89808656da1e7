//! `tessera clients` against a running server: a client added from the
//! command line gets tokens; a new secret replaces the old one; a removal
//! by another process reaches the server through the change log and its
//! tokens are refused within a second.

use super::harness::*;
use serde_json::json;
use std::time::{Duration, Instant};

/// The value of `name: value` on a line of `out`.
fn field(out: &str, name: &str) -> String {
    out.lines()
        .find_map(|line| line.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} in {out}"))
        .to_owned()
}

/// A token of the client by its id and secret (client_secret_post).
async fn grant(s: &Server, id: &str, secret: &str) -> Reply {
    s.post_form(
        "/oauth/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
        ],
    )
    .await
}

async fn active(s: &Server, token: &str) -> bool {
    let r = s.post_form("/oauth/introspect", &[("token", token)]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["active"] == json!(true)
}

#[tokio::test]
async fn clients_added_rotated_and_removed_from_the_command_line() {
    let s = Server::start("").await;
    let (code, out, err) = s
        .cli(
            &[
                "clients",
                "add",
                "orders",
                "--scope",
                "revocations",
                "--scope",
                "introspect",
            ],
            None,
        )
        .await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("it cannot be shown again"), "{err}");
    let id = field(&out, "client_id");
    let secret = field(&out, "client_secret");
    assert!(id.starts_with("tc_") && secret.len() == 43, "{out}");
    let r = grant(&s, &id, &secret).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["scope"], "revocations introspect");
    let token = r.body["access_token"].as_str().unwrap().to_owned();
    assert!(active(&s, &token).await);

    let (code, out, err) = s.cli(&["clients", "list"], None).await;
    assert_eq!(code, 0, "{err}");
    let line = out.lines().next().unwrap_or_default();
    assert!(
        line.starts_with(&format!(
            "{id}  orders  scope=revocations introspect  added "
        )),
        "{out}"
    );
    assert!(!out.contains(&secret), "the list shows a secret: {out}");

    // Refusals: a name taken, an unknown scope, an unknown name.
    let (code, out, err) = s.cli(&["clients", "add", "orders"], None).await;
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    assert!(
        err.contains("name: A client with this name already exists."),
        "{err}"
    );
    let (code, _, err) = s
        .cli(&["clients", "add", "other", "--scope", "admin"], None)
        .await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("Unknown scope \"admin\""), "{err}");
    for command in ["rotate-secret", "remove"] {
        let (code, _, err) = s.cli(&["clients", command, "nobody"], None).await;
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("no client named `nobody`"), "{err}");
    }

    // A new secret: the old one is refused, the new one works, tokens stay.
    let (code, out, err) = s.cli(&["clients", "rotate-secret", "orders"], None).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(field(&out, "client_id"), id);
    let renewed = field(&out, "client_secret");
    assert_ne!(renewed, secret);
    let r = grant(&s, &id, &secret).await;
    assert_eq!(
        (r.status, &r.body["error"]),
        (401, &json!("invalid_client"))
    );
    assert_eq!(grant(&s, &id, &renewed).await.status, 200);
    assert!(active(&s, &token).await);

    // Removed by another process: refused here within a second.
    let (code, out, err) = s.cli(&["clients", "remove", "orders"], None).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("Client {id} removed")), "{out}");
    let removed = Instant::now();
    while active(&s, &token).await {
        assert!(
            removed.elapsed() < Duration::from_secs(1),
            "the removed client's token was still accepted after a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = grant(&s, &id, &renewed).await;
    assert_eq!(
        (r.status, &r.body["error"]),
        (401, &json!("invalid_client"))
    );
    let (_, out, _) = s.cli(&["clients", "list"], None).await;
    assert_eq!(out, "");
    // A server started afterwards refuses it too (the marker is loaded).
    let s = s.restart().await;
    assert!(!active(&s, &token).await);
}
