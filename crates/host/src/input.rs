//! What a request may carry, checked before any module sees it: text without control
//! characters (a NUL is refused by PostgreSQL and kept by SQLite: the same request must not
//! answer differently on the two) and of a bounded length, lists of a bounded length (a
//! filter of thousands of ids becomes as many SQL parameters). Limits are the documented
//! maximums of the API; a request beyond them is a 400 with the book's error body.

use axum::{extract::Request, middleware::Next, response::IntoResponse as _, response::Response};

use crate::ApiError;

/// Longest text in a JSON body (names, descriptions, ids), in characters.
pub const MAX_TEXT: usize = 1000;
/// Longest list in a JSON body (items, filters).
pub const MAX_LIST: usize = 100;
/// Longest path segment or query value (ids), in characters once decoded.
pub const MAX_SEGMENT: usize = 200;

/// Refuses a JSON body with control characters, overlong text or overlong lists.
///
/// # Errors
/// The first value beyond the limits, named by its place in the body.
pub fn check_json(value: &serde_json::Value) -> Result<(), ApiError> {
    check_value(value, &mut String::new())
}

fn check_value(value: &serde_json::Value, at: &mut String) -> Result<(), ApiError> {
    use serde_json::Value as V;
    match value {
        V::String(text) => check_text(text, at, MAX_TEXT),
        V::Array(items) => {
            if items.len() > MAX_LIST {
                return Err(ApiError::invalid_argument(format!(
                    "{} holds more than {MAX_LIST} items",
                    place(at)
                )));
            }
            items.iter().try_for_each(|item| check_value(item, at))
        }
        V::Object(fields) => fields.iter().try_for_each(|(name, field)| {
            let before = at.len();
            if !at.is_empty() {
                at.push('.');
            }
            at.push_str(name);
            let checked = check_text(name, at, MAX_SEGMENT).and_then(|()| check_value(field, at));
            at.truncate(before);
            checked
        }),
        V::Null | V::Bool(_) | V::Number(_) => Ok(()),
    }
}

fn place(at: &str) -> &str {
    if at.is_empty() { "the body" } else { at }
}

fn check_text(text: &str, at: &str, most: usize) -> Result<(), ApiError> {
    if text.chars().any(char::is_control) {
        return Err(ApiError::invalid_argument(format!(
            "{} may not contain control characters",
            place(at)
        )));
    }
    if text.chars().count() > most {
        return Err(ApiError::invalid_argument(format!(
            "{} is longer than {most} characters",
            place(at)
        )));
    }
    Ok(())
}

/// Writes every whole number of `value` as an integer: JSON allows `2.0` for `2` (a JSON
/// Schema `integer` is any number with a zero fraction, and Go's protojson reads `2.0` into an
/// int32 too), serde reads only `2` into an integer field. Done once for every body, so no
/// field needs to know; a float field reads the integer as well.
pub(crate) fn whole_numbers_as_integers(value: &mut serde_json::Value) {
    use serde_json::Value as V;
    match value {
        V::Number(number) if !number.is_i64() && !number.is_u64() => {
            let float = number.as_f64().unwrap_or(f64::NAN);
            // Exact: a double with no fraction within ±2^63 is an integer.
            if float.fract() == 0.0 && float.abs() < 9.2e18 {
                #[allow(
                    clippy::cast_possible_truncation,
                    reason = "checked to be whole and in range"
                )]
                let whole = float as i64;
                *value = V::from(whole);
            }
        }
        V::Array(items) => items.iter_mut().for_each(whole_numbers_as_integers),
        V::Object(fields) => fields.values_mut().for_each(whole_numbers_as_integers),
        _ => {}
    }
}

/// Middleware: the same rules for the path's segments and the query's values, decoded.
pub(crate) async fn check_uri(request: Request, next: Next) -> Response {
    let uri = request.uri();
    let segments = uri.path().split('/');
    let query = uri.query().unwrap_or_default().split(['&', '=']);
    for raw in segments.chain(query) {
        let decoded = percent_decode(raw);
        let decoded = String::from_utf8_lossy(&decoded);
        let refused = if decoded.chars().any(char::is_control) {
            Some("a path or query value may not contain control characters")
        } else if decoded.chars().count() > MAX_SEGMENT {
            Some("a path or query value is too long")
        } else {
            None
        };
        if let Some(message) = refused {
            return ApiError::invalid_argument(message).into_response();
        }
    }
    next.run(request).await
}

/// `%XX` escapes (and `+`) decoded to bytes; a malformed escape is kept as it is.
fn percent_decode(raw: &str) -> Vec<u8> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push(u8::try_from(high * 16 + low).unwrap_or(b'?'));
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            other => out.push(other),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_number_may_be_written_with_a_zero_fraction() {
        #[derive(serde::Deserialize)]
        struct Item {
            quantity: i32,
            price: f64,
        }
        let read = |quantity: &str| {
            let text = format!(r#"{{"quantity": {quantity}, "price": 2.0}}"#);
            let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
            whole_numbers_as_integers(&mut value);
            serde_json::from_value::<Item>(value).map(|item| (item.quantity, item.price))
        };
        assert_eq!(read("2").unwrap(), (2, 2.0));
        assert_eq!(read("-2.0").unwrap(), (-2, 2.0));
        assert_eq!(read("1e3").unwrap(), (1000, 2.0));
        for refused in ["2.5", "3e9", "\"2\"", "1e300", "null"] {
            assert!(read(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn bodies_beyond_the_limits_are_refused() {
        let ok =
            serde_json::json!({"name": "Store ABC", "items": [{"productId": "p", "quantity": 2}]});
        assert!(check_json(&ok).is_ok());
        let nul = serde_json::json!({"name": "Store\u{0}ABC"});
        assert!(check_json(&nul).unwrap_err().message.contains("name"));
        let long = serde_json::json!({"filters": {"customerId": "x".repeat(MAX_TEXT + 1)}});
        assert!(
            check_json(&long)
                .unwrap_err()
                .message
                .contains("filters.customerId")
        );
        let many = serde_json::json!({"storeIds": vec!["s"; MAX_LIST + 1]});
        assert!(check_json(&many).unwrap_err().message.contains("storeIds"));
    }

    #[test]
    fn escapes_are_decoded_before_they_are_judged() {
        assert_eq!(percent_decode("a%00b"), b"a\0b");
        assert_eq!(percent_decode("a%2Fb+c"), b"a/b c");
        assert_eq!(percent_decode("100%"), b"100%");
        assert_eq!(percent_decode("%4"), b"%4");
    }
}
