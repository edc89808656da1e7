//! `tessera keys list` and `tessera keys rotate`.

use super::*;

/// Runs a `tessera keys` subcommand: lists the keys with their state, or
/// rotates (publishing the new key ahead of signing unless `--now`).
pub(super) async fn run(settings: Settings, command: KeysCommand) -> Result<(), String> {
    match command {
        KeysCommand::List => {
            let store = server::open_store(&settings)
                .await
                .map_err(|e| e.to_string())?;
            let keys = crate::authority::keys::list(&settings, store.as_ref())
                .await
                .map_err(|e| e.to_string())?;
            if keys.is_empty() {
                // An empty table would read as "this deployment has no
                // keys", when the usual cause is a key in a configuration
                // this shell does not share.
                if settings.signing_key.is_some() {
                    println!(
                        "No keys stored: the signing_key of the configuration signs, and it is never stored."
                    );
                } else {
                    println!(
                        "No keys stored. A server started with signing_key set (TESSERA_SIGNING_KEY) signs with \
                         that key, which is never stored; one started without it stores a key on its first start."
                    );
                }
                return Ok(());
            }
            println!("{:<44} {:<6} {:<21} status", "kid", "alg", "created");
            for key in keys {
                println!(
                    "{:<44} {:<6} {:<21} {}",
                    key.kid,
                    key.algorithm,
                    timestamp(key.created_at),
                    key_status(key.state)
                );
            }
        }
        KeysCommand::Rotate { algorithm, now } => {
            let alg = match algorithm {
                None => settings.algorithm,
                Some(name) => tessera_core::keys::parse_algorithm(&name).ok_or_else(|| {
                    format!(
                        "--algorithm: expected one of {}, got `{name}`",
                        tessera_core::keys::ALGORITHM_NAMES.join(", ")
                    )
                })?,
            };
            let authority = server::open_authority(settings.clone())
                .await
                .map_err(|e| e.to_string())?;
            let start = if now {
                KeyStart::Now
            } else {
                KeyStart::AfterLead
            };
            let rotated = authority
                .keys()
                .rotate(alg, start)
                .await
                .map_err(|e| e.to_string())?;
            let name = tessera_core::keys::algorithm_name(alg);
            if rotated.ahead {
                println!(
                    "New key {} ({name}) published; every instance signs with it from {} \
                     (key_publish_lead = \"{}\"), the key in service until then.",
                    rotated.kid,
                    timestamp(rotated.signs_from),
                    crate::config::format_duration(settings.key_publish_lead)
                );
            } else {
                println!("New signing key {} ({name}).", rotated.kid);
            }
            if alg != settings.algorithm {
                eprintln!(
                    "note: the configured algorithm is {}; set algorithm = \"{}\" too: once the new key signs, an instance started with the old setting refuses to start",
                    tessera_core::keys::algorithm_name(settings.algorithm),
                    name
                );
            }
        }
    }
    Ok(())
}

/// What `tessera keys list` says a key does.
fn key_status(state: KeyState) -> String {
    match state {
        KeyState::Signing { until: None } => "signing".to_owned(),
        KeyState::Signing { until: Some(t) } => format!("signing until {}", timestamp(t)),
        KeyState::Published { signs_from } => {
            format!("published, signs from {}", timestamp(signs_from))
        }
        KeyState::Verifying { until: Some(t) } => format!("verifying until {}", timestamp(t)),
        KeyState::Verifying { until: None } => "verifying".to_owned(),
        KeyState::Expired => "expired".to_owned(),
        KeyState::Refused => "refused (HMAC, with an asymmetric key in service)".to_owned(),
        KeyState::Unknown => "unknown algorithm (not used)".to_owned(),
    }
}
