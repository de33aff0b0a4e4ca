//! The OpenAPI document tells what the edge enforces for every route (ADR 19): the limits
//! of [`crate::input`] on each string and list a request carries, and the answers any route
//! may give besides its own — 400 for input beyond them, 401/403 when authentication is on,
//! 503 while the database is out of reach. Stated here once, so no module's description can
//! leave them out.

use serde_json::{Value, json};
use utoipa::openapi::OpenApi;

use crate::input::{MAX_LIST, MAX_SEGMENT, MAX_TEXT};

/// A string without control characters (Unicode's Cc: what `char::is_control` refuses).
const NO_CONTROLS: &str = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$";

/// [`NO_CONTROLS`], and at least one character that is not white space: what the domains
/// mean by a field that "cannot be blank" (they trim it), stated where a body's field has a
/// `minLength` of 1.
const NON_BLANK: &str = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\u0000-\\u0020\\u007f-\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000-\\u001f\\u007f-\\u009f]*$";

/// `doc` with the edge's limits and answers written into every operation, as JSON (utoipa's
/// model has no place for some of them, such as `propertyNames`).
pub(crate) fn with_the_edge(doc: &OpenApi) -> Value {
    let mut value = serde_json::to_value(doc).unwrap_or_default();
    if let Some(schemas) = value
        .pointer_mut("/components")
        .and_then(Value::as_object_mut)
        .map(|components| components.entry("schemas").or_insert_with(|| json!({})))
        .and_then(Value::as_object_mut)
    {
        schemas.insert(EDGE_VALUE.into(), edge_value());
    }
    let mut bodies = Vec::new();
    if let Some(paths) = value.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut().filter_map(Value::as_object_mut) {
            for operation in item.values_mut().filter_map(Value::as_object_mut) {
                state_parameters(operation);
                state_answers(operation);
                if let Some(schema) = operation
                    .get_mut("requestBody")
                    .and_then(|body| body.pointer_mut("/content/application~1json/schema"))
                {
                    bodies.extend(limit_schema(schema));
                }
            }
        }
    }
    // Every schema a request body names, and those they name, get the body's limits.
    let mut seen = std::collections::BTreeSet::new();
    while let Some(name) = bodies.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let pointer = format!("/components/schemas/{name}");
        if let Some(schema) = value.pointer_mut(&pointer) {
            bodies.extend(limit_schema(schema));
        }
    }
    value
}

/// The component any value a body carries beyond its declared fields must match.
const EDGE_VALUE: &str = "EdgeValue";

/// Any JSON value within the edge's limits, at any depth.
fn edge_value() -> Value {
    let any = json!({"$ref": format!("#/components/schemas/{EDGE_VALUE}")});
    json!({
        "description": "Any JSON value within the API's limits: text without control characters, \
            lists and field names of bounded length.",
        "anyOf": [
            {"type": "string", "maxLength": MAX_TEXT, "pattern": NO_CONTROLS},
            {"type": ["number", "boolean", "null"]},
            {"type": "array", "maxItems": MAX_LIST, "items": any},
            {"type": "object", "additionalProperties": any, "propertyNames": field_name()}
        ]
    })
}

/// What the edge allows as a field name.
fn field_name() -> Value {
    json!({"maxLength": MAX_SEGMENT, "pattern": NO_CONTROLS})
}

fn state_parameters(operation: &mut serde_json::Map<String, Value>) {
    let Some(parameters) = operation
        .get_mut("parameters")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for parameter in parameters {
        let in_path = parameter["in"] == "path";
        let Some(schema) = parameter.get_mut("schema").and_then(Value::as_object_mut) else {
            continue;
        };
        let text = schema.get("type").and_then(Value::as_str) == Some("string")
            || schema
                .get("type")
                .and_then(Value::as_array)
                .is_some_and(|types| types.iter().any(|t| t == "string"));
        if text {
            let most = schema
                .get("maxLength")
                .and_then(Value::as_u64)
                .map_or(MAX_SEGMENT as u64, |m| m.min(MAX_SEGMENT as u64));
            schema.insert("maxLength".into(), json!(most));
            // A module's own pattern or list of values is stricter, and has no controls.
            if !schema.contains_key("pattern") && !schema.contains_key("enum") {
                schema.insert("pattern".into(), json!(NO_CONTROLS));
            }
            if in_path {
                schema.insert("minLength".into(), json!(1));
            }
        }
    }
}

fn state_answers(operation: &mut serde_json::Map<String, Value>) {
    let error = |description: &str| {
        json!({
            "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
        })
    };
    let Some(responses) = operation
        .entry("responses")
        .or_insert_with(|| json!({}))
        .as_object_mut()
    else {
        return;
    };
    for (status, description) in [
        ("400", "Input beyond the API's limits, or invalid"),
        ("401", "No valid bearer token (when authentication is on)"),
        ("403", "The token's role may not do this"),
        (
            "503",
            "The database is out of reach; try again after Retry-After",
        ),
    ] {
        responses
            .entry(status)
            .or_insert_with(|| error(description));
    }
}

