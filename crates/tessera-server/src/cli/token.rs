//! `tessera token issue` and `tessera token decode`.

use super::*;
use base64_free::decode_segment;

/// `tessera token issue`: prints an access token for `username`, whose
/// lifetime is `lifetime` (a duration as typed) or `access_token_lifetime`;
/// the authority bounds it and logs the issue.
pub(super) async fn issue(
    settings: Settings,
    username: &str,
    lifetime: Option<&str>,
) -> Result<(), String> {
    let seconds = match lifetime {
        None => None,
        Some(text) => match humantime::parse_duration(text) {
            // Past i64 it is past any bound: the authority refuses it.
            Ok(d) if d.as_secs() >= 1 => Some(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
            _ => {
                return Err(format!(
                    "--lifetime: expected a duration such as 10m, got `{text}`"
                ));
            }
        },
    };
    let authority = server::open_authority(settings)
        .await
        .map_err(|e| e.to_string())?;
    if authority
        .keys()
        .ring()
        .signing_key(authority.now())
        .is_none()
    {
        return Err(
            "no signing key in service yet: `tessera serve` puts one in service \
                    when it starts, or run `tessera keys rotate`"
                .into(),
        );
    }
    let token = authority
        .tokens()
        .issue_access_token(username, seconds)
        .await
        .map_err(|e| match e {
            AuthError::NoActiveAccount => format!("no active user `{username}`"),
            AuthError::Fields(errors) if errors.contains_key("lifetime") => format!(
                "--lifetime: at most {}d, got `{}`",
                crate::authority::MAX_ISSUED_LIFETIME / 86_400,
                lifetime.unwrap_or_default()
            ),
            other => other.to_string(),
        })?;
    println!("{}", token.token);
    Ok(())
}

pub(super) async fn decode(settings: Settings, token: &str) -> Result<ExitCode, String> {
    let mut segments = token.split('.');
    let header = segments.next().and_then(decode_segment);
    let claims = segments.next().and_then(decode_segment);
    let (Some(header), Some(claims)) = (header, claims) else {
        println!("not a JWT: expected three base64url segments holding JSON");
        return Ok(ExitCode::FAILURE);
    };
    let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default();
    println!("header:\n{}", pretty(&header));
    println!("claims:\n{}", pretty(&claims));
    let configured_here = settings.signing_key.is_some();
    let authority = server::open_authority(settings)
        .await
        .map_err(|e| e.to_string())?;
    match authority.tokens().check(token, None).await {
        Ok(_) => {
            println!("verifies: yes");
            Ok(ExitCode::SUCCESS)
        }
        Err(AuthError::Token(Refusal::Invalid)) => {
            println!(
                "verifies: {}",
                unverified(&authority, token, configured_here)
            );
            Ok(ExitCode::FAILURE)
        }
        Err(AuthError::Token(reason)) => {
            println!("verifies: no ({})", reason.as_str());
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.to_string()),
    }
}

/// What `token decode` says of a token refused as invalid. This shell's
/// keys are its settings' `signing_key` or the stored keys; a server whose
/// `signing_key` is set only where it runs signs with a key this shell does
/// not have, and the CLI cannot tell that key's tokens from forged ones. So
/// a token naming a kid of no key here verifies "unknown", saying why,
/// rather than "no": a valid token was reported invalid.
fn unverified(
    authority: &crate::authority::Authority,
    token: &str,
    configured_here: bool,
) -> String {
    let Some(kid) = tessera_core::token::peek_kid(token) else {
        // Tessera names a kid in every token it signs.
        return "no (invalid)".to_owned();
    };
    let now = tessera_core::clock::Clock::now(&tessera_core::clock::SystemClock);
    if authority.keys().ring().get(&kid, now).is_some() {
        return "no (invalid)".to_owned();
    }
    if configured_here {
        format!(
            "unknown (no key here has kid {kid}: the signing_key set in this shell is another key; \
             the token was signed by another key, or another deployment)"
        )
    } else {
        format!(
            "unknown (no key of this deployment in this shell has kid {kid}: \
             is signing_key set where the server runs? set TESSERA_SIGNING_KEY here too)"
        )
    }
}

mod base64_free {
    //! Reading a token segment for display, without trusting it.
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    /// The JSON inside one base64url segment, if it is that.
    pub fn decode_segment(segment: &str) -> Option<serde_json::Value> {
        let bytes = URL_SAFE_NO_PAD.decode(segment).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}
