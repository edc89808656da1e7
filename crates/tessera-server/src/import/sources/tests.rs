use super::*;

/// One item read: (place, Ok(username) or Err(reason)).
type Read = (String, Result<String, String>);

/// What a reader sends.
fn items(read: impl FnOnce(&mpsc::Sender<Item>)) -> Vec<Read> {
    let (tx, mut rx) = mpsc::channel(QUEUE);
    read(&tx);
    drop(tx);
    let mut out = Vec::new();
    while let Some(item) = rx.blocking_recv() {
        out.push(match item {
            Item::Row { at, fields } => {
                let roles = fields
                    .get("roles")
                    .map_or(String::new(), |r| format!(" {r}"));
                (at, Ok(format!("{}{roles}", fields["username"])))
            }
            Item::Unreadable { at, reason } => (at, Err(reason)),
        });
    }
    out
}

fn dumpdata(input: &str) -> (Result<(), String>, Vec<Read>) {
    let (opened_tx, mut opened_rx) = tokio::sync::oneshot::channel();
    let read = items(|tx| read_dumpdata(input.as_bytes(), tx, opened_tx));
    (opened_rx.try_recv().unwrap(), read)
}

#[test]
fn jsonl_lines_each_a_row_or_a_reason() {
    let input =
        b"{\"username\": \"ann\"}\n\n[1]\n{\"username\": \"bob\"\n\xff\n{\"username\": \"cy\"}";
    let read = items(|tx| read_jsonl(&input[..], tx));
    assert_eq!(read.len(), 5, "{read:?}");
    assert_eq!(read[0], ("line 1".into(), Ok("\"ann\"".into())));
    assert_eq!(
        read[1],
        ("line 3".into(), Err("is not a JSON object".into()))
    );
    assert!(matches!(&read[2], (at, Err(r)) if at == "line 4" && r.starts_with("is not JSON")));
    assert!(matches!(&read[3], (at, Err(r)) if at == "line 5" && r.starts_with("is not JSON")));
    // The last line needs no newline.
    assert_eq!(read[4], ("line 6".into(), Ok("\"cy\"".into())));
}

#[test]
fn dumpdata_elements_become_rows_with_pk_as_id() {
    let (opened, read) = dumpdata(
        r#"[{"model": "auth.user", "pk": 4, "fields": {"username": "ann"}},
            {"model": "auth.group", "pk": 1, "fields": {"name": "x"}},
            {"model": "auth.user", "pk": 5},
            7]"#,
    );
    assert_eq!(opened, Ok(()));
    assert_eq!(read[0], ("row 1".into(), Ok("\"ann\"".into())));
    // A group is remembered, not a row.
    assert_eq!(
        read[1],
        ("row 3".into(), Err("has no \"fields\" object".into()))
    );
    assert_eq!(
        read[2],
        ("row 4".into(), Err("is not a JSON object".into()))
    );
    assert_eq!(read.len(), 3);
}

#[test]
fn dumpdata_groups_become_roles_by_id_or_natural_key() {
    let (opened, read) = dumpdata(
        r#"[{"model": "auth.group", "pk": 1, "fields": {"name": "editors", "permissions": []}},
            {"model": "auth.group", "pk": 2, "fields": {"name": "billing"}},
            {"model": "auth.user", "pk": 4, "fields": {"username": "ann", "groups": [1, 2]}},
            {"model": "auth.user", "pk": 5, "fields": {"username": "bob", "groups": [["ops"]]}},
            {"model": "auth.user", "pk": 6, "fields": {"username": "cy", "groups": []}},
            {"model": "auth.user", "pk": 7, "fields": {"username": "dee", "groups": [3]}},
            {"model": "auth.user", "pk": 8, "fields": {"username": "eve", "groups": "x"}},
            {"model": "auth.user", "pk": 9, "fields": {"username": "fay", "groups": [["a", "b"]]}},
            {"model": "auth.permission", "pk": 1, "fields": {}}]"#,
    );
    assert_eq!(opened, Ok(()));
    let expected: Vec<Read> = vec![
        ("row 3".into(), Ok(r#""ann" ["editors","billing"]"#.into())),
        ("row 4".into(), Ok(r#""bob" ["ops"]"#.into())),
        ("row 5".into(), Ok(r#""cy" []"#.into())),
        (
            "row 6".into(),
            Err(
                "group 3 is not in the file: dump the groups with the users (manage.py \
                 dumpdata auth.group auth.user), or name them (--natural-foreign)"
                    .into(),
            ),
        ),
        ("row 7".into(), Err("groups \"x\" is not a list".into())),
        (
            "row 8".into(),
            Err(r#"group ["a","b"] is not a group's natural key (["name"])"#.into()),
        ),
        (
            "row 9".into(),
            Err("is a \"auth.permission\" object, not auth.user or auth.group".into()),
        ),
    ];
    assert_eq!(read, expected);
}

#[test]
fn a_cut_dumpdata_file_yields_what_came_before_the_cut() {
    let (opened, read) = dumpdata(
        r#"[{"model": "auth.user", "pk": 4, "fields": {"username": "ann"}},
            {"model": "auth.user", "pk": 5, "fields": {"usern"#,
    );
    assert_eq!(opened, Ok(()));
    assert_eq!(read.len(), 2, "{read:?}");
    assert_eq!(read[0].1, Ok("\"ann\"".into()));
    assert!(
        matches!(&read[1], (at, Err(r)) if at == "row 2" && r.contains("cut short")),
        "{read:?}"
    );
}

#[test]
fn a_file_that_is_not_a_json_array_cannot_be_read() {
    for input in ["", "{\"model\": \"auth.user\"}", "not json", "\u{0}\u{1}"] {
        let (opened, read) = dumpdata(input);
        assert!(opened.is_err(), "{input:?}");
        assert!(read.is_empty());
    }
}
