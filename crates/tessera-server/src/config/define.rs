//! The macro that turns the one list of settings (settings.rs) into the
//! [`Settings`](super::Settings) struct (deserialised with serde), its
//! defaults, the list of names, the documentation table and `value`.

/// Declares every setting once. For each: its doc comment (what it does),
/// `name: Type = default`, `kind` and `accepted` (in words, for the
/// reference), `parse` (the serde `deserialize_with` function, as a string)
/// and `show` (how `tessera config` prints it, secrets masked).
macro_rules! settings {
    ($(
        $(#[doc = $doc:literal])+
        $name:ident: $ty:ty = $default:expr,
        kind: $kind:literal,
        accepted: $accepted:literal,
        parse: $parse:tt, show: $show:path;
    )+) => {
        /// Every setting, checked. Built by [`Settings::load`] or
        /// [`Settings::default`]; each field's documentation is the setting's.
        #[derive(Clone, serde::Deserialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct Settings {
            $(
                $(#[doc = $doc])+
                #[serde(deserialize_with = $parse)]
                pub $name: $ty,
            )+
        }

        impl Default for Settings {
            fn default() -> Self {
                Self {
                    $($name: $default,)+
                }
            }
        }

        /// Every setting's name, as in the TOML file (upper-cased after
        /// `TESSERA_` in the environment), in the order of the documentation.
        pub const SETTING_NAMES: &[&str] = &[$(stringify!($name)),+];

        /// Every setting as documented, in the same order.
        pub const SETTINGS: &[SettingDoc] = &[$(
            SettingDoc {
                name: stringify!($name),
                kind: $kind,
                accepted: $accepted,
                doc: concat!($($doc, "\n"),+),
            },
        )+];

        impl Settings {
            /// The setting `name` as a TOML value, as a file would hold it;
            /// `None` when it is unset or no setting has that name. Secrets
            /// come out masked: an HMAC signing key as `********`, passwords
            /// in URLs as `***`.
            pub fn value(&self, name: &str) -> Option<toml::Value> {
                match name {
                    $(stringify!($name) => $show(self, &self.$name),)+
                    _ => None,
                }
            }
        }
    };
}

pub(super) use settings;
