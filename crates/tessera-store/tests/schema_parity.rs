//! The SQLite and PostgreSQL migrations build the same schema: the same
//! migration files, and once both sets are applied, the same tables with
//! the same columns (names, types, nullability, defaults, in order), keys,
//! foreign keys and indexes (names, columns, uniqueness, predicate).
//!
//! The PostgreSQL half needs `TESSERA_TEST_POSTGRES_URL` (an admin URL such
//! as `postgres://postgres@127.0.0.1:5432/postgres`); without it that half
//! is skipped, saying so on stderr.

use sqlx::{Connection, Executor, PgConnection, SqliteConnection};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use tessera_store::scratch::ScratchDatabase;
use tessera_store::{Maintenance, PgStore, SqliteStore};

const POSTGRES_URL_VAR: &str = "TESSERA_TEST_POSTGRES_URL";

/// A table as both engines can describe it.
#[derive(Debug, PartialEq, Eq)]
struct Table {
    /// In declaration order.
    columns: Vec<Column>,
    primary_key: Vec<String>,
    /// Column lists of UNIQUE constraints.
    unique: BTreeSet<Vec<String>>,
    /// (columns, referenced table, referenced columns, ON DELETE action).
    foreign_keys: BTreeSet<(Vec<String>, String, Vec<String>, String)>,
    /// Indexes created by CREATE INDEX, by name.
    indexes: BTreeMap<String, Index>,
}

