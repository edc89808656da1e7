//! Every request body parser on arbitrary bytes: an object or a 4xx, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_server::http::body::parse;
use tessera_server::http::error::ApiError;

const TYPES: [&str; 4] = [
    "application/json",
    "application/x-www-form-urlencoded",
    "application/problem+json; charset=utf-8",
    "text/plain",
];

fuzz_target!(|data: &[u8]| {
    let Some((selector, body)) = data.split_first() else {
        return;
    };
    let content_type = TYPES[usize::from(*selector) % TYPES.len()];
    match parse(Some(content_type), body) {
        Ok(map) => {
            // Whatever parsed, reading fields from it must not panic either.
            let payload = tessera_server::http::body::Payload(map);
            let mut fields = payload.fields();
            let _ = fields.string("username");
            let _ = fields.optional_string("email");
            let _ = fields.optional_bool("is_active");
            let _ = fields.finish();
        }
        Err(ApiError::BadRequest(_) | ApiError::UnsupportedMediaType(_)) => {}
        Err(other) => panic!("unexpected {other:?}"),
    }
});
