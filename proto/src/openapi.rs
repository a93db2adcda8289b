//! OpenAPI 3.1 documents of the HTTP routes (issue 31), generated from the contract's own
//! descriptors, so a JSON body's schema is the message's proto3 JSON mapping as
//! [`crate::json`] writes and reads it and cannot drift from the `.proto` files: field names
//! as written (`transaction_id`; the camelCase spelling is accepted too), 64-bit integers as
//! strings (a number is accepted), enums by name, timestamps RFC 3339, every field present in
//! an answer. Each service lists its routes ([`Route`]) from the same table it registers them
//! with; its port serves its document at `/api/v1/openapi.json`.

use prost_reflect::{Cardinality, FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value, json};

/// Where a parameter goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum In {
    /// The query string.
    Query,
    /// A segment of the path (`{name}`).
    Path,
}

/// A parameter of a route: its name, where it goes, its schema and what it means.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    /// Its name.
    pub name: &'static str,
    /// Query or path.
    pub place: In,
    /// Its JSON schema, as JSON text.
    pub schema: &'static str,
    /// What it means.
    pub description: &'static str,
}

/// What a route answers with a status.
#[derive(Debug, Clone, Copy)]
pub enum Body {
    /// A message of the contract, by full name, as proto3 JSON.
    Message(&'static str),
    /// The JSON error of the refusals: `{"code", "message", "field"?}`.
    Error,
    /// Another media type (a page, a stylesheet, a stream, the document itself).
    Other(&'static str),
}

/// One HTTP route.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// `get` or `post`.
    pub method: &'static str,
    /// The path, with `{name}` for a path parameter.
    pub path: &'static str,
    /// One line.
    pub summary: &'static str,
    /// Needs `Authorization: Bearer <key>`.
    pub bearer: bool,
    /// The JSON request body's message, if it takes one.
    pub request: Option<&'static str>,
    /// Its parameters.
    pub params: &'static [Param],
    /// Its answers by status, and what each means.
    pub answers: &'static [(u16, Body, &'static str)],
}

/// The route serving a port's document.
pub const OPENAPI_ROUTE: Route = Route {
    method: "get",
    path: "/api/v1/openapi.json",
    summary: "This document (OpenAPI 3.1).",
    bearer: false,
    request: None,
    params: &[],
    answers: &[(200, Body::Other("application/json"), "the document")],
};

/// The OpenAPI 3.1 document of `routes` (and [`OPENAPI_ROUTE`]), titled `title`.
#[must_use]
pub fn document(title: &str, description: &str, routes: &[Route]) -> Value {
    let mut schemas = Map::new();
    schemas.insert(
        "Error".into(),
        json!({
            "type": "object",
            "description": "A refused request: the gRPC code's name, a sentence, and the field at fault when one is.",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": "string"},
            },
            "required": ["code", "message"],
        }),
    );
    let mut paths = Map::new();
    for route in routes.iter().chain([&OPENAPI_ROUTE]) {
        let mut operation = Map::new();
        operation.insert("summary".into(), route.summary.into());
        operation.insert(
            "operationId".into(),
            format!(
                "{}{}",
                route.method,
                route
                    .path
                    .split(|c: char| !c.is_ascii_alphanumeric())
                    .filter(|w| !w.is_empty())
                    .map(|w| {
                        let mut c = w.chars();
                        c.next()
                            .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                            .unwrap_or_default()
                    })
                    .collect::<String>()
            )
            .into(),
        );
        if route.bearer {
            operation.insert("security".into(), json!([{"bearer": []}]));
        }
        if !route.params.is_empty() {
            let params: Vec<Value> = route
                .params
                .iter()
                .map(|p| {
                    json!({
                        "name": p.name,
                        "in": match p.place { In::Query => "query", In::Path => "path" },
                        "required": p.place == In::Path,
                        "description": p.description,
                        "schema": serde_json::from_str::<Value>(p.schema).unwrap_or_else(|_| json!({})),
                    })
                })
                .collect();
            operation.insert("parameters".into(), Value::Array(params));
        }
        if let Some(message) = route.request {
            add_message(&mut schemas, message);
            operation.insert(
                "requestBody".into(),
                json!({
                    "required": true,
                    "content": {"application/json": {"schema": reference(message)}},
                }),
            );
        }
        let mut responses = Map::new();
        for (status, body, description) in route.answers {
            let content = match body {
                Body::Message(message) => {
                    add_message(&mut schemas, message);
                    json!({"application/json": {"schema": reference(message)}})
                }
                Body::Error => {
                    json!({"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}})
                }
                Body::Other(media) => json!({ *media: {} }),
            };
            let mut answer = json!({"description": description, "content": content});
            if matches!(status, 429 | 503) {
                answer["headers"] = json!({"Retry-After": {
                    "description": "Seconds to wait before trying again.",
                    "schema": {"type": "integer"},
                }});
            }
            responses.insert(status.to_string(), answer);
        }
        operation.insert("responses".into(), Value::Object(responses));
        let entry = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(methods) = entry {
            methods.insert(route.method.to_owned(), Value::Object(operation));
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "description": description,
            "version": env!("CARGO_PKG_VERSION"),
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "The site's API key (sbk_...)."},
            },
        },
    })
}

