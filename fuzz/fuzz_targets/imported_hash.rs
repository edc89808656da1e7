//! Imported password hashes with hostile parameters: any text is read or
//! refused without a panic, what is read is within the work budget, and a
//! cheap one is checked against a password without a panic.
//!
//! The input's first byte picks a form: raw text, or one of the schemes'
//! prefixes followed by the rest, so that mutations reach the parameter
//! checks (iterations, costs, lengths) rather than stopping at the scheme.
//! After the first newline comes the password.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;
use tessera_core::password::HashMemory;
use tessera_core::password::imported::{self, MAX_WORK, NATIVE_WORK};

/// The prefixes of every scheme `imported::read` knows.
const PREFIXES: [&str; 17] = [
    "pbkdf2_sha256$",
    "pbkdf2_sha1$",
    "$pbkdf2-sha256$",
    "scrypt$",
    "bcrypt$",
    "bcrypt_sha256$",
    "$2b$",
    "$2y$",
    "argon2$argon2id$v=19$",
    "$argon2id$v=19$",
    "$argon2i$v=19$",
    "$argon2d$v=16$",
    // Werkzeug's (Flask's): `scrypt$` above also reaches its bare form.
    "scrypt:",
    "pbkdf2$",
    "pbkdf2:sha1:",
    "pbkdf2:sha256:",
    "pbkdf2:sha512:",
];

/// Verification runs only below this work: the budget bounds the rest (as
/// the assertion below checks), and a fuzzer wants thousands of runs a
/// second, not a few.
const CHEAP: u64 = NATIVE_WORK / 16;

thread_local! {
    static MEMORY: RefCell<HashMemory> = RefCell::new(HashMemory::new());
}

fuzz_target!(|data: &[u8]| {
    let Some((&form, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let (hash, password) = text.split_once('\n').unwrap_or((&text, ""));
    let encoded = match PREFIXES.get(usize::from(form) % (PREFIXES.len() + 1)) {
        Some(prefix) => format!("{prefix}{hash}"),
        None => hash.to_owned(),
    };
    match imported::read(&encoded) {
        Ok(parsed) => {
            let work = parsed.work();
            assert!(work <= MAX_WORK, "{encoded:?}: work {work}");
            if work <= CHEAP {
                MEMORY.with_borrow_mut(|memory| parsed.verify(password, memory));
            }
        }
        // The message names the scheme at most, and never panics.
        Err(problem) => {
            let _message = problem.to_string();
        }
    }
});
