//! One source row to one user: the fields of SPEC's jsonl format (Django's
//! `auth_user` columns read the same way), each checked, each refusal a
//! sentence naming the field, quoting the value as an excerpt (cut short,
//! escaped: the source may hold anything).

use crate::authority::user_claims::Roles;
use crate::printable::{excerpt, excerpt_json};
use serde_json::{Map, Value};
use tessera_core::password::imported::{self, HashProblem};
use tessera_core::username::Username;
use tessera_store::ImportedUser;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

/// A row read as a user, and whether its password can be used.
#[derive(Debug)]
pub struct Candidate {
    /// The user to create.
    pub user: ImportedUser,
    /// Why its password cannot serve a login, if it cannot.
    pub password_problem: Option<HashProblem>,
}

/// Reads `fields` (a jsonl object, or a Django row with `is_superuser`) as
/// a user; `now` is the `date_joined` of a row without one. The error is
/// why the row is skipped.
pub fn candidate(fields: &Map<String, Value>, now: i64) -> Result<Candidate, String> {
    let username = match fields.get("username") {
        Some(Value::String(name)) => name,
        None | Some(Value::Null) => return Err("no username".into()),
        Some(_) => return Err("username is not a string".into()),
    };
    let username = Username::parse(username)
        .map_err(|e| format!("username {} cannot be used: {e}", excerpt(username)))?;
    let password_hash = match fields.get("password") {
        Some(Value::String(hash)) => hash.clone(),
        None | Some(Value::Null) => return Err("no password field".into()),
        Some(_) => return Err("password is not a string".into()),
    };
    let id = match fields.get("id") {
        None | Some(Value::Null) => None,
        Some(value) => Some(integer_id(value)?),
    };
    let is_superuser = flag(fields, "is_superuser", false)?;
    let email = text(fields, "email")?;
    // PostgreSQL refuses NUL in text, and one such value failed its whole
    // batch; SQLite would keep it. Refused on both, here, per row. (A
    // username with one is refused above, as a control character.)
    for (name, value) in [("password", &password_hash), ("email", &email)] {
        if value.contains('\0') {
            return Err(format!(
                "{name} holds a NUL character, which Tessera does not store"
            ));
        }
    }
    let roles = roles(fields)?;
    let user = ImportedUser {
        id,
        username: username.as_str().to_owned(),
        email,
        is_staff: flag(fields, "is_staff", false)? || is_superuser,
        is_superuser,
        is_active: flag(fields, "is_active", true)?,
        date_joined: date(fields, "date_joined")?.unwrap_or(now),
        last_login: date(fields, "last_login")?,
        password_hash,
        roles: roles.to_stored(),
    };
    let password_problem = imported::read(&user.password_hash).err();
    Ok(Candidate {
        user,
        password_problem,
    })
}

/// The largest id an imported user may have: 2^52. New accounts take ids
/// after the highest one, and clients in JavaScript read `user_id` as a
/// number, exact only up to 2^53 - 1; this bound leaves 2^52 ids for new
/// accounts below it. (An id of 2^63 - 1 had ended every later signup.)
pub const MAX_IMPORTED_ID: i64 = 1 << 52;

fn integer_id(value: &Value) -> Result<i64, String> {
    let id = match value {
        Value::Number(n) => n.as_i64(),
        // Django's SQLite columns may hold text; "12" is still 12.
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    match id {
        Some(id) if id > MAX_IMPORTED_ID => Err(format!(
            "id {} is too large: the largest id imported is {MAX_IMPORTED_ID} (2^52), \
             which leaves new accounts ids that JavaScript reads exactly",
            excerpt_json(value)
        )),
        Some(id) if id > 0 => Ok(id),
        _ => Err(format!(
            "id {} is not a positive integer",
            excerpt_json(value)
        )),
    }
}

/// `roles`: an array of role names (a Django user's groups, which the
/// Django sources put here), none when absent or null.
fn roles(fields: &Map<String, Value>) -> Result<Roles, String> {
    let value = match fields.get("roles") {
        None | Some(Value::Null) => return Ok(Roles::default()),
        Some(value) => value,
    };
    let names: Option<Vec<&str>> = value
        .as_array()
        .and_then(|items| items.iter().map(Value::as_str).collect());
    let names =
        names.ok_or_else(|| format!("roles {} is not an array of names", excerpt_json(value)))?;
    Roles::parse(names).map_err(|e| format!("roles: {e}"))
}

fn text(fields: &Map<String, Value>, name: &str) -> Result<String, String> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!("{name} {} is not a string", excerpt_json(other))),
    }
}