fn reference(message: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{message}")})
}

/// Adds `message`'s schema, and those of the messages its fields hold, to `schemas`.
fn add_message(schemas: &mut Map<String, Value>, message: &str) {
    if schemas.contains_key(message) {
        return;
    }
    let Some(descriptor) = crate::json::pool().and_then(|p| p.get_message_by_name(message)) else {
        // A route naming a message the contract lacks: a broken build; a test checks.
        schemas.insert(message.to_owned(), json!({}));
        return;
    };
    schemas.insert(message.to_owned(), json!({}));
    let schema = message_schema(schemas, &descriptor);
    schemas.insert(message.to_owned(), schema);
}

fn message_schema(schemas: &mut Map<String, Value>, descriptor: &MessageDescriptor) -> Value {
    let mut properties = Map::new();
    for field in descriptor.fields() {
        properties.insert(field.name().to_owned(), field_schema(schemas, &field));
    }
    json!({
        "type": "object",
        "description": format!("saleboard.v1 message {} in the proto3 JSON mapping (the camelCase field names are accepted too).", descriptor.full_name()),
        "properties": properties,
    })
}

fn field_schema(schemas: &mut Map<String, Value>, field: &FieldDescriptor) -> Value {
    if field.is_map() {
        let value = match field.kind() {
            Kind::Message(entry) => entry
                .map_entry_value_field()
                .kind()
                .as_message()
                .map_or_else(
                    || json!({}),
                    |m| kind_schema(schemas, &Kind::Message(m.clone())),
                ),
            _ => json!({}),
        };
        return json!({"type": "object", "additionalProperties": value});
    }
    let item = kind_schema(schemas, &field.kind());
    if field.cardinality() == Cardinality::Repeated {
        json!({"type": "array", "items": item})
    } else {
        item
    }
}

fn kind_schema(schemas: &mut Map<String, Value>, kind: &Kind) -> Value {
    match kind {
        Kind::Double | Kind::Float => json!({"type": "number"}),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            json!({"type": "integer", "format": "int32"})
        }
        Kind::Uint32 | Kind::Fixed32 => {
            json!({"type": "integer", "minimum": 0, "maximum": 4_294_967_295_u64})
        }
        // Written as a decimal string; a number is accepted.
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => json!({
            "anyOf": [{"type": "string", "pattern": "^-?[0-9]+$"}, {"type": "integer"}],
            "description": "a 64-bit integer, written as a decimal string",
        }),
        Kind::Uint64 | Kind::Fixed64 => json!({
            "anyOf": [{"type": "string", "pattern": "^[0-9]+$"}, {"type": "integer", "minimum": 0}],
            "description": "an unsigned 64-bit integer, written as a decimal string",
        }),
        Kind::Bool => json!({"type": "boolean"}),
        Kind::String => json!({"type": "string"}),
        Kind::Bytes => json!({"type": "string", "contentEncoding": "base64"}),
        Kind::Enum(e) => {
            let names: Vec<String> = e.values().map(|v| v.name().to_owned()).collect();
            json!({"anyOf": [{"type": "string", "enum": names}, {"type": "integer"}]})
        }
        Kind::Message(m) if m.full_name() == "google.protobuf.Timestamp" => {
            json!({"type": "string", "format": "date-time"})
        }
        Kind::Message(m) => {
            add_message(schemas, m.full_name());
            reference(m.full_name())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_schema_follows_the_json_mapping() {
        let doc = document(
            "t",
            "d",
            &[Route {
                method: "post",
                path: "/x",
                summary: "s",
                bearer: true,
                request: Some("saleboard.v1.SubmitTransactionsRequest"),
                params: &[],
                answers: &[
                    (
                        200,
                        Body::Message("saleboard.v1.SubmitTransactionsResponse"),
                        "ok",
                    ),
                    (400, Body::Error, "bad"),
                ],
            }],
        );
        let schemas = &doc["components"]["schemas"];
        let tx = &schemas["saleboard.v1.Transaction"]["properties"];
        assert_eq!(tx["transaction_id"]["type"], "string");
        assert_eq!(tx["occurred_at"]["format"], "date-time");
        assert_eq!(tx["amount_minor"]["anyOf"][0]["type"], "string");
        assert!(
            tx["kind"]["anyOf"][0]["enum"]
                .as_array()
                .is_some_and(|v| v.contains(&json!("TRANSACTION_KIND_SALE")))
        );
        assert_eq!(
            schemas["saleboard.v1.SubmitTransactionsRequest"]["properties"]["transactions"]["items"]
                ["$ref"],
            "#/components/schemas/saleboard.v1.Transaction"
        );
        assert!(doc["paths"]["/x"]["post"]["security"].is_array());
        assert!(doc["paths"]["/api/v1/openapi.json"]["get"].is_object());
        // Every reference resolves.
        let text = doc.to_string();
        for name in text.split("#/components/schemas/").skip(1) {
            let name = name.split('"').next().unwrap_or_default();
            assert!(schemas.get(name).is_some_and(|s| s != &json!({})), "{name}");
        }
    }
}
