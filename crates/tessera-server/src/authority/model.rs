//! What the domain hands its callers and takes from them: users as the
//! server sees them, tokens issued, how a session began, a new account.

use super::user_claims::{AppMetadata, Roles};
use crate::config::Settings;
use std::net::IpAddr;
use tessera_core::claims::Subject;
use tessera_core::ids::UserId;
use tessera_core::revocation::UserStanding;
use tessera_core::token::IssuedToken;
use tessera_store::UserRecord;

/// A user as the rest of the server sees it: everything but the password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Id.
    pub id: UserId,
    /// Normalised username.
    pub username: String,
    /// Email, `""` when none.
    pub email: String,
    /// Staff flag.
    pub is_staff: bool,
    /// Superuser flag.
    pub is_superuser: bool,
    /// Active flag.
    pub is_active: bool,
    /// Current token version.
    pub token_version: i64,
    /// Unix seconds.
    pub date_joined: i64,
    /// Unix seconds.
    pub last_login: Option<i64>,
    /// The row's revision: higher is newer.
    pub revision: i64,
    /// The user followed a link mailed to `email`.
    pub email_verified: bool,
    /// The user's roles.
    pub roles: Roles,
    /// What staff keep about the user.
    pub app_metadata: AppMetadata,
    /// Raised by each change of roles or metadata.
    pub claims_version: i64,
}

impl From<UserRecord> for User {
    fn from(r: UserRecord) -> Self {
        Self {
            id: UserId::new(r.id),
            username: r.username,
            email: r.email,
            is_staff: r.is_staff,
            is_superuser: r.is_superuser,
            is_active: r.is_active,
            token_version: r.token_version,
            date_joined: r.date_joined,
            last_login: r.last_login,
            revision: r.revision,
            email_verified: r.email_verified,
            roles: Roles::from_stored(&r.roles),
            app_metadata: AppMetadata::from_stored(&r.app_metadata),
            claims_version: r.claims_version,
        }
    }
}

impl User {
    pub(super) fn standing(&self) -> UserStanding {
        UserStanding {
            token_version: self.token_version,
            is_active: self.is_active,
            claims_version: self.claims_version,
        }
    }

    pub(super) fn subject(&self) -> Subject {
        Subject {
            user_id: self.id,
            username: self.username.clone(),
            email: self.email.clone(),
            is_staff: self.is_staff,
            is_superuser: self.is_superuser,
            token_version: self.token_version,
            roles: self.roles.names().to_vec(),
            app_metadata: self.app_metadata.as_map().clone(),
            claims_version: self.claims_version,
        }
    }
}

/// How tokens travel to the client: in the response body (for an
/// `Authorization` header), or in cookies (browsers), which adds CSRF values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// In the body; the client sends them back in a header.
    Header,
    /// In HttpOnly cookies, with CSRF values for the double-submit check.
    Cookie,
}

impl Transport {
    /// Its name where a waiting login keeps it: `header` or `cookie`.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Header => "header",
            Transport::Cookie => "cookie",
        }
    }

    /// The transport named `name`.
    pub fn named(name: &str) -> Option<Transport> {
        [Transport::Header, Transport::Cookie]
            .into_iter()
            .find(|t| t.name() == name)
    }

    /// Cookies when the client asks for them and cookies are a configured
    /// token location; the response body otherwise.
    pub fn chosen(cookies_requested: bool, settings: &Settings) -> Transport {
        if cookies_requested
            && settings
                .token_locations
                .contains(&crate::config::TokenLocation::Cookies)
        {
            Transport::Cookie
        } else {
            Transport::Header
        }
    }
}

/// An access and a refresh token from one login.
#[derive(Debug, Clone)]
pub struct TokenPair {
    /// The access token.
    pub access: IssuedToken,
    /// The refresh token.
    pub refresh: IssuedToken,
}

/// The result of a refresh: a new access token, and a new refresh token when rotating.
#[derive(Debug, Clone)]
pub struct Refreshed {
    /// The new access token.
    pub access: IssuedToken,
    /// The new refresh token, when rotation is on.
    pub refresh: Option<IssuedToken>,
}

