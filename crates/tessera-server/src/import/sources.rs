//! The three sources of `tessera import-users`, each read as a stream of
//! rows of fields named as in SPEC's jsonl format, never whole into memory:
//! Django's `auth_user` table (SQLite or PostgreSQL), `manage.py dumpdata
//! auth.user` output, and JSON lines.

use futures_util::TryStreamExt;
use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde_json::{Map, Value};
use sqlx::{Column, Row, TypeInfo, ValueRef};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use tokio::sync::mpsc;

/// Where users come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A Django database's `auth_user` table: `sqlite://...` or `postgres://...`.
    DjangoDb(String),
    /// The output of `manage.py dumpdata auth.user`.
    DjangoJson(PathBuf),
    /// One JSON object per line.
    Jsonl(PathBuf),
}

impl Source {
    /// Which kind of source it is, for the audit log (no path or URL, which
    /// may hold a password).
    pub fn kind(&self) -> &'static str {
        match self {
            Source::DjangoDb(_) => "django_db",
            Source::DjangoJson(_) => "django_json",
            Source::Jsonl(_) => "jsonl",
        }
    }
}

/// What a source yields, in order.
#[derive(Debug)]
pub enum Item {
    /// A row's fields; `at` says where it is ("row 3", "line 7").
    Row {
        /// Its place in the source.
        at: String,
        /// Its fields, named as in the jsonl format.
        fields: Map<String, Value>,
    },
    /// A row that could not be read at all, and why.
    Unreadable {
        /// Its place in the source.
        at: String,
        /// Why.
        reason: String,
    },
}

/// Rows in flight between the reader and the importer: enough to keep
/// both busy, few enough that memory does not grow with the source.
const QUEUE: usize = 2048;

/// The columns read from `auth_user`, named as the jsonl fields are.
const COLUMNS: &str = "id, username, password, email, is_staff, is_superuser, is_active, \
                       date_joined, last_login";

/// Opens `source` and starts reading it; an error when it cannot be read
/// at all (no such file, not a Django database, not a JSON array).
pub async fn open(source: &Source) -> Result<mpsc::Receiver<Item>, String> {
    let (tx, rx) = mpsc::channel(QUEUE);
    match source {
        Source::Jsonl(path) => {
            let file = open_file(path)?;
            tokio::task::spawn_blocking(move || read_jsonl(BufReader::new(file), &tx));
        }
        Source::DjangoJson(path) => {
            let file = open_file(path)?;
            let (first_tx, first_rx) = tokio::sync::oneshot::channel();
            tokio::task::spawn_blocking(move || {
                read_dumpdata(BufReader::new(file), &tx, first_tx);
            });
            // Whether the file is a JSON array is known at its first byte.
            first_rx
                .await
                .map_err(|_| "the reader stopped".to_owned())?
                .map_err(|e| format!("{} is not `dumpdata` output: {e}", path.display()))?;
        }
        Source::DjangoDb(url) => open_database(url, tx).await?,
    }
    Ok(rx)
}

