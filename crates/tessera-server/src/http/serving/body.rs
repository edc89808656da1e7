//! Request bodies as docs/API.md wants them read: JSON or form-encoded,
//! at most 64 KiB, an object at most 32 levels deep, with field errors in
//! Django REST framework's shape.

use crate::authority::Authority;
use crate::authority::FieldErrors;
use crate::http::extract::error::ApiError;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// The largest body read, in bytes; anything larger is a 413.
pub const MAX_BODY_BYTES: usize = 65_536;
/// The deepest nesting of arrays and objects accepted in a JSON body.
pub const MAX_JSON_DEPTH: usize = 32;

/// A request body parsed into a JSON object, whatever its wire format.
/// An empty body is an empty object.
#[derive(Debug, Default)]
pub struct Payload(pub Map<String, Value>);

impl FromRequest<Arc<Authority>> for Payload {
    type Rejection = ApiError;

    async fn from_request(req: Request, authority: &Arc<Authority>) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let bytes = read_body(&parts.headers, body, authority.settings().request_timeout).await?;
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        parse(content_type.as_deref(), &bytes).map(Payload)
    }
}

/// Reads a whole request body: 413 past [`MAX_BODY_BYTES`] (by the declared
/// length before a byte is read, else as it arrives), 408 when it takes
/// longer than `limit` (a client trickling its body to hold the connection).
pub async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: Duration,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(ApiError::PayloadTooLarge);
    }
    match tokio::time::timeout(limit, axum::body::to_bytes(body, MAX_BODY_BYTES)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(ApiError::PayloadTooLarge),
        Err(_) => Err(ApiError::Timeout),
    }
}

/// Reads a body of at most [`MAX_BODY_BYTES`] as a JSON object: JSON or a
/// form by its content type, an empty body as `{}`. Every failure is a 400 or a 415.
pub fn parse(content_type: Option<&str>, bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if bytes.is_empty() {
        return Ok(Map::new());
    }
    match body_format(content_type) {
        Some(BodyFormat::Json) => parse_json(bytes),
        Some(BodyFormat::Form) => parse_form(bytes),
        None => Err(ApiError::UnsupportedMediaType(
            content_type.unwrap_or_default().to_owned(),
        )),
    }
}

/// The two body formats the API reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// `application/json` (or `application/*+json`).
    Json,
    /// `application/x-www-form-urlencoded`.
    Form,
}

/// Which format a `Content-Type` names, if one the API reads.
pub fn body_format(content_type: Option<&str>) -> Option<BodyFormat> {
    let essence = content_type
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
    {
        Some(BodyFormat::Json)
    } else if essence == "application/x-www-form-urlencoded" {
        Some(BodyFormat::Form)
    } else {
        None
    }
}

/// The body rules of every route, applied before any handler runs, whether
/// it reads a body or not: 413 past [`MAX_BODY_BYTES`], 408 past
/// `request_timeout`, 415 for a non-empty body that is neither JSON nor a
/// form. The body read is passed on to the handler.
pub async fn body_rules(authority: &Authority, request: Request) -> Result<Request, ApiError> {
    let (parts, body) = request.into_parts();
    let limit = authority.settings().request_timeout;
    let bytes = read_body(&parts.headers, body, limit).await?;
    if !bytes.is_empty() {
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        if body_format(content_type.as_deref()).is_none() {
            return Err(ApiError::UnsupportedMediaType(
                content_type.unwrap_or_default(),
            ));
        }
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// Whether a request may carry a body, so that [`body_rules`] has work:
/// most requests (GET /api/auth/me) say they have none.
pub fn may_have_body(request: &Request) -> bool {
    use axum::body::HttpBody;
    request.body().size_hint().exact() != Some(0)
}

fn parse_json(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("JSON parse error - {e}")))?;
    if depth(&value) > MAX_JSON_DEPTH {
        return Err(ApiError::BadRequest(format!(
            "JSON parse error - nesting deeper than {MAX_JSON_DEPTH} levels"
        )));
    }
    match value {
        Value::Object(map) => Ok(map),
        other => Err(ApiError::BadRequest(format!(
            "Invalid data. Expected a dictionary, but got {}.",
            json_type(&other)
        ))),
    }
}

fn depth(value: &Value) -> usize {
    // Iterative, so that measuring a deep document cannot overflow our stack.
    let mut deepest = 0;
    let mut stack = vec![(value, 1usize)];
    while let Some((v, d)) = stack.pop() {
        match v {
            Value::Array(items) => {
                deepest = deepest.max(d);
                stack.extend(items.iter().map(|i| (i, d + 1)));
            }
            Value::Object(map) => {
                deepest = deepest.max(d);
                stack.extend(map.values().map(|i| (i, d + 1)));
            }
            _ => {}
        }
    }
    deepest
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

fn parse_form(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(bytes)
        .map_err(|e| ApiError::BadRequest(format!("Form parse error - {e}")))?;
    Ok(pairs
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect())
}

impl Payload {
    /// Starts reading fields, collecting every error before answering.
    pub fn fields(&self) -> Fields<'_> {
        Fields {
            map: &self.0,
            errors: FieldErrors::new(),
        }
    }
}

/// Reads typed fields out of a [`Payload`], collecting DRF-style messages.
pub struct Fields<'a> {
    map: &'a Map<String, Value>,
    errors: FieldErrors,
}

