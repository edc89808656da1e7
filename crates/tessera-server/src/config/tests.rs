use super::parse::read_rate;
use super::*;
use std::io::Write;
use tessera_core::Algorithm;
use tessera_core::claims::{ExtraClaim, RESERVED_CLAIMS};

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

#[test]
fn defaults_follow_the_spec() {
    let s = Settings::load(None, env(&[])).unwrap();
    assert_eq!(s.bind, "127.0.0.1:8000");
    assert_eq!(s.database_url, "sqlite://tessera.db");
    assert_eq!(s.access_token_lifetime, Duration::from_secs(300));
    assert_eq!(s.refresh_token_lifetime, Duration::from_secs(86_400));
    assert_eq!(s.algorithm, Algorithm::HS256);
    assert!(s.reuse_detection && !s.rotate_refresh_tokens);
    assert_eq!(s.login_rate_limit.unwrap().count, 10);
}

#[test]
fn a_rotated_key_is_published_five_minutes_before_it_signs_unless_told_otherwise() {
    let s = Settings::load(None, env(&[])).unwrap();
    assert_eq!(s.key_publish_lead, Duration::from_secs(300));
    let s = Settings::load(None, env(&[("TESSERA_KEY_PUBLISH_LEAD", "0s")])).unwrap();
    assert_eq!(s.key_publish_lead, Duration::ZERO);
    let s = Settings::load(None, env(&[("TESSERA_KEY_PUBLISH_LEAD", "7d")])).unwrap();
    assert_eq!(s.key_publish_lead, Duration::from_secs(7 * 86_400));
    for bad in ["8d", "soon", "-1s"] {
        let e = Settings::load(None, env(&[("TESSERA_KEY_PUBLISH_LEAD", bad)]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`key_publish_lead`"), "{bad}: {e}");
    }
}

#[test]
fn environment_overrides_the_file() {
    let f = file(
        "algorithm = \"ES256\"\naccess_token_lifetime = \"10m\"\nextra_claims = [\"email\"]\n",
    );
    let s = Settings::load(
        Some(f.path()),
        env(&[
            ("TESSERA_ALGORITHM", "EdDSA"),
            ("TESSERA_TOKEN_LOCATIONS", "cookies, headers"),
            ("PATH", "/bin"),
        ]),
    )
    .unwrap();
    assert_eq!(s.algorithm, Algorithm::EdDSA);
    assert_eq!(s.access_token_lifetime, Duration::from_secs(600));
    assert_eq!(s.extra_claims, vec![ExtraClaim::Email]);
    assert_eq!(
        s.token_locations,
        vec![TokenLocation::Cookies, TokenLocation::Headers]
    );
}

#[test]
fn errors_name_the_setting_and_the_choices() {
    let f = file("algoritm = \"HS256\"\n");
    let e = Settings::load(Some(f.path()), env(&[]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("`algoritm`"), "{e}");
    let e = Settings::load(None, env(&[("TESSERA_ALGORITHM", "hs256")]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`algorithm`") && e.contains("HS256, HS384"),
        "{e}"
    );
    let e = Settings::load(None, env(&[("TESSERA_COOKIE_SAMESITE", "lax")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("Lax, Strict, None"), "{e}");
    let e = Settings::load(None, env(&[("TESSERA_LOGIN_RATE_LIMIT", "10/day")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("`login_rate_limit`"), "{e}");
    let e = Settings::load(None, env(&[("TESSERA_ROTATE_REFRESH_TOKENS", "yes")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("true or false"), "{e}");
    assert!(Settings::load(None, env(&[("TESSERA_TEST_REQUIRE_TOOLS", "1")])).is_ok());
    let e = Settings::load(None, env(&[("TESSERA_NOPE", "1")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("TESSERA_NOPE"), "{e}");
    assert!(Settings::load(None, env(&[("TESSERA_BIND", "nowhere")])).is_err());
    assert!(Settings::load(None, env(&[("TESSERA_LEEWAY", "soon")])).is_err());
}

#[test]
fn every_reserved_claim_is_refused_as_user_id_claim() {
    for claim in RESERVED_CLAIMS {
        let e = Settings::load(
            None,
            env(&[
                ("TESSERA_USER_ID_CLAIM", claim),
                ("TESSERA_AUDIENCE", "api"),
            ]),
        )
        .err()
        .unwrap_or_else(|| panic!("user_id_claim = {claim} was accepted"))
        .to_string();
        assert!(e.contains("`user_id_claim`") && e.contains(claim), "{e}");
    }
    for fine in ["user_id", "uid", "account"] {
        assert!(Settings::load(None, env(&[("TESSERA_USER_ID_CLAIM", fine)])).is_ok());
    }
    assert!(Settings::load(None, env(&[("TESSERA_USER_ID_CLAIM", "")])).is_err());
}

#[test]
fn redis_urls_are_checked_and_leeway_is_bounded() {
    let s = Settings::load(
        None,
        env(&[("TESSERA_REDIS_URL", "redis://127.0.0.1:6379/0")]),
    )
    .unwrap();
    assert_eq!(s.redis_url.as_deref(), Some("redis://127.0.0.1:6379/0"));
    assert_eq!(s.redis_prefix, "tessera:");
    for bad in ["http://127.0.0.1:6379", "redis://:pw@", "127.0.0.1:6379"] {
        let e = Settings::load(None, env(&[("TESSERA_REDIS_URL", bad)]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`redis_url`") && e.contains("redis://127.0.0.1:6379/0"),
            "{bad}: {e}"
        );
        assert!(!e.contains(":pw@"), "the password shows: {e}");
    }
    assert!(Settings::load(None, env(&[("TESSERA_REDIS_URL", "")])).is_ok());
    let e = Settings::load(None, env(&[("TESSERA_LEEWAY", "6m")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("`leeway`") && e.contains("5m"), "{e}");
    assert!(Settings::load(None, env(&[("TESSERA_LEEWAY", "5m")])).is_ok());
}

#[test]
fn the_refresh_grace_period_is_ten_seconds_and_at_most_five_minutes() {
    let grace = |v: &str| Settings::load(None, env(&[("TESSERA_REFRESH_GRACE_PERIOD", v)]));
    assert_eq!(
        Settings::load(None, env(&[])).unwrap().refresh_grace_period,
        std::time::Duration::from_secs(10)
    );
    assert_eq!(
        grace("0s").unwrap().refresh_grace_period,
        std::time::Duration::ZERO
    );
    assert_eq!(
        grace("5m").unwrap().refresh_grace_period,
        std::time::Duration::from_secs(300)
    );
    let e = grace("6m").unwrap_err().to_string();
    assert!(
        e.contains("`refresh_grace_period`") && e.contains("0s to 5m"),
        "{e}"
    );
    let e = grace("soon").unwrap_err().to_string();
    assert!(e.contains("a duration such as 30s"), "{e}");
}

#[test]
fn public_url_is_an_absolute_http_url() {
    let url = |v: &str| Settings::load(None, env(&[("TESSERA_PUBLIC_URL", v)]));
    assert_eq!(
        url("https://auth.example.com/")
            .unwrap()
            .public_url
            .as_deref(),
        Some("https://auth.example.com")
    );
    assert!(url("http://127.0.0.1:8000/auth").is_ok());
    for bad in [
        "auth.example.com",
        "ftp://x",
        "https://",
        "https://a b",
        "https://x/?q=1",
    ] {
        let e = url(bad).unwrap_err().to_string();
        assert!(e.contains("`public_url`"), "{bad}: {e}");
    }
    assert!(url("").unwrap().public_url.is_none());
}

#[test]
fn rates_parse() {
    let rate = |t: &str| read_rate(toml::Value::String(t.into()));
    assert_eq!(rate("off").unwrap(), None);
    assert_eq!(rate("5/s").unwrap().unwrap().per, Duration::from_secs(1));
    assert_eq!(rate("100/h").unwrap().unwrap().count, 100);
    assert!(rate("0/min").is_err());
}

#[test]
fn an_all_digit_secret_from_the_environment_stays_text() {
    let digits = "1234567890123456789012345678901234567890";
    let s = Settings::load(None, env(&[("TESSERA_SIGNING_KEY", digits)])).unwrap();
    assert_eq!(s.signing_key.as_deref(), Some(digits));
}

#[test]
fn values_of_the_wrong_type_in_the_file_name_the_setting() {
    for (text, setting, expected) in [
        ("leeway = 5", "leeway", "a duration"),
        (
            "max_connections = \"many\"",
            "max_connections",
            "an integer from 1 to 1000000",
        ),
        ("cookie_secure = 1", "cookie_secure", "true or false"),
        (
            "token_locations = [1]",
            "token_locations",
            "a list of strings",
        ),
        ("issuer = [\"a\"]", "issuer", "a string"),
    ] {
        let f = file(text);
        let e = Settings::load(Some(f.path()), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!(
                "invalid value for setting `{setting}`: {expected}"
            )),
            "{text}: {e}"
        );
    }
}

#[test]
fn the_signing_key_never_shows_in_debug() {
    let s = Settings::load(
        None,
        env(&[("TESSERA_SIGNING_KEY", "super-secret-value-0123456789abcdef")]),
    )
    .unwrap();
    assert!(!format!("{s:?}").contains("super-secret"));
    assert_eq!(redact_url("postgres://u:pw@h/db"), "postgres://u:***@h/db");
    // Without a password there is nothing to hide (and no `***` to mislead).
    assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
    assert_eq!(redact_url("redis://h:6379/0"), "redis://h:6379/0");
}

#[test]
fn mail_settings_are_checked_at_start_and_the_password_is_masked() {
    let load = |pairs: &[(&str, &str)]| Settings::load(None, env(pairs));
    let s = load(&[
        (
            "TESSERA_SMTP_URL",
            "smtps://mailer:hunter2@smtp.example.com",
        ),
        ("TESSERA_MAIL_FROM", "Accounts <accounts@example.com>"),
        ("TESSERA_EMAIL_VERIFICATION", "required"),
        ("TESSERA_RESET_TOKEN_LIFETIME", "15m"),
    ])
    .unwrap();
    assert_eq!(s.email_verification, super::EmailVerification::Required);
    assert_eq!(s.reset_token_lifetime, Duration::from_secs(900));
    assert!(!format!("{s:?}").contains("hunter2"));
    let defaults = Settings::default();
    assert_eq!(defaults.mail_from, "Tessera <noreply@localhost>");
    assert_eq!(defaults.reset_token_lifetime, Duration::from_secs(3600));
    assert_eq!(defaults.email_verification, super::EmailVerification::Off);
    for (name, bad, says) in [
        ("TESSERA_SMTP_URL", "http://smtp.example.com", "smtps://"),
        ("TESSERA_SMTP_URL", "smtp://:pw@/x", "smtp://"),
        (
            "TESSERA_MAIL_FROM",
            "Tessera\r\nBcc: eve@example.com <a@example.com>",
            "Name <address>",
        ),
        (
            "TESSERA_MAIL_FROM",
            "a@example.com, eve@example.com",
            "Name <address>",
        ),
        ("TESSERA_EMAIL_VERIFICATION", "yes", "`optional`"),
        ("TESSERA_RESET_TOKEN_LIFETIME", "8d", "7d"),
        ("TESSERA_RESET_TOKEN_LIFETIME", "0s", "1s"),
    ] {
        let e = load(&[(name, bad)]).unwrap_err().to_string();
        let setting = name.trim_start_matches("TESSERA_").to_lowercase();
        assert!(
            e.contains(&format!("`{setting}`")) && e.contains(says),
            "{bad}: {e}"
        );
        assert!(!e.contains("\r\n"), "{e}");
    }
}

#[test]
fn the_totp_issuer_is_what_an_otpauth_uri_can_carry() {
    let load = |pairs: &[(&str, &str)]| Settings::load(None, env(pairs));
    assert_eq!(Settings::default().totp_issuer, "Tessera");
    let s = load(&[("TESSERA_TOTP_ISSUER", "Example Corp")]).unwrap();
    assert_eq!(s.totp_issuer, "Example Corp");
    let long = "x".repeat(101);
    for bad in ["", "Example:Corp", "Example\nCorp", long.as_str()] {
        let e = load(&[("TESSERA_TOTP_ISSUER", bad)])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`totp_issuer`") && e.contains("without `:`"),
            "{bad:?}: {e}"
        );
    }
}

/// The simplejwt tutorial's claims: `user_name`, `email`, `is_admin`.
const TUTORIAL: &str = "extra_claims = [\"email\", \"is_staff\"]\n\
                        claim_names = { username = \"user_name\", is_staff = \"is_admin\" }\n";

#[test]
fn claim_names_rename_user_claims_from_the_file_or_the_environment() {
    use tessera_core::claims::UserClaim;
    let f = file(TUTORIAL);
    let s = Settings::load(Some(f.path()), env(&[])).unwrap();
    let names = &s.token_policy().claim_names;
    assert_eq!(
        UserClaim::ALL.map(|c| names.get(c)),
        [
            "user_name",
            "email",
            "is_admin",
            "is_superuser",
            "roles",
            "app_metadata"
        ]
    );
    assert_eq!(
        s.value("claim_names").unwrap().to_string(),
        "{ is_staff = \"is_admin\", username = \"user_name\" }"
    );
    assert_eq!(
        Settings::default()
            .value("claim_names")
            .unwrap()
            .to_string(),
        "{}"
    );
    let s = Settings::load(
        None,
        env(&[
            ("TESSERA_EXTRA_CLAIMS", "is_superuser"),
            (
                "TESSERA_CLAIM_NAMES",
                "username = user_name, is_superuser=is_root",
            ),
        ]),
    )
    .unwrap();
    assert_eq!(s.claim_names.get(UserClaim::Username), "user_name");
    assert_eq!(s.claim_names.get(UserClaim::IsSuperuser), "is_root");
    assert_eq!(s.extra_claims, vec![ExtraClaim::IsSuperuser]);
}

#[test]
fn claim_names_that_collide_or_name_nothing_stop_the_start() {
    let reserved = RESERVED_CLAIMS.join(", ");
    for (text, expected) in [
        (
            "extra_claims = [\"is_staff\", \"is_superuser\"]\n\
             claim_names = { is_staff = \"is_admin\", is_superuser = \"is_admin\" }",
            "`is_staff` and `is_superuser` are both renamed `is_admin`".to_owned(),
        ),
        (
            "claim_names = { username = \"exp\" }",
            format!(
                "`username` cannot be renamed `exp`, a claim Tessera writes itself \
                 (reserved: {reserved})"
            ),
        ),
        (
            "claim_names = { username = \"sub\" }",
            format!(
                "`username` cannot be renamed `sub`, a claim Tessera writes itself \
                 (reserved: {reserved})"
            ),
        ),
        (
            "extra_claims = [\"email\"]\nclaim_names = { email = \"username\" }",
            format!(
                "`email` cannot be renamed `username`, a claim Tessera writes itself \
                 (reserved: {reserved})"
            ),
        ),
        (
            "user_id_claim = \"uid\"\nclaim_names = { username = \"uid\" }",
            "`username` cannot be renamed `uid`, the claim of the user id (`user_id_claim`)"
                .to_owned(),
        ),
        (
            "claim_names = { username = \"user_id\" }",
            "`username` cannot be renamed `user_id`, the claim of the user id \
             (`user_id_claim`)"
                .to_owned(),
        ),
        (
            "claim_names = { username = \"\" }",
            "`username` is given an empty name".to_owned(),
        ),
        (
            "claim_names = { is_staff = \"is_admin\" }",
            "`is_staff` is renamed `is_admin` but `extra_claims` does not put `is_staff` in \
             tokens"
                .to_owned(),
        ),
        (
            "claim_names = { fresh = \"is_fresh\" }",
            "keys among username, email, is_staff, is_superuser, roles, app_metadata: `fresh` is not a claim to \
             rename"
                .to_owned(),
        ),
        (
            "claim_names = { username = 1 }",
            "a claim name (a string) for `username`, got `1`".to_owned(),
        ),
        (
            "claim_names = [\"user_name\"]",
            "a table of claim names with keys among username, email, is_staff, is_superuser, roles, app_metadata"
                .to_owned(),
        ),
        (
            "claim_names = \"user_name\"",
            "`claim=name` pairs separated by commas, got `user_name`".to_owned(),
        ),
    ] {
        let f = file(text);
        let e = Settings::load(Some(f.path()), env(&[]))
            .err()
            .unwrap_or_else(|| panic!("accepted: {text}"))
            .to_string();
        assert_eq!(
            e,
            format!("invalid value for setting `claim_names`: {expected}"),
            "{text}"
        );
    }
    let e = Settings::load(
        None,
        env(&[("TESSERA_CLAIM_NAMES", "username=a,username=b")]),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        "invalid value for setting `claim_names`: one name per claim: `username` is named twice"
    );
    // A claim under its own name is no rename, and is accepted.
    let f = file("claim_names = { username = \"username\", email = \"email\" }");
    assert!(Settings::load(Some(f.path()), env(&[])).is_ok());
}

#[test]
fn the_mfa_setting_has_three_modes_and_names_them_when_refused() {
    use super::MfaPolicy;
    let load = |pairs: &[(&str, &str)]| Settings::load(None, env(pairs));
    assert_eq!(Settings::default().mfa, MfaPolicy::Optional);
    for (value, policy, staff, others) in [
        ("optional", MfaPolicy::Optional, false, false),
        (
            "required_for_staff",
            MfaPolicy::RequiredForStaff,
            true,
            false,
        ),
        ("required", MfaPolicy::Required, true, true),
    ] {
        let s = load(&[("TESSERA_MFA", value)]).unwrap();
        assert_eq!(s.mfa, policy);
        assert_eq!(s.mfa.name(), value);
        assert_eq!(
            (s.mfa.requires_factor(true), s.mfa.requires_factor(false)),
            (staff, others)
        );
    }
    let e = load(&[("TESSERA_MFA", "always")]).unwrap_err().to_string();
    assert!(
        e.contains("`mfa`") && e.contains("`optional`, `required_for_staff` or `required`"),
        "{e}"
    );
}