/// How a session began (`method` of a session record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginMethod {
    /// A password login on simplejwt's route or the page.
    Password,
    /// The OAuth2 password grant.
    OAuth,
    /// Flask-JWT-Extended's `/login`.
    FlaskJwtExtended,
    /// FastAPI's `/token`.
    Fastapi,
    /// A passwordless login with a passkey.
    Passkey,
}

impl LoginMethod {
    /// Every method.
    pub const ALL: [LoginMethod; 5] = [
        LoginMethod::Password,
        LoginMethod::OAuth,
        LoginMethod::FlaskJwtExtended,
        LoginMethod::Fastapi,
        LoginMethod::Passkey,
    ];

    /// The method whose name is `name`.
    pub fn named(name: &str) -> Option<LoginMethod> {
        LoginMethod::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Its name in session records.
    pub fn name(self) -> &'static str {
        match self {
            LoginMethod::Password => "password",
            LoginMethod::OAuth => "oauth",
            LoginMethod::FlaskJwtExtended => "flask_jwt_extended",
            LoginMethod::Fastapi => "fastapi",
            LoginMethod::Passkey => "passkey",
        }
    }
}

/// Where and how a session begins: what its user will see of it.
#[derive(Debug, Clone)]
pub struct SessionOrigin {
    /// The client address (section 5's trusted-proxy rule).
    pub ip: IpAddr,
    /// The User-Agent, at most [`SessionOrigin::USER_AGENT_CHARS`] characters.
    pub user_agent: String,
    /// The route it began on.
    pub method: LoginMethod,
}

impl SessionOrigin {
    /// The most of a User-Agent kept.
    pub const USER_AGENT_CHARS: usize = 256;

    /// An origin, the User-Agent cut to its first 256 characters.
    pub fn new(ip: IpAddr, user_agent: &str, method: LoginMethod) -> Self {
        Self {
            ip,
            user_agent: user_agent.chars().take(Self::USER_AGENT_CHARS).collect(),
            method,
        }
    }
}

/// What a new account needs.
#[derive(Debug, Clone, Copy)]
pub struct NewAccount<'a> {
    /// Username as typed (normalised here).
    pub username: &'a str,
    /// Password in clear; hashed here.
    pub password: &'a str,
    /// Email, `""` for none.
    pub email: &'a str,
    /// Staff and superuser (the `createsuperuser` command).
    pub superuser: bool,
    /// The client's address, for the signup rate limit; `None` from the CLI.
    pub client: Option<IpAddr>,
}

/// The client a connection or a request counts as, for limits per client:
/// its address, or for IPv6 its /64 (one host is routinely given a whole
/// /64, so counting its addresses apart would give it 2^64 shares). An
/// IPv4 address mapped into IPv6 is that IPv4 address.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        },
        v4 => v4,
    }
}

/// What an administrator changes about a user; `None` leaves a field.
#[derive(Debug, Clone, Default)]
pub struct UserChange {
    /// Active flag.
    pub is_active: Option<bool>,
    /// Staff flag.
    pub is_staff: Option<bool>,
    /// Email address (`""`: none).
    pub email: Option<String>,
    /// Whether the address counts as verified.
    pub email_verified: Option<bool>,
    /// What staff keep about the user, replacing what was there.
    pub app_metadata: Option<AppMetadata>,
}

/// Users a page when the request names no page size.
pub const DEFAULT_PAGE_SIZE: i64 = 20;
/// The largest page size served.
pub const MAX_PAGE_SIZE: i64 = 100;

/// One page of users.
#[derive(Debug, Clone)]
pub struct UsersPage {
    /// Users in all.
    pub count: i64,
    /// Users a page.
    pub page_size: i64,
    /// The next page's number, if there is one.
    pub next: Option<i64>,
    /// The previous page's number, if there is one.
    pub previous: Option<i64>,
    /// This page's users, by id.
    pub users: Vec<User>,
}