fn open_file(path: &Path) -> Result<File, String> {
    File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// JSON lines: each non-blank line one object.
fn read_jsonl(mut reader: impl BufRead, tx: &mpsc::Sender<Item>) {
    let mut line = Vec::new();
    for number in 1.. {
        line.clear();
        let at = format!("line {number}");
        let item = match reader.read_until(b'\n', &mut line) {
            Ok(0) => return,
            Err(e) => Item::Unreadable {
                at,
                reason: format!("cannot be read: {e}"),
            },
            Ok(_) if line.trim_ascii().is_empty() => continue,
            // Without its line ending, so that a line cut short is told as
            // such rather than as a string holding a newline.
            Ok(_) => match serde_json::from_slice::<Value>(trim_line_end(&line)) {
                Ok(Value::Object(fields)) => Item::Row { at, fields },
                Ok(_) => Item::Unreadable {
                    at,
                    reason: "is not a JSON object".into(),
                },
                Err(e) => Item::Unreadable {
                    at,
                    reason: format!("is not JSON ({e})"),
                },
            },
        };
        if tx.blocking_send(item).is_err() {
            return;
        }
    }
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// `dumpdata` output: a JSON array of `{"model": "auth.user", "pk": ID,
/// "fields": {...}}`, read one element at a time. A file cut short yields
/// the elements before the cut, then one unreadable item saying where.
fn read_dumpdata(
    reader: impl std::io::Read,
    tx: &mpsc::Sender<Item>,
    opened: tokio::sync::oneshot::Sender<Result<(), String>>,
) {
    let mut elements = Elements {
        tx,
        opened: Some(opened),
        count: 0,
        broken: None,
    };
    let mut de = serde_json::Deserializer::from_reader(reader);
    let outcome = serde::Deserializer::deserialize_seq(&mut de, &mut elements);
    let (count, broken) = (elements.count, elements.broken.take());
    let error = broken.or(outcome.err().map(|e| e.to_string()));
    match (elements.opened.take(), error) {
        (Some(opened), error) => {
            let _ = opened.send(Err(error.unwrap_or_else(|| "not a JSON array".into())));
        }
        (None, Some(error)) => {
            let _ = tx.blocking_send(Item::Unreadable {
                at: format!("row {}", count + 1),
                reason: format!(
                    "and what follows cannot be read: the file is cut short or is not JSON here ({error})"
                ),
            });
        }
        (None, None) => {}
    }
}

/// The visitor of [`read_dumpdata`]'s array.
struct Elements<'a> {
    tx: &'a mpsc::Sender<Item>,
    opened: Option<tokio::sync::oneshot::Sender<Result<(), String>>>,
    count: usize,
    broken: Option<String>,
}

impl<'de> Visitor<'de> for &mut Elements<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON array of auth.user objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if let Some(opened) = self.opened.take() {
            let _ = opened.send(Ok(()));
        }
        loop {
            let element = match seq.next_element_seed(ValueSeed) {
                Ok(Some(element)) => element,
                Ok(None) => return Ok(()),
                Err(e) => {
                    self.broken = Some(e.to_string());
                    return Ok(());
                }
            };
            self.count += 1;
            let item = dumpdata_row(format!("row {}", self.count), element);
            if self.tx.blocking_send(item).is_err() {
                return Ok(());
            }
        }
    }
}

/// Reads one array element as a [`Value`].
struct ValueSeed;

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        serde::Deserialize::deserialize(d)
    }
}

/// One `dumpdata` element as a row: its `fields`, with `pk` as the id.
fn dumpdata_row(at: String, element: Value) -> Item {
    let Value::Object(mut object) = element else {
        return Item::Unreadable {
            at,
            reason: "is not a JSON object".into(),
        };
    };
    match object.get("model").and_then(Value::as_str) {
        Some(model) if model.eq_ignore_ascii_case("auth.user") => {}
        Some(model) => {
            return Item::Unreadable {
                at,
                reason: format!(
                    "is a {} object, not auth.user",
                    crate::printable::excerpt(model)
                ),
            };
        }
        None => {
            return Item::Unreadable {
                at,
                reason: "has no \"model\": not dumpdata output".into(),
            };
        }
    }
    let Some(Value::Object(mut fields)) = object.remove("fields") else {
        return Item::Unreadable {
            at,
            reason: "has no \"fields\" object".into(),
        };
    };
    if let Some(pk) = object.remove("pk") {
        fields.insert("id".into(), pk);
    }
    Item::Row { at, fields }
}

