//! Usernames and the password policy on arbitrary text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_core::password::PasswordPolicy;
use tessera_core::username::Username;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (username, password) = text.split_at(
        text.char_indices()
            .nth(text.chars().count() / 2)
            .map_or(0, |(i, _)| i),
    );
    if let Ok(name) = Username::parse(username) {
        assert!(name.as_str().chars().count() <= 150);
    }
    let _ = PasswordPolicy { min_length: 8 }.check(password, username, "");
});
