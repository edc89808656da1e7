//! What staff say of a user for the services to read in access tokens:
//! roles (Django's groups, Keycloak's realm roles) and `app_metadata`
//! (GoTrue's), each checked here once, whoever sets them (the admin API,
//! the CLI, an import), and stored as the JSON text the store keeps.

use serde_json::{Map, Value};

/// The longest role name, in characters: Django's `Group.name` is a
/// `CharField(max_length=150)`, so every group imports.
pub const MAX_ROLE_CHARS: usize = 150;
/// The most roles one user holds: they travel in every access token.
pub const MAX_ROLES: usize = 100;
/// The largest `app_metadata`, in bytes of compact JSON: it travels in every
/// access token.
pub const MAX_METADATA_BYTES: usize = 4096;

/// A user's roles: names of 1 to [`MAX_ROLE_CHARS`] characters without
/// control characters, at most [`MAX_ROLES`] of them, sorted, each once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roles(Vec<String>);

impl Roles {
    /// Checks `names`, sorting them and dropping repeats; the error says
    /// what is wrong with which, in words fit for a 400 or an import line.
    pub fn parse<I, S>(names: I) -> Result<Self, String>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut roles = Vec::new();
        for name in names {
            let name = name.into();
            check_role(&name)?;
            roles.push(name);
        }
        roles.sort_unstable();
        roles.dedup();
        if roles.len() > MAX_ROLES {
            return Err(format!("A user has at most {MAX_ROLES} roles."));
        }
        Ok(Self(roles))
    }

    /// The roles as stored: a JSON array. Read back by [`Roles::from_stored`].
    pub fn to_stored(&self) -> String {
        Value::from(self.0.clone()).to_string()
    }

    /// The roles of a stored JSON array. Only Tessera writes the column,
    /// always through [`Roles::to_stored`]; anything else reads as none
    /// rather than failing the whole user.
    pub fn from_stored(text: &str) -> Self {
        Self(serde_json::from_str(text).unwrap_or_default())
    }

    /// These roles with `add` added and `remove` removed (checked as
    /// [`Roles::parse`] checks them).
    pub fn changed(&self, add: &[String], remove: &[String]) -> Result<Self, String> {
        let kept = self.0.iter().filter(|r| !remove.contains(r)).cloned();
        Self::parse(kept.chain(add.iter().cloned()))
    }

    /// The names, sorted.
    pub fn names(&self) -> &[String] {
        &self.0
    }

    /// The names, sorted, owned.
    pub fn into_names(self) -> Vec<String> {
        self.0
    }
}

fn check_role(name: &str) -> Result<(), String> {
    let shown: String = name.chars().take(40).flat_map(char::escape_debug).collect();
    if name.trim().is_empty() {
        return Err("A role name may not be blank.".into());
    }
    if name.chars().count() > MAX_ROLE_CHARS {
        return Err(format!(
            "Role \"{shown}...\" is longer than {MAX_ROLE_CHARS} characters."
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(format!("Role \"{shown}\" contains a control character."));
    }
    Ok(())
}

/// What staff keep about a user: a JSON object of at most
/// [`MAX_METADATA_BYTES`] as compact JSON, of any shape inside.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppMetadata(Map<String, Value>);

impl AppMetadata {
    /// Checks `value`: an object, small enough.
    pub fn parse(value: Value) -> Result<Self, String> {
        let Value::Object(map) = value else {
            return Err("Expected a JSON object.".into());
        };
        let size = Value::Object(map.clone()).to_string().len();
        if size > MAX_METADATA_BYTES {
            return Err(format!(
                "At most {MAX_METADATA_BYTES} bytes of JSON; this is {size}."
            ));
        }
        Ok(Self(map))
    }

    /// The object as stored: compact JSON. Read back by
    /// [`AppMetadata::from_stored`].
    pub fn to_stored(&self) -> String {
        Value::Object(self.0.clone()).to_string()
    }

    /// The object of a stored text; anything else (never written by
    /// Tessera) reads as empty.
    pub fn from_stored(text: &str) -> Self {
        Self(serde_json::from_str(text).unwrap_or_default())
    }

    /// The object.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    /// The object, owned.
    pub fn into_map(self) -> Map<String, Value> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn roles_are_sorted_once_each_and_round_trip() {
        let roles = Roles::parse(["editors", "admins", "editors"]).unwrap();
        assert_eq!(roles.names(), ["admins", "editors"]);
        assert_eq!(roles.to_stored(), r#"["admins","editors"]"#);
        assert_eq!(Roles::from_stored(&roles.to_stored()), roles);
        assert_eq!(Roles::from_stored("not json"), Roles::default());
        let changed = roles
            .changed(&["viewers".into()], &["admins".into()])
            .unwrap();
        assert_eq!(changed.names(), ["editors", "viewers"]);
        assert_eq!(Roles::parse(["é".repeat(150)]).unwrap().names().len(), 1);
    }

    #[test]
    fn bad_role_names_are_refused_in_words() {
        assert_eq!(
            Roles::parse([""]),
            Err("A role name may not be blank.".into())
        );
        assert_eq!(
            Roles::parse(["  "]),
            Err("A role name may not be blank.".into())
        );
        assert_eq!(
            Roles::parse(["a".repeat(151)]),
            Err(format!(
                "Role \"{}...\" is longer than 150 characters.",
                "a".repeat(40)
            ))
        );
        assert_eq!(
            Roles::parse(["bad\nname"]),
            Err("Role \"bad\\nname\" contains a control character.".into())
        );
        let many: Vec<String> = (0..101).map(|i| format!("r{i}")).collect();
        assert_eq!(
            Roles::parse(many),
            Err("A user has at most 100 roles.".into())
        );
    }

    #[test]
    fn metadata_is_an_object_of_at_most_4_kib() {
        let ok = AppMetadata::parse(json!({"plan": "pro", "seats": [1, 2]})).unwrap();
        assert_eq!(ok.to_stored(), r#"{"plan":"pro","seats":[1,2]}"#);
        assert_eq!(AppMetadata::from_stored(&ok.to_stored()), ok);
        for bad in [json!([1]), json!("x"), json!(null), json!(3)] {
            assert_eq!(
                AppMetadata::parse(bad),
                Err("Expected a JSON object.".into())
            );
        }
        // {"k":"..."} is 8 bytes around the string.
        let at_limit = json!({ "k": "x".repeat(4096 - 8) });
        assert!(AppMetadata::parse(at_limit).is_ok());
        let over = json!({ "k": "x".repeat(4096 - 7) });
        assert_eq!(
            AppMetadata::parse(over),
            Err("At most 4096 bytes of JSON; this is 4097.".into())
        );
    }
}
