//! What each setting is, for people: the table behind `tessera config
//! --defaults` (a commented TOML file) and `tessera config --reference`
//! (docs/CONFIGURATION.md). A test holds the table to the parser: the same
//! names, and defaults that load back to [`Settings::default`].

use super::Settings;
use std::fmt::Write;

/// One setting as documented.
#[derive(Debug, Clone, Copy)]
pub struct SettingDoc {
    /// The TOML key (the environment variable is `TESSERA_` + its upper case).
    pub name: &'static str,
    /// What kind of value it takes, in words.
    pub kind: &'static str,
    /// The default as a TOML value, or `None` when the setting is unset by default.
    pub default: Option<&'static str>,
    /// The values accepted, in words.
    pub accepted: &'static str,
    /// What it does, including the combinations refused at start.
    pub about: &'static str,
}

impl SettingDoc {
    /// The environment variable that sets it.
    pub fn env(&self) -> String {
        format!("TESSERA_{}", self.name.to_ascii_uppercase())
    }
}

/// Every setting, in the order the documentation gives them.
pub const SETTINGS: [SettingDoc; 28] = [
    SettingDoc {
        name: "bind",
        kind: "address",
        default: Some("\"127.0.0.1:8000\""),
        accepted: "`HOST:PORT`; port 0 picks a free port",
        about: "The address the server listens on. The line `Tessera listening on HOST:PORT` on \
                standard output gives the address actually bound.",
    },
    SettingDoc {
        name: "database_url",
        kind: "URL",
        default: Some("\"sqlite://tessera.db\""),
        accepted: "`sqlite://PATH` (relative to the working directory), `sqlite:///ABSOLUTE/PATH`",
        about: "Where users, keys and revocations are kept. The SQLite file is created and \
                migrated on first start; its directory must exist and be writable. The file \
                (and its -wal and -shm) is readable by its owner only, whatever the umask; an \
                existing file other users can write stops the start, one they can read is \
                started with a warning. `postgres://` URLs are recognised but not supported \
                yet: the start is refused.",
    },
    SettingDoc {
        name: "redis_url",
        kind: "URL",
        default: None,
        accepted: "`redis://HOST:PORT/N`",
        about: "Reserved for sharing revocations and rate limits between instances. Not \
                supported in this version: setting it stops the start with a message saying so.",
    },
    SettingDoc {
        name: "access_token_lifetime",
        kind: "duration",
        default: Some("\"5m\""),
        accepted: "1s to 3650d",
        about: "How long an access token is valid after it is issued.",
    },
    SettingDoc {
        name: "refresh_token_lifetime",
        kind: "duration",
        default: Some("\"1d\""),
        accepted: "1s to 3650d",
        about: "How long a refresh token is valid after it is issued.",
    },
    SettingDoc {
        name: "rotate_refresh_tokens",
        kind: "boolean",
        default: Some("false"),
        accepted: "`true`, `false`",
        about: "A refresh also returns a new refresh token (of the same session).",
    },
    SettingDoc {
        name: "blacklist_after_rotation",
        kind: "boolean",
        default: Some("false"),
        accepted: "`true`, `false`",
        about: "On rotation, the refresh token that was used is blacklisted, so each refresh \
                token works once. Has no effect without `rotate_refresh_tokens`.",
    },
    SettingDoc {
        name: "reuse_detection",
        kind: "boolean",
        default: Some("true"),
        accepted: "`true`, `false`",
        about: "A blacklisted refresh token presented again ends its whole session: every token \
                descended from the same login is refused (a stolen token replayed after its \
                owner used it, or the reverse).",
    },
    SettingDoc {
        name: "algorithm",
        kind: "string",
        default: Some("\"HS256\""),
        accepted: "`HS256`, `HS384`, `HS512`, `RS256`, `RS384`, `RS512`, `PS256`, `PS384`, \
                   `PS512`, `ES256`, `ES384`, `EdDSA` (case-sensitive)",
        about: "The signing algorithm. Tokens signed with any other algorithm are refused. With \
                an asymmetric algorithm the public keys are published at \
                `/.well-known/jwks.json`, so other services verify without the secret.",
    },
    SettingDoc {
        name: "signing_key",
        kind: "string",
        default: None,
        accepted: "HS*: the secret (its UTF-8 bytes), at least as long as the hash output (32 \
                   bytes for HS256, 48 for HS384, 64 for HS512); other algorithms: the path of a \
                   PEM private key",
        about: "When unset, a key is generated on first start, stored in the database and kept \
                across restarts; `tessera keys rotate` replaces it. When set, this key signs, \
                and rotating means changing it (the CLI refuses to rotate). A secret that is \
                too short, or a PEM file that cannot be read or does not match the algorithm, \
                stops the start. `tessera config` masks a secret (and shows a path).",
    },
    SettingDoc {
        name: "issuer",
        kind: "string",
        default: None,
        accepted: "any string, usually a URL",
        about: "Sets `iss` in every token and requires it on verification.",
    },
    SettingDoc {
        name: "audience",
        kind: "string",
        default: None,
        accepted: "any string",
        about: "Sets `aud` in every token and requires it on verification.",
    },
    SettingDoc {
        name: "public_url",
        kind: "URL",
        default: None,
        accepted: "an absolute `http://` or `https://` URL, e.g. `https://auth.example.com`",
        about: "The address users and other services reach Tessera at. Discovery \
                (`/.well-known/openid-configuration`) and paging links are built from it: from \
                `issuer` when that is set, else from this, else from the address the server \
                is bound to; never from a request's `Host` header, which a client chooses. \
                Set it behind a proxy or when binding 0.0.0.0.",
    },
    SettingDoc {
        name: "leeway",
        kind: "duration",
        default: Some("\"0s\""),
        accepted: "0s to 5m",
        about: "Clock skew tolerated when checking `exp` and `nbf`.",
    },
    SettingDoc {
        name: "auth_header_types",
        kind: "list of strings",
        default: Some("[\"Bearer\"]"),
        accepted: "a non-empty list of schemes without spaces, e.g. `[\"Bearer\", \"JWT\"]`",
        about: "The schemes accepted in `Authorization: <scheme> <token>` (simplejwt's \
                `AUTH_HEADER_TYPES`). Another scheme counts as no credentials.",
    },
    SettingDoc {
        name: "user_id_claim",
        kind: "string",
        default: Some("\"user_id\""),
        accepted: "a claim name Tessera does not use itself: not `token_type`, `type`, `exp`, \
                   `iat`, `nbf`, `jti`, `sub`, `fid`, `ver`, `username`, `fresh`, `iss`, `aud`, \
                   `csrf`, `email` or `is_staff`",
        about: "The claim that carries the user id as a JSON integer (simplejwt's \
                `USER_ID_CLAIM`).",
    },
    SettingDoc {
        name: "extra_claims",
        kind: "list of strings",
        default: Some("[]"),
        accepted: "any of `email`, `is_staff`",
        about: "User fields copied into access tokens, so services can read them without \
                asking.",
    },
    SettingDoc {
        name: "token_locations",
        kind: "list of strings",
        default: Some("[\"headers\"]"),
        accepted: "a non-empty list of `headers`, `cookies`, `query_string`, `json`",
        about: "Where protected endpoints look for the access token, in this order: the \
                `Authorization` header, the `access_token_cookie` cookie (cookie mode, with \
                CSRF protection), the `access_token` query parameter, a top-level \
                `access_token` in a JSON body. A token elsewhere counts as no credentials.",
    },
    SettingDoc {
        name: "cookie_secure",
        kind: "boolean",
        default: Some("true"),
        accepted: "`true`, `false`",
        about: "The `Secure` attribute of cookie-mode cookies. Browsers send Secure cookies \
                over HTTPS (and to localhost) only; set `false` for plain HTTP during \
                development.",
    },
    SettingDoc {
        name: "cookie_samesite",
        kind: "string",
        default: Some("\"Lax\""),
        accepted: "`Lax`, `Strict`, `None` (case-sensitive)",
        about: "The `SameSite` attribute of cookie-mode cookies. Browsers require \
                `cookie_secure = true` with `None`.",
    },
    SettingDoc {
        name: "cors_allowed_origins",
        kind: "list of strings",
        default: Some("[]"),
        accepted: "exact origins: `http://` or `https://`, host, optional port, no path or \
                   trailing slash",
        about: "Origins of pages on other sites allowed to call the API from a browser, with \
                credentials. Other origins get no CORS headers.",
    },
    SettingDoc {
        name: "login_rate_limit",
        kind: "rate",
        default: Some("\"10/min\""),
        accepted: "`N/s`, `N/min`, `N/h` (N at least 1), or `off`",
        about: "Failed logins allowed per username and per client address in a sliding window; \
                past it, logins get 429 with `Retry-After` before any password check. An \
                attempt is counted before its password is checked, so a burst of simultaneous \
                attempts gets no more checks than the limit. `N/s` and `N/h` are counted over \
                one minute (`600/h` is `10/min`). A successful login clears the username's \
                earlier failures. Per-username counting lets anyone lock an account out for a \
                minute at a time; `off` turns throttling off.",
    },
    SettingDoc {
        name: "trusted_proxies",
        kind: "list of IP addresses",
        default: Some("[]"),
        accepted: "IPv4 or IPv6 addresses",
        about: "Peers whose `X-Forwarded-For` is believed for the client address (throttling, \
                logs). From any other peer the socket address counts.",
    },
    SettingDoc {
        name: "signup_enabled",
        kind: "boolean",
        default: Some("true"),
        accepted: "`true`, `false`",
        about: "Whether `POST /api/auth/signup` is open; `false` answers 403 (accounts then come \
                from `tessera createsuperuser`).",
    },
    SettingDoc {
        name: "password_min_length",
        kind: "integer",
        default: Some("8"),
        accepted: "1 to 4096",
        about: "The shortest password accepted at signup and on change. Passwords must also not \
                be entirely numeric and must score at least 3 of 4 with zxcvbn, given the \
                username and email (so common passwords and ones like the username fail).",
    },
    SettingDoc {
        name: "signup_rate_limit",
        kind: "rate",
        default: Some("\"10/min\""),
        accepted: "`N/s`, `N/min`, `N/h` (N at least 1), or `off`",
        about: "Signups allowed per client address; past it, signup answers 429 with \
                `Retry-After`.",
    },
    SettingDoc {
        name: "max_connections",
        kind: "integer",
        default: Some("1024"),
        accepted: "1 to 1000000",
        about: "Connections served at once; more wait in the listen backlog until one closes.",
    },
    SettingDoc {
        name: "request_timeout",
        kind: "duration",
        default: Some("\"30s\""),
        accepted: "at least 1ms",
        about: "How long a request body may take to arrive; a slower one gets 408.",
    },
];

