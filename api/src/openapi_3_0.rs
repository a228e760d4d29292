//! The OpenAPI 3.0 rendering of the 3.1 document, for generators that read
//! only 3.0 (progenitor, older openapi-generator templates). It is the same
//! API: each 3.1-only construct is rewritten into its 3.0 spelling, and
//! `docs/openapi-3.0.json` is checked for drift like the 3.1 document.
//!
//! What changes (OpenAPI 3.1 is JSON Schema 2020-12; 3.0 is a subset):
//! - `"type": ["string", "null"]` becomes `"type": "string", "nullable": true`;
//! - `oneOf` with a `{"type": "null"}` branch becomes the other branch,
//!   nullable (a lone `$ref` is wrapped in `allOf`, which may carry siblings);
//! - a schema's `examples` array becomes its first `example`;
//! - `const` becomes a one-value `enum`;
//! - `contentMediaType` and `propertyNames` go (3.0 says `format: binary`,
//!   which is kept, and a map's keys are always strings);
//! - a nullable `$ref` gets the referenced schema's `type` beside
//!   `nullable`, which 3.0 needs to mean anything;
//! - the license's SPDX `identifier` goes (3.0 has none).

use std::collections::HashMap;

use serde_json::{Map, Value, json};

/// The 3.0 rendering of `document` (a 3.1 document as JSON).
pub fn downgrade(mut document: Value) -> Value {
    document["openapi"] = json!("3.0.3");
    if let Some(license) = document.pointer_mut("/info/license").and_then(Value::as_object_mut) {
        license.remove("identifier");
    }
    let types = component_types(&document);
    rewrite(&mut document, &types);
    document
}

/// Each component schema's `type`, by the `$ref` that names it.
fn component_types(document: &Value) -> HashMap<String, Value> {
    let schemas = document.pointer("/components/schemas").and_then(Value::as_object);
    let typed = schemas.into_iter().flatten().filter_map(|(name, schema)| {
        let kind = schema.get("type").filter(|t| t.is_string())?;
        Some((format!("#/components/schemas/{name}"), kind.clone()))
    });
    typed.collect()
}

/// Rewrites every object in `value`, children first.
fn rewrite(value: &mut Value, types: &HashMap<String, Value>) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(|item| rewrite(item, types)),
        Value::Object(object) => {
            object.values_mut().for_each(|child| rewrite(child, types));
            rewrite_schema(object, types);
        }
        _ => {}
    }
}

/// The 3.0 spelling of one object, if it is a schema with 3.1-only parts.
/// The keys it reads mean the same wherever they occur in a document,
/// except `examples`, which is a map outside schemas and left alone there.
fn rewrite_schema(object: &mut Map<String, Value>, types: &HashMap<String, Value>) {
    if let Some(Value::Array(kinds)) = object.get("type") {
        let nullable = kinds.iter().any(|t| t == "null");
        let rest: Vec<Value> = kinds.iter().filter(|t| *t != "null").cloned().collect();
        if let [only] = rest.as_slice() {
            object.insert("type".into(), only.clone());
        }
        if nullable {
            object.insert("nullable".into(), json!(true));
        }
    }
    if let Some(Value::Array(branches)) = object.get("oneOf") {
        let is_null = |b: &Value| b.get("type") == Some(&json!("null"));
        if branches.iter().any(is_null) {
            let rest: Vec<Value> = branches.iter().filter(|b| !is_null(b)).cloned().collect();
            object.remove("oneOf");
            match <[Value; 1]>::try_from(rest) {
                Ok([Value::Object(only)]) if !only.contains_key("$ref") => {
                    for (key, value) in only {
                        object.entry(key).or_insert(value);
                    }
                }
                Ok([only]) => {
                    object.insert("allOf".into(), json!([only]));
                }
                Err(rest) => {
                    object.insert("oneOf".into(), Value::Array(rest));
                }
            }
            object.insert("nullable".into(), json!(true));
        }
    }
    if object.get("examples").is_some_and(Value::is_array)
        && let Some(Value::Array(examples)) = object.remove("examples")
        && let Some(first) = examples.into_iter().next()
    {
        object.insert("example".into(), first);
    }
    if let Some(value) = object.remove("const") {
        object.insert("enum".into(), json!([value]));
    }
    object.remove("contentMediaType");
    object.remove("propertyNames");
    // 3.0 ignores a `$ref`'s siblings: keep them by moving the ref into `allOf`.
    if object.len() > 1
        && let Some(reference) = object.remove("$ref")
    {
        object.insert("allOf".into(), json!([{ "$ref": reference }]));
    }
    // `nullable` means nothing without a `type` beside it.
    if object.contains_key("nullable") && !object.contains_key("type") {
        let referenced = match object.get("allOf").and_then(Value::as_array).map(Vec::as_slice) {
            Some([only]) => only.get("$ref").and_then(Value::as_str).and_then(|r| types.get(r)),
            _ => None,
        };
        if let Some(kind) = referenced {
            object.insert("type".into(), kind.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nullable_types_and_refs_take_their_3_0_spelling() {
        let schema = json!({
            "type": "object",
            "properties": {
                "headers": { "type": "object", "propertyNames": { "type": "string" } },
                "name": { "type": ["string", "null"] },
                "error": { "oneOf": [{ "type": "null" }, { "$ref": "#/components/schemas/ErrorView" }] },
                "cause": { "oneOf": [{ "type": "null" }, { "$ref": "#/components/schemas/ErrorView", "description": "Why" }] },
                "kind": { "const": "image" },
                "size": { "$ref": "#/components/schemas/Size", "description": "In bytes" },
            },
            "examples": [{ "name": "a" }],
        });

        let error = json!({ "type": "object" });
        let schemas = json!({ "S": schema, "ErrorView": error });
        let downgraded = downgrade(json!({ "openapi": "3.1.0", "components": { "schemas": schemas } }));

        let schema = &downgraded["components"]["schemas"]["S"];
        assert_eq!(downgraded["openapi"], "3.0.3");
        assert_eq!(schema["properties"]["name"], json!({ "type": "string", "nullable": true }));
        assert_eq!(
            schema["properties"]["error"],
            json!({ "allOf": [{ "$ref": "#/components/schemas/ErrorView" }], "type": "object", "nullable": true })
        );
        assert_eq!(
            schema["properties"]["cause"],
            json!({ "allOf": [{ "$ref": "#/components/schemas/ErrorView" }], "description": "Why", "type": "object", "nullable": true })
        );
        assert_eq!(schema["properties"]["kind"], json!({ "enum": ["image"] }));
        assert_eq!(schema["properties"]["headers"], json!({ "type": "object" }));
        assert_eq!(
            schema["properties"]["size"],
            json!({ "allOf": [{ "$ref": "#/components/schemas/Size" }], "description": "In bytes" })
        );
        assert_eq!(schema["example"], json!({ "name": "a" }));
        assert!(schema.get("examples").is_none());
    }

    #[test]
    fn a_media_types_examples_map_is_left_alone() {
        let content = json!({ "examples": { "one": { "value": 1 } } });

        assert_eq!(downgrade(json!({ "c": content.clone() }))["c"], content);
    }
}
