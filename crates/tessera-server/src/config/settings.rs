//! Every setting, once: its doc comment (what it does, for people), its
//! type and default, the words for what it accepts, how it is read and how it
//! is shown. `tessera config --reference` (docs/CONFIGURATION.md), `tessera
//! config --defaults`, the loader and `tessera config` all come from here.

use super::define::settings;
use super::parse as de;
use super::reference::SettingDoc;
use super::render as show;
use super::{CompatSet, EmailVerification, LogFormat, MfaPolicy, Rate, SameSite, TokenLocation};
use std::net::IpAddr;
use std::time::Duration;
use tessera_core::Algorithm;
use tessera_core::claims::{ClaimNames, ExtraClaim, SubjectClaim};

settings! {
    /// The address the server listens on. The line `Tessera listening on HOST:PORT` on
    /// standard output gives the address actually bound.
    bind: String = "127.0.0.1:8000".into(),
        kind: "address",
        accepted: "`HOST:PORT`; port 0 picks a free port",
        parse: "de::bind", show: show::string;

    /// Where users, keys and revocations are kept. The SQLite file is created and migrated
    /// on first start; its directory must exist and be writable. The file (and its -wal and
    /// -shm) is readable by its owner only, whatever the umask; an existing file other
    /// users can write stops the start, one they can read is started with a warning.
    /// With `postgres://USER[:PASSWORD]@HOST:PORT/DATABASE` the database must exist; its
    /// tables are created and migrated at start, by one instance at a time. TLS to
    /// PostgreSQL (which managed PostgreSQL requires) is chosen by the URL's `sslmode`, as
    /// in libpq and psql: `?sslmode=verify-full&sslrootcert=/PATH/TO/CA.pem` encrypts and
    /// checks that the server's certificate is signed by that CA (the bundle the provider
    /// publishes) and names the URL's host; `sslrootcert=system` trusts the Mozilla roots
    /// built into Tessera instead; `sslmode=verify-ca` is the same as `verify-full` (it checks
    /// the host too, unlike libpq's: a defect of sqlx 0.8); `sslmode=require` encrypts
    /// without checking whom it talks to (with `sslrootcert` it checks the certificate, as
    /// libpq does); the default, `prefer`, encrypts when the server offers
    /// TLS and checks nothing; `disable` never encrypts. `sslcert` and `sslkey` give a
    /// client certificate. `channel_binding=require` is refused (not implemented). A
    /// certificate that is not trusted, or a server that takes only TLS connections from a
    /// URL without it, stops the start with one line naming the parameter to change.
    database_url: String = "sqlite://tessera.db".into(),
        kind: "URL",
        accepted: "`sqlite://PATH` (relative to the working directory), `sqlite:///ABSOLUTE/PATH`, \
                   `postgres://USER@HOST:PORT/DATABASE`, \
                   `postgres://USER@HOST:PORT/DATABASE?sslmode=verify-full&sslrootcert=CA.pem`",
        parse: "de::database_url", show: show::url;

    /// Connections to PostgreSQL this instance keeps at most (SQLite ignores it).
    database_max_connections: usize = 10,
        kind: "integer",
        accepted: "1 to 1000",
        parse: "de::database_max_connections", show: show::integer;

    /// Redis, shared by the instances of one deployment: login throttling, the signup limit
    /// and `user_rate_limit` count across all of them. While Redis cannot be reached each
    /// instance counts alone, says so in its log and in `/readyz`'s body, and keeps
    /// serving; revocations travel through the database either way.
    redis_url: Option<String> = None,
        kind: "URL",
        accepted: "`redis://HOST:PORT/N` (`redis://:PASSWORD@HOST:PORT/N` with a password)",
        parse: "de::redis_url", show: show::optional_url;

    /// The prefix of every key Tessera writes in Redis, so that deployments can share one.
    redis_prefix: String = "tessera:".into(),
        kind: "string",
        accepted: "any string",
        parse: "de::string", show: show::string;

    /// How long an access token is valid after it is issued.
    access_token_lifetime: Duration = Duration::from_secs(300),
        kind: "duration",
        accepted: "1s to 3650d",
        parse: "de::lifetime", show: show::duration;

    /// How long a refresh token is valid after it is issued.
    refresh_token_lifetime: Duration = Duration::from_secs(86_400),
        kind: "duration",
        accepted: "1s to 3650d",
        parse: "de::lifetime", show: show::duration;

    /// A refresh also returns a new refresh token (of the same session).
    rotate_refresh_tokens: bool = false,
        kind: "boolean",
        accepted: "`true`, `false`",
        parse: "de::boolean", show: show::boolean;

    /// On rotation, the refresh token that was used is blacklisted, so each refresh token
    /// works once. Has no effect without `rotate_refresh_tokens`.
    blacklist_after_rotation: bool = false,
        kind: "boolean",
        accepted: "`true`, `false`",
        parse: "de::boolean", show: show::boolean;

    /// A blacklisted refresh token presented again ends its whole session: every token
    /// descended from the same login is refused (a stolen token replayed after its owner
    /// used it, or the reverse).
    reuse_detection: bool = true,
        kind: "boolean",
        accepted: "`true`, `false`",
        parse: "de::boolean", show: show::boolean;

    /// With `blacklist_after_rotation`: how long after a refresh token is rotated it may
    /// be presented again without counting as a reuse. Within it the same token is answered
    /// 200 with the refresh token it was rotated into (the same one each time, and the newest
    /// of the session should that one have been rotated too) and a new access token, so
    /// that several tabs, or a client that refreshes on every 401, refreshing at once keep
    /// their session. After it, `reuse_detection` applies. The successor is kept in the
    /// database for the period, sealed under a key derived from the rotated token: only
    /// someone presenting that token can read it. `0s` turns the grace period off: of
    /// several refreshes of one token exactly one succeeds.
    refresh_grace_period: Duration = Duration::from_secs(10),
        kind: "duration",
        accepted: "0s to 5m",
        parse: "de::grace_period", show: show::duration;

    /// Blacklisting a refresh token (`POST /api/token/blacklist/`, or revoking it at
    /// `POST /oauth/revoke`) ends its session, as logout does: the access tokens of the
    /// same login are refused too, within a second on every instance, so the logout of
    /// simplejwt's tutorial logs out. `false`: only that refresh token is refused, and the
    /// access tokens of the login work until they expire.
    blacklist_ends_session: bool = true,
        kind: "boolean",
        accepted: "`true`, `false`",
        parse: "de::boolean", show: show::boolean;

    /// How long an access token of a service client (the `client_credentials` grant) is
    /// valid after it is issued. Removing the client refuses its tokens at once.
    client_token_lifetime: Duration = Duration::from_secs(3600),
        kind: "duration",
        accepted: "1s to 3650d",
        parse: "de::lifetime", show: show::duration;

    /// `/oauth/introspect` answers only a service client holding the `introspect` scope,
    /// authenticated by HTTP Basic with its id and secret or by `Authorization: Bearer` with
    /// one of its tokens; anyone else gets a 401 `invalid_client`. `false`: anyone may ask.
    introspection_requires_client: bool = false,
        kind: "boolean",
        accepted: "`true`, `false`",
        parse: "de::boolean", show: show::boolean;

    /// The signing algorithm. Tokens signed with any other algorithm are refused. With an
    /// asymmetric algorithm the public keys are published at `/.well-known/jwks.json`, so
    /// other services verify without the secret. Once an asymmetric key signs, put in
    /// service by a start with an asymmetric algorithm after an HMAC one or by `tessera keys
    /// rotate` (and published `key_publish_lead` before it signs), every HMAC key retires at
    /// that moment on every instance, whatever its own settings say: every HMAC token is
    /// refused. A start puts a key in service only for that switch (or on an empty
    /// database); an instance whose setting differs from the keys in service (the one
    /// signing, and one published to sign next) otherwise refuses to start, so that one left
    /// with old settings cannot switch the deployment back (`tessera keys rotate` switches it
    /// on purpose). Other commands use the keys in service whatever their own settings say.
    algorithm: Algorithm = Algorithm::HS256,
        kind: "string",
        accepted: "`HS256`, `HS384`, `HS512`, `RS256`, `RS384`, `RS512`, `PS256`, `PS384`, \
                   `PS512`, `ES256`, `ES384`, `EdDSA` (case-sensitive)",
        parse: "de::algorithm", show: show::algorithm;

    /// When unset, a key is generated on first start, stored in the database and kept
    /// across restarts; `tessera keys rotate` replaces it. When set, this key signs, and
    /// rotating means changing it (the CLI refuses to rotate). A secret that is too short,
    /// or a PEM file that cannot be read or does not match the algorithm, stops the start.
    /// `tessera config` masks a secret (and shows a path).
    signing_key: Option<String> = None,
        kind: "string",
        accepted: "HS*: the secret (its UTF-8 bytes), at least as long as the hash output (32 \
                   bytes for HS256, 48 for HS384, 64 for HS512); other algorithms: the path of a PEM \
                   private key",
        parse: "de::optional_string", show: show::signing_key;

    /// How long `tessera keys rotate` publishes a new key before it signs with it: the key
    /// is in `/.well-known/jwks.json` (and verifies) at once, and every instance starts
    /// signing with it when this lead has passed on the database's clock, all at the same
    /// moment, while the old key signs on until then. Verifiers that keep the JWKS fetch it
    /// again only now and then: PyJWT's `PyJWKClient` (and simplejwt's `JWK_URL`) keeps it
    /// 5 minutes and fetches it for an unknown `kid` at most once per 30 s, and HTTP caches
    /// keep it up to its `max-age` (300 s); a key that signed at once would have its tokens
    /// refused meanwhile. `0s` signs at once, as `tessera keys rotate --now` does whatever
    /// this says. An HMAC key is never published and signs at once.
    key_publish_lead: Duration = Duration::from_secs(300),
        kind: "duration",
        accepted: "0s to 7d",
        parse: "de::publish_lead", show: show::duration;

    /// Sets `iss` in every token and requires it on verification.
    issuer: Option<String> = None,
        kind: "string",
        accepted: "any string, usually a URL",
        parse: "de::optional_string", show: show::optional_string;

    /// Sets `aud` in every token and requires it on verification.
    audience: Option<String> = None,
        kind: "string",
        accepted: "any string",
        parse: "de::optional_string", show: show::optional_string;

    /// The address users and other services reach Tessera at. Discovery
    /// (`/.well-known/openid-configuration`) and paging links are built from it: from
    /// `issuer` when that is set, else from this, else from the address the server is bound
    /// to; never from a request's `Host` header, which a client chooses. Set it behind a
    /// proxy or when binding 0.0.0.0.
    public_url: Option<String> = None,
        kind: "URL",
        accepted: "an absolute `http://` or `https://` URL, e.g. `https://auth.example.com`",
        parse: "de::public_url", show: show::optional_string;

    /// The mail server that password-reset and verification mails go through. Links in
    /// them are built from `public_url`; without both settings the reset and verification
    /// routes answer 503 `email_unavailable`. `smtp://HOST:PORT` upgrades the connection
    /// with STARTTLS whenever the server offers it; `smtps://HOST:PORT` speaks TLS from the
    /// start. A user and password in the URL log in (`tessera config` masks the password).
    /// Mail is written to an outbox with the request and sent in the background, retried
    /// with backoff while its link is valid.
    smtp_url: Option<String> = None,
        kind: "URL",
        accepted: "`smtp://[USER:PASSWORD@]HOST[:PORT]` (port 587 by default) or \
                   `smtps://[USER:PASSWORD@]HOST[:PORT]` (465)",
        parse: "de::smtp_url", show: show::optional_url;

    /// How long the mail server may take to answer each step of a delivery; a try that
    /// takes longer fails and is retried later. Requests never wait for it.
    smtp_timeout: Duration = Duration::from_secs(10),
        kind: "duration",
        accepted: "at least 1ms",
        parse: "de::positive_duration", show: show::duration;

    /// The sender of Tessera's mail.
    mail_from: String = "Tessera <noreply@localhost>".into(),
        kind: "mailbox",
        accepted: "an address, or `Name <address>`",
        parse: "de::mail_from", show: show::string;

    /// Whether users prove their address. `off`: never asked. `optional`: signup with an
    /// email sends a verification link, and `/api/auth/me` tells whether it was followed.
    /// `required`: as `optional`, and a login (on every login route) of a user whose
    /// address is not verified is refused with 401 `email_not_verified`, after the password
    /// check, and mails a new link (the older ones keep working); staff and superusers are
    /// never refused, with or without an address. Following a reset link verifies the
    /// address too.
    email_verification: EmailVerification = EmailVerification::Off,
        kind: "string",
        accepted: "`off`, `optional`, `required`",
        parse: "de::email_verification", show: show::email_verification;

    /// How long a password-reset or verification link works after it is mailed; a mail
    /// that could not be delivered by then is given up on.
    reset_token_lifetime: Duration = Duration::from_secs(3600),
        kind: "duration",
        accepted: "1s to 7d",
        parse: "de::link_lifetime", show: show::duration;

    /// A directory holding `reset.txt` and `verify.txt`, replacing the built-in texts of
    /// the two mails. Each file is UTF-8: a first line `Subject: ...`, a blank line, then
    /// the body, where `{link}`, `{username}`, `{expires_in}` (e.g. `1h`) and `{expires_at}`
    /// (UTC, RFC 3339) are replaced; docs/EMAIL.md gives the built-in texts to start from.
    /// A file that is missing or malformed stops the start.
    mail_templates: Option<String> = None,
        kind: "path",
        accepted: "a directory",
        parse: "de::optional_string", show: show::optional_string;

    /// The issuer an authenticator app shows beside a user's TOTP factor: the `issuer` of
    /// the `otpauth://` URI (and its QR code) that enrolment answers, with the username as
    /// the account. Changing it later changes nothing in the apps that enrolled.
    totp_issuer: String = "Tessera".into(),
        kind: "string",
        accepted: "1 to 100 characters, without `:` or control characters",
        parse: "de::totp_issuer", show: show::string;

    /// Whose logins need a second factor. `optional`: users choose (a user with a
    /// confirmed factor is asked for it on every login route, one without logs in with
    /// the password). `required_for_staff`: as `optional`, but a staff user or superuser
    /// without a factor is not logged in: a right password is answered on every login
    /// route with 401 `mfa_enrolment_required` and an `enrolment_token` that allows only
    /// the TOTP enrolment routes (for 10 minutes); once enrolled, they log in with the
    /// password and a code. `required`: as `required_for_staff`, for every user. Sessions
    /// begun before the setting changed go on until they end (revoke them to force the
    /// question at once).
    mfa: MfaPolicy = MfaPolicy::Optional,
        kind: "string",
        accepted: "`optional`, `required_for_staff`, `required`",
        parse: "de::mfa", show: show::mfa;

    /// Whether a discoverable passkey alone logs a user in, at
    /// `/api/auth/passkeys/login/start` and `/finish` (and on the page's "Log in with a
    /// passkey"). Off, those routes answer 403 `passkey_login_disabled`; passkeys still work
    /// as a second factor. Passkeys need `public_url`: its host is their relying party id.
    passkey_login: bool = false,
        kind: "boolean",
        accepted: "`true`, `false`",
        parse: "de::boolean", show: show::boolean;

    /// Clock skew tolerated when checking `exp` and `nbf`.
    leeway: Duration = Duration::ZERO,
        kind: "duration",
        accepted: "0s to 5m",
        parse: "de::leeway", show: show::duration;

    /// The schemes accepted in `Authorization: <scheme> <token>` (simplejwt's
    /// `AUTH_HEADER_TYPES`). Another scheme counts as no credentials.
    auth_header_types: Vec<String> = vec!["Bearer".into()],
        kind: "list of strings",
        accepted: "a non-empty list of schemes without spaces, e.g. `[\"Bearer\", \"JWT\"]`",
        parse: "de::auth_header_types", show: show::strings;

    /// The claim that carries the user id as a JSON integer (simplejwt's `USER_ID_CLAIM`).
    user_id_claim: String = "user_id".into(),
        kind: "string",
        accepted: "a claim name Tessera does not use itself: not `token_type`, `type`, `exp`, \
                   `iat`, `nbf`, `jti`, `sub`, `fid`, `ver`, `username`, `fresh`, `iss`, `aud`, `csrf`, \
                   `email`, `is_staff`, `is_superuser`, `client_id`, `scope`, `roles`, \
                   `app_metadata`, `cver` or `amr`",
        parse: "de::user_id_claim", show: show::string;

    /// User fields copied into access tokens, so services can read them without asking.
    /// `is_superuser` is Django's flag, kept apart from `is_staff` (an imported superuser
    /// is both). `roles` is a JSON array of the user's role names (Django's groups when
    /// imported; set with `PUT /api/admin/users/{id}/roles` or `tessera users roles`),
    /// `app_metadata` the JSON object staff set with `PATCH /api/admin/users/{id}`. When
    /// either changes, the user's access tokens issued before answer `expired`, at Tessera
    /// and at services following the revocation feed, so clients refresh and get the new
    /// claims; nobody is logged out.
    extra_claims: Vec<ExtraClaim> = Vec::new(),
        kind: "list of strings",
        accepted: "any of `email`, `is_staff`, `is_superuser`, `roles`, `app_metadata`",
        parse: "de::extra_claims", show: show::extra_claims;

    /// Other names for the user claims in access tokens, for services written against
    /// tokens that name them differently: `{ username = "user_name", is_staff = "is_admin" }`
    /// writes `user_name` and `is_admin` instead of `username` and `is_staff` (the
    /// simplejwt tutorial's names). Tessera reads its own tokens under the same names
    /// (the username backs `sub` with `subject = "username"`); give tessera-verify and the
    /// Python package the same table. A claim keeps its name unless renamed; `fresh` and
    /// the registered claims cannot be renamed. Refused at start: a name that is empty,
    /// given to two claims, the name of a claim Tessera writes (`exp`, `sub`, `email`, ...)
    /// or `user_id_claim`, and a rename of a claim (`email`, `roles`, ...) that
    /// `extra_claims` does not put in tokens.
    claim_names: ClaimNames = ClaimNames::default(),
        kind: "table",
        accepted: "keys among `username`, `email`, `is_staff`, `is_superuser`, `roles`, \
                   `app_metadata`, each a claim name; in the environment \
                   `username=user_name,is_staff=is_admin`",
        parse: "de::claim_names", show: show::claim_names;

    /// What the `sub` claim carries: `id`, the user id as a string (`"42"`), or `username`,
    /// for services that look the user up by `sub` (as the FastAPI tutorial's do). The user
    /// id is in the `user_id_claim` claim either way.
    subject: SubjectClaim = SubjectClaim::Id,
        kind: "string",
        accepted: "`id` or `username`",
        parse: "de::subject", show: show::subject;

    /// Extra route sets that answer another stack's clients in that stack's own bodies:
    /// `flask_jwt_extended` adds `POST /login`, `POST /refresh` (refresh token in
    /// `Authorization: Bearer`) and `POST /logout` (ends the session of the token presented),
    /// `fastapi` adds `POST /token` (an `OAuth2PasswordRequestForm`).
    /// A route of a set not listed answers 404.
    compat: Vec<CompatSet> = Vec::new(),
        kind: "list of strings",
        accepted: "any of `flask_jwt_extended`, `fastapi`",
        parse: "de::compat", show: show::compat;

    /// Where protected endpoints look for the access token, in this order: the
    /// `Authorization` header, the `access_token_cookie` cookie (cookie mode, with CSRF
    /// protection), the `access_token` query parameter, a top-level `access_token` in a
    /// JSON body. A token elsewhere counts as no credentials.
    token_locations: Vec<TokenLocation> = vec![TokenLocation::Headers],
        kind: "list of strings",
        accepted: "a non-empty list of `headers`, `cookies`, `query_string`, `json`",
        parse: "de::token_locations", show: show::token_locations;

    /// The `Secure` attribute of cookie-mode cookies. Browsers send Secure cookies over
    /// HTTPS (and to localhost) only; set `false` for plain HTTP during development.
    cookie_secure: bool = true,
        kind: "boolean",
        accepted: "`true`, `false`",
        parse: "de::boolean", show: show::boolean;

    /// The `SameSite` attribute of cookie-mode cookies. Browsers require `cookie_secure =
    /// true` with `None`.
    cookie_samesite: SameSite = SameSite::Lax,
        kind: "string",
        accepted: "`Lax`, `Strict`, `None` (case-sensitive)",
        parse: "de::samesite", show: show::samesite;

    /// Origins of pages on other sites allowed to call the API from a browser, with
    /// credentials. Other origins get no CORS headers.
    cors_allowed_origins: Vec<String> = Vec::new(),
        kind: "list of strings",
        accepted: "exact origins: `http://` or `https://`, host, optional port, no path or \
                   trailing slash",
        parse: "de::origins", show: show::strings;

    /// Failed logins allowed per username and per client address in a sliding window; past
    /// it, logins get 429 with `Retry-After` before any password check. An attempt is
    /// counted before its password is checked, so a burst of simultaneous attempts gets no
    /// more checks than the limit. The window is the limit's own period: `3/h` allows three
    /// failures in any hour, `5/s` five in any second. A successful login clears the
    /// username's earlier failures. Per-username counting lets anyone lock an account out
    /// for one period at a time; `off` turns throttling off.
    login_rate_limit: Option<Rate> = Some(Rate::per_minute(10)),
        kind: "rate",
        accepted: "`N/s`, `N/min`, `N/h` (N at least 1), or `off`",
        parse: "de::rate", show: show::rate;

    /// Peers whose `X-Forwarded-For` is believed for the client address (throttling, logs).
    /// From any other peer the socket address counts.
    trusted_proxies: Vec<IpAddr> = Vec::new(),
        kind: "list of IP addresses",
        accepted: "IPv4 or IPv6 addresses",
        parse: "de::addresses", show: show::addresses;

    /// Whether `POST /api/auth/signup` is open; `false` answers 403 (accounts then come
    /// from `tessera createsuperuser`).
    signup_enabled: bool = true,
        kind: "boolean",
        accepted: "`true`, `false`",
        parse: "de::boolean", show: show::boolean;

    /// The shortest password accepted at signup and on change. Passwords must also not be
    /// entirely numeric and must score at least 3 of 4 with zxcvbn, given the username and
    /// email (so common passwords and ones like the username fail).
    password_min_length: usize = 8,
        kind: "integer",
        accepted: "1 to 4096",
        parse: "de::password_min_length", show: show::integer;

    /// Logins and refreshes allowed per user, together: past it, 429 with `Retry-After`. It
    /// bounds how fast one account can mint refresh tokens (each a row kept until it
    /// expires, with rotation). `off` turns it off.
    user_rate_limit: Option<Rate> = Some(Rate::per_minute(60)),
        kind: "rate",
        accepted: "`N/s`, `N/min`, `N/h` (N at least 1), or `off`",
        parse: "de::rate", show: show::rate;

    /// Sessions (logins, each with the refreshes made from it) one user may have at once.
    /// A login past it ends the user's oldest sessions, as a logout would: their tokens
    /// are refused.
    max_sessions_per_user: usize = 100,
        kind: "integer",
        accepted: "1 to 100000",
        parse: "de::max_sessions", show: show::integer;

    /// How long audit events are kept (`GET /api/admin/audit`); older ones are deleted by
    /// the hourly upkeep.
    audit_retention: Duration = Duration::from_secs(90 * 86_400),
        kind: "duration",
        accepted: "at least 1s, e.g. `90d`",
        parse: "de::positive_duration", show: show::duration;

    /// Signups allowed per client address; past it, signup answers 429 with `Retry-After`.
    signup_rate_limit: Option<Rate> = Some(Rate::per_minute(10)),
        kind: "rate",
        accepted: "`N/s`, `N/min`, `N/h` (N at least 1), or `off`",
        parse: "de::rate", show: show::rate;

    /// Connections served at once. When every slot is taken, a new connection is let in by
    /// closing the one that has waited longest without asking anything (kept alive between
    /// requests first, then one that has sent nothing since it opened); only when every
    /// connection is answering a request does a new one wait in the listen backlog.
    max_connections: usize = 1024,
        kind: "integer",
        accepted: "1 to 1000000",
        parse: "de::max_connections", show: show::integer;

    /// Connections one client address may hold open at once (an IPv6 client counts as its
    /// /64); more from it are closed on arrival, so that no one client can take the server's
    /// capacity. Addresses in `trusted_proxies` speak for many clients and have no such
    /// limit.
    max_connections_per_client: usize = 256,
        kind: "integer",
        accepted: "1 to 1000000",
        parse: "de::max_connections", show: show::integer;

    /// Revocation-feed streams one service client may hold open at once (its followers:
    /// one per process of a service); more are refused with 429 until one closes.
    feed_streams_per_client: usize = 1000,
        kind: "integer",
        accepted: "1 to 1000000",
        parse: "de::max_connections", show: show::integer;

    /// How long a request body may take to arrive; a slower one gets 408.
    request_timeout: Duration = Duration::from_secs(30),
        kind: "duration",
        accepted: "at least 1ms",
        parse: "de::positive_duration", show: show::duration;

    /// How long a connection may take to send a whole request head: from when it opens,
    /// and from the first byte of each later request. A connection that sends nothing, or
    /// half a head, is closed after it.
    header_read_timeout: Duration = Duration::from_secs(10),
        kind: "duration",
        accepted: "at least 1ms",
        parse: "de::positive_duration", show: show::duration;

    /// How log lines are written to stderr: `text`, one readable line per event, or
    /// `json`, one JSON object per line for log shippers. Which events are logged is
    /// `TESSERA_LOG`'s (an `EnvFilter` directive, `info` by default). Lines are written by
    /// a thread of their own; if stderr cannot keep up, lines are dropped (and counted in
    /// `tessera_log_lines_dropped_total`) rather than slowing requests.
    log_format: LogFormat = LogFormat::Text,
        kind: "string",
        accepted: "`text`, `json`",
        parse: "de::log_format", show: show::log_format;

    /// How long a kept-alive connection may sit idle between requests before it is closed.
    idle_timeout: Duration = Duration::from_secs(60),
        kind: "duration",
        accepted: "at least 1ms",
        parse: "de::positive_duration", show: show::duration;
}