#[derive(Debug, PartialEq, Eq)]
struct Column {
    name: String,
    /// PostgreSQL's name for the type; SQLite's declared types mapped to it.
    data_type: String,
    not_null: bool,
    /// Normalised: lower case, casts dropped, `autoincrement` for ids.
    default: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
struct Index {
    columns: Vec<String>,
    unique: bool,
    /// A partial index's condition, normalised.
    predicate: Option<String>,
}

type Schema = BTreeMap<String, Table>;

/// A row of `pg_constraint`: kind (p, u, f), columns, referenced table,
/// referenced columns, ON DELETE action.
type ConstraintRow = (String, Vec<String>, Option<String>, Vec<String>, String);

/// Tables that belong to the engine or to sqlx, not to Tessera.
fn is_ours(table: &str) -> bool {
    table != "_sqlx_migrations" && !table.starts_with("sqlite_")
}

fn normalise_condition(sql: &str) -> String {
    // PostgreSQL writes `(a IS NULL) AND (b IS NULL)` for `a IS NULL AND b IS
    // NULL`; the conditions here are conjunctions, so parentheses carry nothing.
    sql.replace(['(', ')'], "")
        .replace("::text", "")
        .trim()
        .to_lowercase()
}

fn sqlite_type(declared: &str) -> String {
    match declared.to_uppercase().as_str() {
        "INTEGER" | "BIGINT" => "bigint",
        "TEXT" => "text",
        "BOOLEAN" => "boolean",
        "BLOB" => "bytea",
        other => panic!("no PostgreSQL counterpart known for SQLite type {other}"),
    }
    .to_owned()
}

async fn read_sqlite_schema(conn: &mut SqliteConnection) -> Schema {
    let tables: Vec<(String, String)> =
        sqlx::query_as("SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    let mut schema = Schema::new();
    for (table, sql) in tables.into_iter().filter(|(t, _)| is_ours(t)) {
        let autoincrement = sql.to_uppercase().contains("AUTOINCREMENT");
        let info: Vec<(String, String, bool, Option<String>, i64)> = sqlx::query_as(
            "SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?) ORDER BY cid",
        )
        .bind(&table)
        .fetch_all(&mut *conn)
        .await
        .unwrap();
        let mut primary_key: Vec<(i64, String)> = Vec::new();
        let columns = info
            .into_iter()
            .map(|(name, declared, not_null, default, pk)| {
                if pk > 0 {
                    primary_key.push((pk, name.clone()));
                }
                let id = pk > 0 && declared.eq_ignore_ascii_case("INTEGER") && autoincrement;
                Column {
                    data_type: sqlite_type(&declared),
                    // A primary key is NOT NULL on PostgreSQL; SQLite says so
                    // only for INTEGER PRIMARY KEY (and does not enforce it
                    // for other types), so it is read as NOT NULL here.
                    not_null: not_null || pk > 0,
                    default: if id {
                        Some("autoincrement".into())
                    } else {
                        default.map(|d| d.to_lowercase())
                    },
                    name,
                }
            })
            .collect();
        primary_key.sort();

        let index_list: Vec<(String, bool, String, bool)> =
            sqlx::query_as("SELECT name, \"unique\", origin, partial FROM pragma_index_list(?)")
                .bind(&table)
                .fetch_all(&mut *conn)
                .await
                .unwrap();
        let mut unique = BTreeSet::new();
        let mut indexes = BTreeMap::new();
        for (name, is_unique, origin, partial) in index_list {
            let index_columns: Vec<String> = sqlx::query_scalar(
                "SELECT COALESCE(name, '(expression)') FROM pragma_index_info(?) ORDER BY seqno",
            )
            .bind(&name)
            .fetch_all(&mut *conn)
            .await
            .unwrap();
            match origin.as_str() {
                "u" => {
                    unique.insert(index_columns);
                }
                "c" => {
                    let predicate = if partial {
                        let sql: String =
                            sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE name = ?")
                                .bind(&name)
                                .fetch_one(&mut *conn)
                                .await
                                .unwrap();
                        let at = sql.to_uppercase().rfind(" WHERE ").unwrap();
                        Some(normalise_condition(&sql[at + 7..]))
                    } else {
                        None
                    };
                    indexes.insert(
                        name,
                        Index {
                            columns: index_columns,
                            unique: is_unique,
                            predicate,
                        },
                    );
                }
                _ => {} // "pk": the primary key, compared above.
            }
        }

        let fks: Vec<(i64, String, String, String, String)> = sqlx::query_as(
            "SELECT id, \"table\", \"from\", \"to\", on_delete FROM pragma_foreign_key_list(?) ORDER BY id, seq",
        )
        .bind(&table)
        .fetch_all(&mut *conn)
        .await
        .unwrap();
        let mut by_id: BTreeMap<i64, (Vec<String>, String, Vec<String>, String)> = BTreeMap::new();
        for (id, target, from, to, on_delete) in fks {
            let fk = by_id
                .entry(id)
                .or_insert_with(|| (vec![], target, vec![], on_delete.to_lowercase()));
            fk.0.push(from);
            fk.2.push(to);
        }

        schema.insert(
            table,
            Table {
                columns,
                primary_key: primary_key.into_iter().map(|(_, c)| c).collect(),
                unique,
                foreign_keys: by_id.into_values().collect(),
                indexes,
            },
        );
    }
    schema
}

async fn read_postgres_schema(conn: &mut PgConnection) -> Schema {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let mut schema = Schema::new();
    for table in tables.into_iter().filter(|t| is_ours(t)) {
        let info: Vec<(String, String, String, Option<String>)> = sqlx::query_as(
            "SELECT column_name::text, data_type::text, is_nullable::text, column_default::text \
             FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
        )
        .bind(&table)
        .fetch_all(&mut *conn)
        .await
        .unwrap();
        let columns = info
            .into_iter()
            .map(|(name, data_type, nullable, default)| Column {
                name,
                data_type,
                not_null: nullable == "NO",
                default: default.map(|d| {
                    if d.starts_with("nextval(") {
                        "autoincrement".to_owned()
                    } else {
                        d.split("::").next().unwrap().to_lowercase()
                    }
                }),
            })
            .collect();

        // Constraints: p(rimary key), u(nique), f(oreign key), with columns.
        let constraints: Vec<ConstraintRow> =
            sqlx::query_as(
                "SELECT c.contype::text, \
                   ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, o) \
                         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.o), \
                   c.confrelid::regclass::text, \
                   ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(n, o) \
                         JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.o), \
                   CASE c.confdeltype WHEN 'c' THEN 'cascade' WHEN 'n' THEN 'set null' \
                     WHEN 'd' THEN 'set default' WHEN 'r' THEN 'restrict' ELSE 'no action' END \
                 FROM pg_constraint c \
                 WHERE c.conrelid = (quote_ident(current_schema()) || '.' || quote_ident($1))::regclass \
                   AND c.contype IN ('p', 'u', 'f')",
            )
            .bind(&table)
            .fetch_all(&mut *conn)
            .await
            .unwrap();
        let mut primary_key = Vec::new();
        let mut unique = BTreeSet::new();
        let mut foreign_keys = BTreeSet::new();
        for (kind, cols, target, target_cols, on_delete) in constraints {
            match kind.as_str() {
                "p" => primary_key = cols,
                "u" => {
                    unique.insert(cols);
                }
                _ => {
                    foreign_keys.insert((cols, target.unwrap(), target_cols, on_delete));
                }
            }
        }

        // Indexes not backing a constraint: those made by CREATE INDEX.
        let index_rows: Vec<(String, bool, Option<String>, Vec<String>)> = sqlx::query_as(
            "SELECT i.relname::text, ix.indisunique, pg_get_expr(ix.indpred, ix.indrelid), \
               ARRAY(SELECT COALESCE(a.attname::text, '(expression)') \
                     FROM unnest(ix.indkey::int2[]) WITH ORDINALITY k(n, o) \
                     LEFT JOIN pg_attribute a ON a.attrelid = ix.indrelid AND a.attnum = k.n ORDER BY k.o) \
             FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid \
             WHERE ix.indrelid = (quote_ident(current_schema()) || '.' || quote_ident($1))::regclass \
               AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = ix.indexrelid)",
        )
        .bind(&table)
        .fetch_all(&mut *conn)
        .await
        .unwrap();
        let indexes = index_rows
            .into_iter()
            .map(|(name, unique, predicate, columns)| {
                let predicate = predicate.as_deref().map(normalise_condition);
                (
                    name,
                    Index {
                        columns,
                        unique,
                        predicate,
                    },
                )
            })
            .collect();

        schema.insert(
            table,
            Table {
                columns,
                primary_key,
                unique,
                foreign_keys,
                indexes,
            },
        );
    }
    schema
}

fn migration_files(engine: &str) -> Vec<String> {
    // The package's directory as cargo gives it to the running test: the one
    // compiled in may be another clone's whose build cargo reused (clones
    // sharing one target directory), since deleted.
    let package = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    let dir = package.join("migrations").join(engine);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn both_engines_have_the_same_migration_files() {
    let sqlite = migration_files("sqlite");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, migration_files("postgres"));
}

#[tokio::test]
async fn both_engines_build_the_same_schema() {
    let Some(admin) = std::env::var(POSTGRES_URL_VAR)
        .ok()
        .filter(|u| !u.is_empty())
    else {
        // Straight to stderr, past libtest's capture of eprintln!.
        let _ = writeln!(
            std::io::stderr(),
            "{POSTGRES_URL_VAR} is not set: the PostgreSQL schema comparison was skipped"
        );
        return;
    };

    let dir = tempfile::tempdir().unwrap();
    let sqlite_url = format!("sqlite://{}", dir.path().join("parity.db").display());
    SqliteStore::connect(&sqlite_url)
        .await
        .unwrap()
        .migrate()
        .await
        .unwrap();
    let mut sqlite = SqliteConnection::connect(&sqlite_url).await.unwrap();
    let sqlite_schema = read_sqlite_schema(&mut sqlite).await;

    let scratch = ScratchDatabase::create(&admin).await.unwrap();
    let store = PgStore::connect(&scratch.url, 2).await.unwrap();
    store.migrate().await.unwrap();
    let mut postgres = PgConnection::connect(&scratch.url).await.unwrap();
    let postgres_schema = read_postgres_schema(&mut postgres).await;

    assert_eq!(
        sqlite_schema.keys().collect::<Vec<_>>(),
        [
            "audit_events",
            "changes",
            "clients",
            "email_tokens",
            "mail_requests",
            "mfa_challenges",
            "mfa_passkeys",
            "mfa_recovery_codes",
            "mfa_totp",
            "outbox",
            "passkey_ceremonies",
            "refresh_successors",
            "refresh_tokens",
            "revoked_families",
            "sessions",
            "signing_keys",
            "users"
        ],
        "the comparison found the tables"
    );
    assert_eq!(sqlite_schema["refresh_tokens"].indexes.len(), 2);
    assert_eq!(sqlite_schema, postgres_schema);

    // The comparison notices a column or an index added on one side only.
    postgres
        .execute("ALTER TABLE users ADD COLUMN nickname TEXT")
        .await
        .unwrap();
    assert_ne!(sqlite_schema, read_postgres_schema(&mut postgres).await);
    postgres
        .execute("ALTER TABLE users DROP COLUMN nickname")
        .await
        .unwrap();
    assert_eq!(sqlite_schema, read_postgres_schema(&mut postgres).await);
    postgres
        .execute("CREATE INDEX users_joined ON users (date_joined)")
        .await
        .unwrap();
    assert_ne!(sqlite_schema, read_postgres_schema(&mut postgres).await);

    postgres.close().await.unwrap();
    drop(store);
    scratch.drop_now().await.unwrap();
}