/// Opens a Django database read-only and streams its `auth_user` rows.
async fn open_database(url: &str, tx: mpsc::Sender<Item>) -> Result<(), String> {
    let shown = crate::config::redact_url(url);
    let not_django =
        |e: sqlx::Error| format!("{shown} is not a Django database with an auth_user table ({e})");
    if url.starts_with("sqlite:") {
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)
            .map_err(|e| format!("--django-db {shown}: {e}"))?
            .read_only(true)
            .create_if_missing(false);
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(|e| format!("cannot open {shown}: {e}"))?;
        // Asking for the columns first tells a database that is not
        // Django's from one that is, before any row is read.
        sqlx::query(&format!("SELECT {COLUMNS} FROM auth_user LIMIT 0"))
            .execute(&pool)
            .await
            .map_err(not_django)?;
        tokio::spawn(async move {
            let query = format!("SELECT {COLUMNS} FROM auth_user ORDER BY id");
            let rows = sqlx::query(&query).fetch(&pool);
            forward(rows, &tx, sqlite_fields).await;
        });
    } else if url.starts_with("postgres") {
        // Times come as text in UTC, whatever the server's time zone. TLS
        // as for `database_url` (sslmode, sslrootcert read as libpq does).
        let options = tessera_store::pg_connect_options(url)
            .map_err(|e| format!("--django-db {shown}: {e}"))?
            .options([("timezone", "UTC")]);
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(|e| {
                let e = tessera_store::explain_pg_connect_error(e, &options);
                format!("cannot connect to {shown}: {e}")
            })?;
        let time = |c: &str| format!("to_char({c}, 'YYYY-MM-DD\"T\"HH24:MI:SS.US') AS {c}");
        let query = format!(
            "SELECT id::bigint AS id, username, password, email, is_staff, is_superuser, \
             is_active, {}, {} FROM auth_user ORDER BY id",
            time("date_joined"),
            time("last_login")
        );
        sqlx::query(&format!("{query} LIMIT 0"))
            .execute(&pool)
            .await
            .map_err(not_django)?;
        tokio::spawn(async move {
            let rows = sqlx::query(&query).fetch(&pool);
            forward(rows, &tx, postgres_fields).await;
        });
    } else {
        return Err(format!(
            "--django-db: expected sqlite://PATH or postgres://..., got `{shown}`"
        ));
    }
    Ok(())
}

/// Sends each row of `rows` as an item, numbered from 1; a failure of the
/// database midway is the last item.
async fn forward<R>(
    mut rows: impl futures_util::Stream<Item = Result<R, sqlx::Error>> + Unpin,
    tx: &mpsc::Sender<Item>,
    fields: fn(&R) -> Result<Map<String, Value>, String>,
) {
    for number in 1.. {
        let at = format!("row {number}");
        let item = match rows.try_next().await {
            Ok(None) => return,
            Ok(Some(row)) => match fields(&row) {
                Ok(fields) => Item::Row { at, fields },
                Err(reason) => Item::Unreadable { at, reason },
            },
            Err(e) => {
                let reason = format!("and what follows cannot be read: {e}");
                let _ = tx.send(Item::Unreadable { at, reason }).await;
                return;
            }
        };
        if tx.send(item).await.is_err() {
            return;
        }
    }
}

/// A SQLite row as fields. SQLite keeps whatever a column was given, so
/// each value is taken as what it holds (an id may be text), and checked
/// later like a jsonl value.
fn sqlite_fields(row: &sqlx::sqlite::SqliteRow) -> Result<Map<String, Value>, String> {
    let mut fields = Map::new();
    for column in row.columns() {
        let name = column.name();
        let index = column.ordinal();
        let raw = row.try_get_raw(index).map_err(|e| e.to_string())?;
        let value = if raw.is_null() {
            Value::Null
        } else {
            match raw.type_info().name() {
                "INTEGER" => row.try_get_unchecked::<i64, _>(index).map(Value::from),
                "REAL" => row.try_get_unchecked::<f64, _>(index).map(Value::from),
                "TEXT" => row.try_get_unchecked::<String, _>(index).map(Value::from),
                other => return Err(format!("{name} holds {other}, not text or a number")),
            }
            .map_err(|e| format!("{name} cannot be read: {e}"))?
        };
        fields.insert(name.to_owned(), value);
    }
    Ok(fields)
}

/// A PostgreSQL row (typed columns) as fields.
fn postgres_fields(row: &sqlx::postgres::PgRow) -> Result<Map<String, Value>, String> {
    let read = || -> Result<Map<String, Value>, sqlx::Error> {
        let mut fields = Map::new();
        fields.insert("id".into(), row.try_get::<i64, _>("id")?.into());
        for name in ["username", "password", "email", "date_joined", "last_login"] {
            fields.insert(name.into(), row.try_get::<Option<String>, _>(name)?.into());
        }
        for name in ["is_staff", "is_superuser", "is_active"] {
            fields.insert(name.into(), row.try_get::<Option<bool>, _>(name)?.into());
        }
        Ok(fields)
    };
    read().map_err(|e| format!("cannot be read: {e}"))
}

#[cfg(test)]
mod tests;
