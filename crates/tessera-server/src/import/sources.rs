//! The three sources of `tessera import-users`, each read as a stream of
//! rows of fields named as in the jsonl format, never whole into memory:
//! Django's `auth_user` table (SQLite or PostgreSQL) with each user's groups
//! from `auth_user_groups` and `auth_group`, `manage.py dumpdata auth.group
//! auth.user` output, and JSON lines. A Django user's groups become the
//! row's `roles`, a JSON array of their names.

use futures_util::TryStreamExt;
use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde_json::{Map, Value};
use sqlx::{Column, Row, TypeInfo, ValueRef};
use std::collections::HashMap;
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
    /// The output of `manage.py dumpdata auth.group auth.user` (or of
    /// `auth.user` with `--natural-foreign`).
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

/// The tables of Django's groups, joined: a user's groups are those
/// `auth_user_groups` links it to.
const GROUPS: &str = "auth_user_groups ug JOIN auth_group g ON g.id = ug.group_id";

/// Refuses a database with `auth_user` but without the group tables
/// (django.contrib.auth always makes them): its groups cannot be brought.
fn no_groups(shown: &str, e: sqlx::Error) -> String {
    format!(
        "{shown} has an auth_user table but not Django's group tables (auth_group, \
         auth_user_groups), so its users' groups cannot be imported as roles ({e})"
    )
}

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
/// "fields": {...}}`, read one element at a time. `auth.group` elements
/// (which dumpdata writes before the users, who depend on them) name the
/// groups that users list by id; with `--natural-foreign` users list them
/// by name (`[["editors"]]`) and need none. A file cut short yields
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
        groups: HashMap::new(),
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
    /// The `auth.group` elements read so far: pk -> name. As many as the
    /// file has groups, which a Django project counts in tens.
    groups: HashMap<i64, String>,
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
            let at = format!("row {}", self.count);
            let Some(item) = dumpdata_row(at, element, &mut self.groups) else {
                continue;
            };
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

/// One `dumpdata` element as a row: its `fields`, with `pk` as the id and
/// its groups' names as `roles`; an `auth.group` element is remembered in
/// `groups` and yields nothing.
fn dumpdata_row(at: String, element: Value, groups: &mut HashMap<i64, String>) -> Option<Item> {
    let unreadable = |at, reason: String| Some(Item::Unreadable { at, reason });
    let Value::Object(mut object) = element else {
        return unreadable(at, "is not a JSON object".into());
    };
    let is_group = match object.get("model").and_then(Value::as_str) {
        Some(model) if model.eq_ignore_ascii_case("auth.user") => false,
        Some(model) if model.eq_ignore_ascii_case("auth.group") => true,
        Some(model) => {
            let model = crate::printable::excerpt(model);
            return unreadable(
                at,
                format!("is a {model} object, not auth.user or auth.group"),
            );
        }
        None => return unreadable(at, "has no \"model\": not dumpdata output".into()),
    };
    let Some(Value::Object(mut fields)) = object.remove("fields") else {
        return unreadable(at, "has no \"fields\" object".into());
    };
    if is_group {
        // A group without a pk (--natural-primary) is only ever named by
        // its natural key, the name itself.
        if let (Some(pk), Some(name)) = (
            object.get("pk").and_then(Value::as_i64),
            fields.get("name").and_then(Value::as_str),
        ) {
            groups.insert(pk, name.to_owned());
        }
        return None;
    }
    if let Some(pk) = object.remove("pk") {
        fields.insert("id".into(), pk);
    }
    if let Some(listed) = fields.remove("groups") {
        match group_names(&listed, groups) {
            Ok(names) => {
                fields.insert("roles".into(), names.into());
            }
            Err(reason) => return unreadable(at, reason),
        }
    }
    Some(Item::Row { at, fields })
}

/// The names of a dumpdata user's `groups`: ids of `auth.group` elements
/// read before, or natural keys (`["editors"]`).
fn group_names(listed: &Value, groups: &HashMap<i64, String>) -> Result<Vec<String>, String> {
    let Value::Array(items) = listed else {
        return Err(format!(
            "groups {} is not a list",
            crate::printable::excerpt_json(listed)
        ));
    };
    items
        .iter()
        .map(|item| match item {
            Value::Number(n) => n
                .as_i64()
                .and_then(|id| groups.get(&id).cloned())
                .ok_or_else(|| {
                    format!(
                        "group {n} is not in the file: dump the groups with the users \
                         (manage.py dumpdata auth.group auth.user), or name them \
                         (--natural-foreign)"
                    )
                }),
            Value::Array(key) => match key.as_slice() {
                [Value::String(name)] => Ok(name.clone()),
                _ => Err(format!(
                    "group {} is not a group's natural key ([\"name\"])",
                    crate::printable::excerpt_json(item)
                )),
            },
            other => Err(format!(
                "group {} is neither an id nor a natural key",
                crate::printable::excerpt_json(other)
            )),
        })
        .collect()
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
        sqlx::query(&format!("SELECT g.name FROM {GROUPS} LIMIT 0"))
            .execute(&pool)
            .await
            .map_err(|e| no_groups(&shown, e))?;
        tokio::spawn(async move {
            // The names as a JSON array, sorted: one statement however
            // many users and groups.
            let query = format!(
                "SELECT {COLUMNS}, (SELECT json_group_array(name) FROM \
                 (SELECT g.name FROM {GROUPS} WHERE ug.user_id = auth_user.id ORDER BY g.name)) \
                 AS roles FROM auth_user ORDER BY id"
            );
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
        let columns = format!(
            "id::bigint AS id, username, password, email, is_staff, is_superuser, \
             is_active, {}, {}",
            time("date_joined"),
            time("last_login")
        );
        sqlx::query(&format!("SELECT {columns} FROM auth_user LIMIT 0"))
            .execute(&pool)
            .await
            .map_err(not_django)?;
        sqlx::query(&format!("SELECT g.name FROM {GROUPS} LIMIT 0"))
            .execute(&pool)
            .await
            .map_err(|e| no_groups(&shown, e))?;
        let query = format!(
            "SELECT {columns}, (SELECT COALESCE(json_agg(g.name ORDER BY g.name), '[]')::text \
             FROM {GROUPS} WHERE ug.user_id = auth_user.id) AS roles FROM auth_user ORDER BY id"
        );
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
    roles_from_text(&mut fields)?;
    Ok(fields)
}

/// The `roles` column, a JSON array as text, as the array itself.
fn roles_from_text(fields: &mut Map<String, Value>) -> Result<(), String> {
    if let Some(Value::String(text)) = fields.get("roles") {
        let roles =
            serde_json::from_str(text).map_err(|e| format!("its groups cannot be read ({e})"))?;
        fields.insert("roles".into(), roles);
    }
    Ok(())
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
        fields.insert("roles".into(), row.try_get::<String, _>("roles")?.into());
        Ok(fields)
    };
    let mut fields = read().map_err(|e| format!("cannot be read: {e}"))?;
    roles_from_text(&mut fields)?;
    Ok(fields)
}

#[cfg(test)]
mod tests;
