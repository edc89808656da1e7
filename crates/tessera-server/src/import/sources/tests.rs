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
            Item::Row { at, fields } => (at, Ok(fields["username"].to_string())),
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
    assert_eq!(
        read[1],
        (
            "row 2".into(),
            Err("is a \"auth.group\" object, not auth.user".into())
        )
    );
    assert_eq!(
        read[2],
        ("row 3".into(), Err("has no \"fields\" object".into()))
    );
    assert_eq!(
        read[3],
        ("row 4".into(), Err("is not a JSON object".into()))
    );
    assert_eq!(read.len(), 4);
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