/// The documentation of `name`, if it is a setting.
pub fn doc(name: &str) -> Option<&'static SettingDoc> {
    SETTINGS.iter().find(|s| s.name == name)
}

/// The comment lines of one setting in a TOML file.
fn toml_comment(out: &mut String, s: &SettingDoc) {
    for line in wrap(s.about, 76) {
        let _ = writeln!(out, "# {line}");
    }
    for line in wrap(&format!("Accepted: {}.", s.accepted.replace('`', "")), 76) {
        let _ = writeln!(out, "# {line}");
    }
    let _ = writeln!(out, "# Environment: {}.", s.env());
}

/// A TOML file holding every setting at its default, each explained.
/// Loading it gives the same settings as loading nothing.
pub fn defaults_toml() -> String {
    let mut out = String::from(
        "# Tessera's configuration, every setting at its default.\n\
         # Use it with `tessera --config FILE serve`; TESSERA_<SETTING> environment\n\
         # variables override the file. Durations: 30s, 5m, 1h, 1d. Lists in the\n\
         # environment are comma-separated, booleans true or false.\n",
    );
    for s in &SETTINGS {
        out.push('\n');
        toml_comment(&mut out, s);
        match s.default {
            Some(value) => {
                let _ = writeln!(out, "{} = {value}", s.name);
            }
            None => {
                let _ = writeln!(out, "# {} = (not set)", s.name);
            }
        }
    }
    out
}