/// Puts the body limits on `schema`'s strings and lists (recursively through its
/// properties and items); the names of the component schemas it refers to.
fn limit_schema(schema: &mut Value) -> Vec<String> {
    let mut refs = Vec::new();
    let Some(object) = schema.as_object_mut() else {
        return refs;
    };
    if let Some(reference) = object.get("$ref").and_then(Value::as_str) {
        if let Some(name) = reference.strip_prefix("#/components/schemas/") {
            refs.push(name.to_owned());
        }
        return refs;
    }
    let types: Vec<String> = match object.get("type") {
        Some(Value::String(one)) => vec![one.clone()],
        Some(Value::Array(many)) => many
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    if types.iter().any(|t| t == "string") {
        let most = object
            .get("maxLength")
            .and_then(Value::as_u64)
            .map_or(MAX_TEXT as u64, |m| m.min(MAX_TEXT as u64));
        let non_blank = object.get("minLength").and_then(Value::as_u64) >= Some(1);
        object.insert("maxLength".into(), json!(most));
        // A module's own pattern is stricter (and must exclude control characters itself).
        object
            .entry("pattern")
            .or_insert_with(|| json!(if non_blank { NON_BLANK } else { NO_CONTROLS }));
    }
    if types.iter().any(|t| t == "array") {
        let most = object
            .get("maxItems")
            .and_then(Value::as_u64)
            .map_or(MAX_LIST as u64, |m| m.min(MAX_LIST as u64));
        object.insert("maxItems".into(), json!(most));
    }
    if types.iter().any(|t| t == "object") || object.contains_key("properties") {
        object
            .entry("additionalProperties")
            .or_insert_with(|| json!({"$ref": format!("#/components/schemas/{EDGE_VALUE}")}));
        object.insert("propertyNames".into(), field_name());
    }
    for key in ["items", "additionalProperties"] {
        if let Some(inner) = object.get_mut(key) {
            refs.extend(limit_schema(inner));
        }
    }
    if let Some(properties) = object.get_mut("properties").and_then(Value::as_object_mut) {
        for property in properties.values_mut() {
            refs.extend(limit_schema(property));
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(variants) = object.get_mut(key).and_then(Value::as_array_mut) {
            for variant in variants {
                refs.extend(limit_schema(variant));
            }
        }
    }
    refs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_states_the_edges_limits_and_answers() {
        let doc: OpenApi = serde_json::from_value(json!({
            "openapi": "3.1.0",
            "info": {"title": "t", "version": "1"},
            "paths": {"/api/things/{id}": {"put": {
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}},
                "responses": {"200": {"description": "ok"}}
            }}},
            "components": {"schemas": {
                "Thing": {"type": "object", "properties": {
                    "name": {"type": "string"},
                    "tags": {"type": "array", "items": {"$ref": "#/components/schemas/Tag"}}
                }},
                "Tag": {"type": "object", "properties": {"label": {"type": ["string", "null"]}}}
            }}
        }))
        .unwrap();
        let value = with_the_edge(&doc);
        let operation = &value["paths"]["/api/things/{id}"]["put"];
        let id = &operation["parameters"][0]["schema"];
        assert_eq!(
            (&id["minLength"], &id["maxLength"]),
            (&json!(1), &json!(MAX_SEGMENT))
        );
        assert_eq!(id["pattern"], NO_CONTROLS);
        for status in ["200", "400", "401", "403", "503"] {
            assert!(operation["responses"].get(status).is_some(), "{status}");
        }
        let thing = &value["components"]["schemas"]["Thing"]["properties"];
        assert_eq!(thing["name"]["maxLength"], json!(MAX_TEXT));
        assert_eq!(thing["tags"]["maxItems"], json!(MAX_LIST));
        let label = &value["components"]["schemas"]["Tag"]["properties"]["label"];
        assert_eq!(
            label["pattern"], NO_CONTROLS,
            "a schema named by another is limited too"
        );
    }

    #[test]
    fn the_patterns_refuse_what_the_edge_and_the_domains_refuse() {
        let (any, non_blank) = (
            regex::Regex::new(NO_CONTROLS).unwrap(),
            regex::Regex::new(NON_BLANK).unwrap(),
        );
        for c in (0..0x3100).filter_map(char::from_u32) {
            let text = c.to_string();
            assert_eq!(any.is_match(&text), !c.is_control(), "{c:?}");
            let kept = !c.is_control() && !text.trim().is_empty();
            assert_eq!(non_blank.is_match(&text), kept, "{c:?}");
            assert_eq!(non_blank.is_match(&format!(" {text} ")), kept, "{c:?}");
        }
        assert!(non_blank.is_match("Store ABC") && !non_blank.is_match(""));
    }
}