impl Fields<'_> {
    fn fail(&mut self, name: &str, message: &str) {
        self.errors
            .entry(name.to_owned())
            .or_default()
            .push(message.to_owned());
    }

    /// A required, non-empty string. On error returns `""` and records why.
    pub fn string(&mut self, name: &str) -> String {
        match self.map.get(name) {
            None => self.fail(name, "This field is required."),
            Some(Value::Null) => self.fail(name, "This field may not be null."),
            Some(Value::String(s)) if s.is_empty() => {
                self.fail(name, "This field may not be blank.")
            }
            Some(Value::String(s)) => return s.clone(),
            Some(_) => self.fail(name, "Not a valid string."),
        }
        String::new()
    }

    /// An optional string; absent or null is `None`, `""` is allowed.
    pub fn optional_string(&mut self, name: &str) -> Option<String> {
        match self.map.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.fail(name, "Not a valid string.");
                None
            }
        }
    }

    /// An optional boolean (JSON `true`/`false`, or form `true`/`false`).
    pub fn optional_bool(&mut self, name: &str) -> Option<bool> {
        match self.map.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::String(s)) if s == "true" => Some(true),
            Some(Value::String(s)) if s == "false" => Some(false),
            Some(_) => {
                self.fail(name, "Must be a valid boolean.");
                None
            }
        }
    }

    /// A required list of strings, as DRF's `ListField(child=CharField())`
    /// reads one. On error returns an empty list and records why.
    pub fn string_list(&mut self, name: &str) -> Vec<String> {
        match self.map.get(name) {
            None => self.fail(name, "This field is required."),
            Some(Value::Null) => self.fail(name, "This field may not be null."),
            Some(Value::Array(items)) => {
                let strings: Option<Vec<String>> = items
                    .iter()
                    .map(|i| i.as_str().map(str::to_owned))
                    .collect();
                match strings {
                    Some(strings) => return strings,
                    None => self.fail(name, "Each item must be a string."),
                }
            }
            Some(other) => {
                let message = format!(
                    "Expected a list of items but got type \"{}\".",
                    json_type(other)
                );
                self.fail(name, &message);
            }
        }
        Vec::new()
    }

    /// An optional JSON value of any type; absent is `None` (null is a value).
    pub fn optional_value(&mut self, name: &str) -> Option<Value> {
        self.map.get(name).cloned()
    }

    /// Records `message` against `name`, for a check the caller makes of a
    /// value read (the rules of the domain, in the same 400).
    pub fn refuse(&mut self, name: &str, message: &str) {
        self.fail(name, message);
    }

    /// Ends reading: a 400 naming every field at fault, if any.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Fields(self.errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    proptest! {
        #[test]
        fn any_bytes_parse_to_an_object_or_a_4xx(
            bytes in proptest::collection::vec(any::<u8>(), 0..2000),
            content_type in prop::sample::select(vec!["application/json", "application/x-www-form-urlencoded", "text/plain", "application/ld+json; charset=utf-8"]),
        ) {
            match parse(Some(content_type), &bytes) {
                Ok(_) => {}
                Err(ApiError::BadRequest(_) | ApiError::UnsupportedMediaType(_)) => {}
                Err(other) => prop_assert!(false, "unexpected {other:?}"),
            }
        }

        #[test]
        fn any_json_value_parses_to_an_object_or_a_400(value in json_value()) {
            let bytes = serde_json::to_vec(&value).unwrap();
            let parsed = parse(Some("application/json"), &bytes);
            prop_assert_eq!(parsed.is_ok(), value.is_object() && depth(&value) <= MAX_JSON_DEPTH);
        }
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            "\\PC{0,20}".prop_map(Value::String),
        ];
        leaf.prop_recursive(40, 200, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map("[a-z]{1,8}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    #[test]
    fn depth_counts_containers() {
        assert_eq!(depth(&json!(1)), 0);
        assert_eq!(depth(&json!({"a": [1]})), 2);
        let mut deep = json!(1);
        for _ in 0..40 {
            deep = json!([deep]);
        }
        assert_eq!(depth(&deep), 40);
    }

    #[test]
    fn bodies_must_be_objects() {
        assert!(parse_json(b"[1]").is_err());
        assert!(parse_json(b"{} x").is_err());
        assert!(parse_json(b"{\"a\":1}").is_ok());
        let nested = format!("{{\"a\":{}1{}}}", "[".repeat(32), "]".repeat(32));
        assert!(parse_json(nested.as_bytes()).is_err());
        let ok = format!("{{\"a\":{}1{}}}", "[".repeat(31), "]".repeat(31));
        assert!(parse_json(ok.as_bytes()).is_ok());
    }

    #[test]
    fn field_messages() {
        let p = Payload(
            json!({"a": "", "b": 3, "c": null, "d": "x"})
                .as_object()
                .cloned()
                .unwrap(),
        );
        let mut f = p.fields();
        assert_eq!(f.string("d"), "x");
        f.string("a");
        f.string("b");
        f.string("c");
        f.string("e");
        let Err(ApiError::Fields(errors)) = f.finish() else {
            panic!()
        };
        assert_eq!(errors["a"], ["This field may not be blank."]);
        assert_eq!(errors["b"], ["Not a valid string."]);
        assert_eq!(errors["c"], ["This field may not be null."]);
        assert_eq!(errors["e"], ["This field is required."]);
        assert!(!errors.contains_key("d"));
    }
}