/// A boolean: JSON's, or SQLite's 0 and 1.
fn flag(fields: &Map<String, Value>, name: &str, default: bool) -> Result<bool, String> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::Number(n)) if n.as_i64() == Some(0) => Ok(false),
        Some(Value::Number(n)) if n.as_i64() == Some(1) => Ok(true),
        Some(other) => Err(format!(
            "{name} {} is not true or false",
            excerpt_json(other)
        )),
    }
}

/// Unix seconds of an RFC 3339 time, or of the forms Django writes: with a
/// space for the `T`, and without an offset (UTC, as Django stores times).
fn date(fields: &Map<String, Value>, name: &str) -> Result<Option<i64>, String> {
    let text = match fields.get(name) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.trim(),
        Some(other) => return Err(format!("{name} {} is not a date", excerpt_json(other))),
    };
    let naive = format_description!(
        version = 2,
        "[year]-[month]-[day][first [T] [ ]][hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    let with_space = text.replacen(' ', "T", 1);
    let parsed = OffsetDateTime::parse(&with_space, &Rfc3339)
        .ok()
        .or_else(|| {
            PrimitiveDateTime::parse(text, naive)
                .ok()
                .map(PrimitiveDateTime::assume_utc)
        })
        // Django on PostgreSQL or its own JSON may write "+00:00" after a
        // space-separated time; RFC 3339 has it too, but not with a space.
        .or_else(|| {
            let offset = text.strip_suffix("+00:00").or(text.strip_suffix("+00"))?;
            PrimitiveDateTime::parse(offset, naive)
                .ok()
                .map(PrimitiveDateTime::assume_utc)
        });
    match parsed {
        Some(t) => Ok(Some(t.unix_timestamp())),
        None => Err(format!(
            "{name} {} is not a date (expected RFC 3339, such as 2024-01-31T08:00:00Z)",
            excerpt(text)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(value: Value) -> Result<Candidate, String> {
        candidate(value.as_object().unwrap(), 99)
    }

    #[test]
    fn a_full_row_becomes_a_user() {
        let c = read(json!({
            "id": 7, "username": "Ｊｏｅ", "password": "pbkdf2_sha256$1000$salt$aGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGg=",
            "email": "joe@example.com", "is_staff": false, "is_superuser": 1, "is_active": 0,
            "date_joined": "2024-01-02T03:04:05.123456Z", "last_login": "2024-01-02 04:04:05",
        }))
        .unwrap();
        let u = &c.user;
        assert_eq!(
            (u.id, u.username.as_str(), u.email.as_str()),
            (Some(7), "Joe", "joe@example.com")
        );
        // A superuser is staff.
        assert_eq!(
            (u.is_staff, u.is_superuser, u.is_active),
            (true, true, false)
        );
        assert_eq!(
            (u.date_joined, u.last_login),
            (1_704_164_645, Some(1_704_168_245))
        );
        assert_eq!(c.password_problem, None);
    }

    #[test]
    fn optional_fields_take_defaults() {
        let c = read(json!({"username": "ann", "password": "!unusable"})).unwrap();
        let u = &c.user;
        assert_eq!((u.id, u.email.as_str()), (None, ""));
        assert_eq!(
            (u.is_staff, u.is_active, u.date_joined, u.last_login),
            (false, true, 99, None)
        );
        assert_eq!(c.password_problem, Some(HashProblem::NoPassword));
    }

    #[test]
    fn dates_in_the_forms_django_and_rfc_3339_write() {
        for (text, seconds) in [
            ("2024-01-02T03:04:05Z", 1_704_164_645),
            ("2024-01-02T03:04:05.123Z", 1_704_164_645),
            ("2024-01-02T05:04:05+02:00", 1_704_164_645),
            ("2024-01-02 03:04:05", 1_704_164_645),
            ("2024-01-02 03:04:05.999999", 1_704_164_645),
            ("2024-01-02 03:04:05+00:00", 1_704_164_645),
            ("2024-01-02T03:04:05", 1_704_164_645),
        ] {
            let c = read(json!({"username": "a", "password": "", "date_joined": text}));
            assert_eq!(c.unwrap().user.date_joined, seconds, "{text}");
        }
    }

    #[test]
    fn each_bad_field_says_which() {
        for (row, reason) in [
            (json!({"password": "x"}), "no username"),
            (
                json!({"username": 5, "password": "x"}),
                "username is not a string",
            ),
            (json!({"username": "a"}), "no password field"),
            (
                json!({"username": "a", "password": 1}),
                "password is not a string",
            ),
            (
                json!({"username": "", "password": "x"}),
                "username \"\" cannot be used",
            ),
            (
                json!({"username": "a\u{7}", "password": "x"}),
                "cannot be used",
            ),
            (
                json!({"username": "a", "password": "x", "id": "seven"}),
                "id \"seven\" is not a positive integer",
            ),
            (
                json!({"username": "a", "password": "x", "id": 1.5}),
                "id 1.5 is not",
            ),
            (
                json!({"username": "a", "password": "x", "id": -3}),
                "id -3 is not",
            ),
            (
                json!({"username": "a", "password": "x", "is_staff": "yes"}),
                "is_staff \"yes\" is not true or false",
            ),
            (
                json!({"username": "a", "password": "x", "email": []}),
                "email [] is not a string",
            ),
            (
                json!({"username": "a", "password": "x\u{0}"}),
                "password holds a NUL character",
            ),
            (
                json!({"username": "a", "password": "x", "email": "a\u{0}@b.c"}),
                "email holds a NUL character",
            ),
            (
                json!({"username": "a\u{0}", "password": "x"}),
                "may not contain control characters",
            ),
            (
                json!({"username": "a", "password": "x", "date_joined": "01/02/2024"}),
                "date_joined \"01/02/2024\" is not a date",
            ),
            (
                json!({"username": "a", "password": "x", "last_login": 1704164645}),
                "last_login 1704164645 is not a date",
            ),
        ] {
            let error = read(row.clone()).unwrap_err();
            assert!(error.contains(reason), "{row}: {error}");
        }
    }

    #[test]
    fn ids_past_2_to_the_52_are_refused() {
        let c = read(json!({"username": "a", "password": "x", "id": MAX_IMPORTED_ID}));
        assert_eq!(c.unwrap().user.id, Some(MAX_IMPORTED_ID));
        for id in [
            json!(MAX_IMPORTED_ID + 1),
            json!(i64::MAX),
            json!("9223372036854775807"),
        ] {
            let error = read(json!({"username": "a", "password": "x", "id": id})).unwrap_err();
            assert!(error.contains("is too large"), "{id}: {error}");
        }
        // Past i64 it is not an integer Tessera can hold at all.
        let error = read(json!({"username": "a", "password": "x", "id": 18446744073709551615u64}));
        assert!(error.unwrap_err().contains("is not a positive integer"));
    }

    #[test]
    fn ids_as_sqlite_text_are_read() {
        let c = read(json!({"username": "a", "password": "x", "id": "12"})).unwrap();
        assert_eq!(c.user.id, Some(12));
    }
}