/// The settings in effect, as a TOML file: secrets masked, unset ones
/// commented out. Loading it back gives the same settings (but for masked
/// secrets).
pub fn effective_toml(settings: &Settings) -> String {
    let mut out = String::from(
        "# Tessera's effective configuration (the file and TESSERA_* variables applied).\n",
    );
    for s in &SETTINGS {
        match settings.value(s.name) {
            Some(value) => {
                let _ = writeln!(out, "{} = {value}", s.name);
            }
            None => {
                let _ = writeln!(out, "# {} = (not set)", s.name);
            }
        }
    }
    out
}

/// docs/CONFIGURATION.md: every setting, and the commented default file.
pub fn reference_markdown() -> String {
    let mut out = String::from(
        "# Configuration\n\n\
         <!-- Generated by `tessera config --reference`; a test keeps this file equal to its \
         output. Edit crates/tessera-server/src/config/reference.rs, then run\n     \
         cargo run -q -- config --reference > docs/CONFIGURATION.md -->\n\n\
         Tessera reads its settings from a TOML file given with `--config FILE` (before or \
         after the subcommand; `TESSERA_CONFIG` names it too) and from environment variables \
         `TESSERA_<SETTING>` (the setting's name in upper case), which override the file. \
         With neither, every setting has its default and `tessera serve` runs on \
         `./tessera.db` at 127.0.0.1:8000 with a generated key.\n\n\
         - In the file, values have their TOML types: strings in quotes, booleans `true` / \
         `false`, integers, lists `[\"a\", \"b\"]`. In the environment, lists are \
         comma-separated (`TESSERA_TOKEN_LOCATIONS=headers,cookies`) and booleans are `true` \
         or `false`.\n\
         - Durations are written `30s`, `5m`, `1h`, `1d` (and combinations such as `1h 30m`).\n\
         - An empty string unsets an optional setting (`TESSERA_ISSUER=`).\n\
         - An unknown key in the file, an unknown `TESSERA_` variable, or a value a setting \
         does not accept stops the start with one line naming the setting (and, for fixed \
         choices, listing them), and a non-zero exit. `TESSERA_LOG` (the log filter, `info` \
         by default, e.g. `warn` or `tessera=debug`), `TESSERA_CONFIG` and the test suite's \
         `TESSERA_TEST_*` switches are not settings.\n\n\
         `tessera config` prints the configuration in effect (secrets masked); `tessera config \
         --defaults` prints the file at the end of this page.\n\n\
         ## Every setting\n\n\
         | setting | environment variable | type | default |\n\
         |---|---|---|---|\n",
    );
    for s in &SETTINGS {
        let _ = writeln!(
            out,
            "| [`{name}`](#{name}) | `{env}` | {kind} | {default} |",
            name = s.name,
            env = s.env(),
            kind = s.kind,
            default = s
                .default
                .map(|d| format!("`{d}`"))
                .unwrap_or_else(|| "not set".into()),
        );
    }
    for s in &SETTINGS {
        let _ = write!(
            out,
            "\n### {name}\n\n{about}\n\n- Type: {kind}. Accepted: {accepted}.\n- Default: {default}.\n- Environment: `{env}`.\n",
            name = s.name,
            about = s.about,
            kind = s.kind,
            accepted = s.accepted,
            default = s
                .default
                .map(|d| format!("`{d}`"))
                .unwrap_or_else(|| "not set".into()),
            env = s.env(),
        );
    }
    let _ = write!(
        out,
        "\n## The default file\n\nEvery setting at its default, as `tessera config --defaults` \
         prints it:\n\n```toml\n{}```\n",
        defaults_toml()
    );
    out
}

/// Splits `text` into lines of at most `width` characters at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests;
