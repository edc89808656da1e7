use super::*;
use std::io::Write;

#[test]
fn the_table_documents_exactly_the_settings_the_parser_accepts() {
    let documented: Vec<&str> = SETTINGS.iter().map(|s| s.name).collect();
    assert_eq!(documented, super::super::SETTING_NAMES);
    // And every name the loader knows has a field: a file naming it loads.
    for name in super::super::SETTING_NAMES {
        let value = Settings::default().value(name);
        if let Some(value) = value {
            let mut file = tempfile::NamedTempFile::new().unwrap();
            writeln!(file, "{name} = {value}").unwrap();
            assert!(
                Settings::load(Some(file.path()), Vec::new()).is_ok(),
                "{name}"
            );
        }
    }
}

#[test]
fn the_default_file_loads_back_to_the_defaults() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(defaults_toml().as_bytes()).unwrap();
    let loaded = Settings::load(Some(file.path()), Vec::new()).unwrap();
    assert_eq!(
        effective_toml(&loaded),
        effective_toml(&Settings::default())
    );
}

#[test]
fn the_effective_file_loads_back_to_the_same_settings() {
    let env = [
        ("TESSERA_ALGORITHM", "ES256"),
        ("TESSERA_TOKEN_LOCATIONS", "cookies,headers"),
        ("TESSERA_LOGIN_RATE_LIMIT", "off"),
        ("TESSERA_TRUSTED_PROXIES", "10.0.0.1,::1"),
        ("TESSERA_ISSUER", "https://auth.example.com"),
        ("TESSERA_ACCESS_TOKEN_LIFETIME", "90s"),
        ("TESSERA_EXTRA_CLAIMS", "is_staff"),
        (
            "TESSERA_CLAIM_NAMES",
            "username=user_name,is_staff=is_admin",
        ),
        ("TESSERA_COOKIE_SAMESITE", "Strict"),
        ("TESSERA_SIGNUP_RATE_LIMIT", "100/h"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let settings = Settings::load(None, env).unwrap();
    let text = effective_toml(&settings);
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    let again = Settings::load(Some(file.path()), Vec::new()).unwrap();
    assert_eq!(effective_toml(&again), text);
    assert!(text.contains("login_rate_limit = \"off\""), "{text}");
    assert!(text.contains("access_token_lifetime = \"90s\""), "{text}");
    assert!(
        text.contains("claim_names = { is_staff = \"is_admin\", username = \"user_name\" }"),
        "{text}"
    );
}

#[test]
fn secrets_are_masked_in_the_effective_file() {
    let env = [
        (
            "TESSERA_SIGNING_KEY",
            "super-secret-value-0123456789abcdef-more",
        ),
        (
            "TESSERA_DATABASE_URL",
            "postgres://user:hunter2@127.0.0.1:5432/tessera",
        ),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let text = effective_toml(&Settings::load(None, env).unwrap());
    assert!(!text.contains("super-secret"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("signing_key = \"********\""), "{text}");
}

#[test]
fn docs_configuration_md_is_the_generated_reference() {
    // The package as cargo runs this test (the path compiled in may be
    // another clone's, when clones share a target directory).
    let package = std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(
        || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")),
        std::path::PathBuf::from,
    );
    let path = package.join("../../docs/CONFIGURATION.md");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == reference_markdown(),
        "docs/CONFIGURATION.md is out of date; regenerate it with\n    \
         cargo run -q -- config --reference > docs/CONFIGURATION.md"
    );
}

#[test]
fn the_reserved_claims_are_all_documented() {
    let accepted = doc("user_id_claim").unwrap().accepted;
    for claim in tessera_core::claims::RESERVED_CLAIMS {
        assert!(accepted.contains(&format!("`{claim}`")), "{claim}");
    }
}

#[test]
fn wrap_keeps_lines_short_and_words_whole() {
    let lines = wrap("aaa bbb ccc ddd", 7);
    assert_eq!(lines, ["aaa bbb", "ccc ddd"]);
    assert!(wrap("", 10).is_empty());
}
