//! The Authorization header parser on arbitrary bytes.
#![no_main]

use axum::http::{HeaderMap, HeaderValue, header};
use libfuzzer_sys::fuzz_target;
use tessera_server::http::auth::bearer_token;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = HeaderValue::from_bytes(data) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::AUTHORIZATION, value);
    if let Ok(Some(token)) = bearer_token(&headers, &["Bearer".to_owned(), "JWT".to_owned()]) {
        assert!(token.bytes().all(|b| (0x21..=0x7e).contains(&b)));
    }
});
