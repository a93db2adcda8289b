//! The proto3 JSON mapping of the contract's messages: the one way the project writes a message
//! as JSON (the leaderboard's `/api/v1/*` answers and screen stream, the command line's
//! `--output json`) and reads one back.
//!
//! `prost-reflect` writes it from the contract's own descriptors ([`crate::FILE_DESCRIPTOR_SET`],
//! the set reflection serves), so nothing here is written by hand and a field added to a
//! `.proto` file shows up everywhere at once. What the mapping gives:
//!
//! - 64-bit integers are strings (`"655778600"`): a browser reads money exactly (`BigInt`), and
//!   a script in any language gets the digits as the service sent them;
//! - enums by name (`"EVENT_STATE_LIVE"`), timestamps RFC 3339 in UTC (`Z`, 0, 3, 6 or 9
//!   digits of fraction);
//! - every field, its default included (`0`, `""`, `false`, `[]`), so a reader never has to
//!   know a default; only a message field that is not set (a timestamp there is none of, such
//!   as an active key's `revoked_at`) is left out, as the mapping says for fields with presence;
//! - field names as the `.proto` files spell them (`net_reporting_minor`), not lowerCamelCase:
//!   the JSON API and the big screen have always used them, and the mapping lets a writer choose
//!   (every proto3 JSON reader accepts both; [`from_str`] does too).

use std::sync::LazyLock;

use prost::{Message, Name};
use prost_reflect::{
    DescriptorPool, DeserializeOptions, DynamicMessage, MessageDescriptor, ReflectMessage as _,
    SerializeOptions,
};

/// How every message is written: 64-bit integers as strings, enums by name, `.proto` field
/// names, default values written.
const WRITE: SerializeOptions = SerializeOptions::new()
    .stringify_64_bit_integers(true)
    .use_enum_numbers(false)
    .use_proto_field_name(true)
    .skip_default_fields(false);

/// The contract's descriptors, decoded once.
static POOL: LazyLock<Result<DescriptorPool, prost_reflect::DescriptorError>> =
    LazyLock::new(|| DescriptorPool::decode(crate::FILE_DESCRIPTOR_SET));

/// A message of the contract: what [`to_string`], [`to_value`] and [`from_str`] take (every
/// generated message is one).
pub trait JsonMessage: Message + Name + Default {}

impl<M: Message + Name + Default> JsonMessage for M {}

/// Why a message could not be written or read as JSON.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// The descriptor set built with this crate does not decode, or lacks the message: a broken
    /// build, never input.
    #[error("the contract has no descriptor for {0}")]
    NoDescriptor(String),
    /// The text is not JSON of that message (a field it does not have, a wrong type, a number
    /// out of range...).
    #[error("not the JSON of a {message}: {source}")]
    Json {
        /// The message's full name.
        message: String,
        /// What serde_json found.
        #[source]
        source: serde_json::Error,
    },
    /// A message's bytes did not decode against its own descriptor: a broken build, never input.
    #[error("{message} does not match its descriptor")]
    Transcode {
        /// The message's full name.
        message: String,
        /// What prost found.
        #[source]
        source: prost::DecodeError,
    },
}

/// The contract's descriptors (`None` only for a broken build).
pub(crate) fn pool() -> Option<&'static DescriptorPool> {
    POOL.as_ref().ok()
}

fn descriptor<M: JsonMessage>() -> Result<MessageDescriptor, JsonError> {
    let name = M::full_name();
    POOL.as_ref()
        .ok()
        .and_then(|pool| pool.get_message_by_name(&name))
        .ok_or(JsonError::NoDescriptor(name))
}

/// `message` as a dynamic message of its own descriptor, which is what gets written.
fn dynamic<M: JsonMessage>(message: &M) -> Result<DynamicMessage, JsonError> {
    DynamicMessage::decode(descriptor::<M>()?, message.encode_to_vec().as_slice()).map_err(
        |source| JsonError::Transcode {
            message: M::full_name(),
            source,
        },
    )
}

/// `message` in the proto3 JSON mapping, as one line of text (fields in field-number order).
///
/// # Errors
/// Only when the build is broken (see [`JsonError`]), or a timestamp lies outside the years
/// 1 to 9999, which the mapping cannot write.
pub fn to_string<M: JsonMessage>(message: &M) -> Result<String, JsonError> {
    let mut out = serde_json::Serializer::new(Vec::new());
    dynamic(message)?
        .serialize_with_options(&mut out, &WRITE)
        .map_err(|source| JsonError::Json {
            message: M::full_name(),
            source,
        })?;
    // serde_json writes only UTF-8.
    Ok(String::from_utf8_lossy(&out.into_inner()).into_owned())
}

/// `message` in the proto3 JSON mapping, as a value to which a caller may add what is not in
/// the message (the screen's event, the command line's `changes`).
///
/// # Errors
/// As [`to_string`].
pub fn to_value<M: JsonMessage>(message: &M) -> Result<serde_json::Value, JsonError> {
    dynamic(message)?
        .serialize_with_options(serde_json::value::Serializer, &WRITE)
        .map_err(|source| JsonError::Json {
            message: M::full_name(),
            source,
        })
}

/// `message` in the proto3 JSON mapping with every secret removed: every field named `secret`,
/// at any depth, is cleared (written as `""`). What the audit log records of requests and of
/// the resources calls produce: a new API key's or organizer's secret never reaches it.
///
/// # Errors
/// As [`to_string`].
pub fn to_string_without_secrets<M: JsonMessage>(message: &M) -> Result<String, JsonError> {
    let mut dynamic = dynamic(message)?;
    clear_secrets(&mut dynamic);
    let mut out = serde_json::Serializer::new(Vec::new());
    dynamic
        .serialize_with_options(&mut out, &WRITE)
        .map_err(|source| JsonError::Json {
            message: M::full_name(),
            source,
        })?;
    // serde_json writes only UTF-8.
    Ok(String::from_utf8_lossy(&out.into_inner()).into_owned())
}

/// Clears every field named `secret` of `message` and of the messages it holds.
fn clear_secrets(message: &mut DynamicMessage) {
    let fields: Vec<_> = message.descriptor().fields().collect();
    for field in fields {
        if field.name() == "secret" {
            message.clear_field(&field);
            continue;
        }
        if !message.has_field(&field) {
            continue;
        }
        match message.get_field_mut(&field) {
            prost_reflect::Value::Message(m) => clear_secrets(m),
            prost_reflect::Value::List(items) => {
                for item in items {
                    if let prost_reflect::Value::Message(m) = item {
                        clear_secrets(m);
                    }
                }
            }
            prost_reflect::Value::Map(entries) => {
                for value in entries.values_mut() {
                    if let prost_reflect::Value::Message(m) = value {
                        clear_secrets(m);
                    }
                }
            }
            _ => {}
        }
    }
}

/// A message from its proto3 JSON mapping (either field name spelling; a field the message does
/// not have is an error).
///
/// # Errors
/// When `text` is not the JSON of an `M`.
pub fn from_str<M: JsonMessage>(text: &str) -> Result<M, JsonError> {
    let mut json = serde_json::Deserializer::from_str(text);
    let read = DynamicMessage::deserialize_with_options(
        descriptor::<M>()?,
        &mut json,
        &DeserializeOptions::new(),
    )
    .and_then(|m| json.end().map(|()| m));
    into_message(read)
}

/// A message from its proto3 JSON mapping, already parsed into a [`serde_json::Value`] (either
/// field name spelling; a field the message does not have is an error). Read by reference:
/// the value stays the caller's (to say which field failed, say).
///
/// # Errors
/// When `value` is not the JSON of an `M`.
pub fn from_value<M: JsonMessage>(value: &serde_json::Value) -> Result<M, JsonError> {
    into_message(DynamicMessage::deserialize_with_options(
        descriptor::<M>()?,
        value,
        &DeserializeOptions::new(),
    ))
}

/// The message `M` of what a deserializer read.
fn into_message<M: JsonMessage>(
    read: Result<DynamicMessage, serde_json::Error>,
) -> Result<M, JsonError> {
    read.map_err(|source| JsonError::Json {
        message: M::full_name(),
        source,
    })?
    .transcode_to::<M>()
    .map_err(|source| JsonError::Transcode {
        message: M::full_name(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Timestamp;
    use crate::v1::{
        ApiKey, Breakdown, Dimension, Event, EventState, Leaderboard, LeaderboardEntry,
        ListSitesResponse, Site,
    };

    fn leaderboard() -> Leaderboard {
        Leaderboard {
            event_id: "harbolnas".into(),
            reporting_currency: "IDR".into(),
            as_of: Some(Timestamp {
                seconds: 1_765_533_600,
                nanos: 250_000_000,
            }),
            watermark: u64::MAX,
            entries: vec![LeaderboardEntry {
                rank: 1,
                site_id: "alpha".into(),
                display_name: "Alpha".into(),
                net_reporting_minor: i64::MIN,
                sale_count: 3,
                out_of_range_currencies: vec!["JPY".into()],
                ..LeaderboardEntry::default()
            }],
            state: EventState::Live.into(),
            ..Leaderboard::default()
        }
    }

    #[test]
    fn secrets_are_removed_at_any_depth() {
        let key = ApiKey {
            key_id: "key_1".into(),
            site_id: "alpha".into(),
            secret: "sbk_very_secret".into(),
            ..ApiKey::default()
        };
        let text = to_string_without_secrets(&key).expect("json");
        assert!(!text.contains("sbk_very_secret"), "{text}");
        assert!(text.contains("key_1"), "{text}");
        let nested = crate::v1::RevokeApiKeyResponse { key: Some(key) };
        let text = to_string_without_secrets(&nested).expect("json");
        assert!(!text.contains("sbk_very_secret"), "{text}");
        assert!(text.contains("alpha"), "{text}");
    }

    #[test]
    fn sixty_four_bit_integers_are_strings_and_enums_names() {
        let j = to_value(&leaderboard()).expect("json");
        assert_eq!(j["watermark"], "18446744073709551615");
        assert_eq!(
            j["entries"][0]["net_reporting_minor"],
            "-9223372036854775808"
        );
        assert_eq!(j["entries"][0]["sale_count"], "3");
        assert_eq!(j["entries"][0]["rank"], 1, "32-bit integers stay numbers");
        assert_eq!(j["state"], "EVENT_STATE_LIVE");
        assert_eq!(j["as_of"], "2025-12-12T10:00:00.250Z");
    }

    #[test]
    fn every_field_is_written_defaults_included() {
        let j = to_value(&leaderboard()).expect("json");
        // Defaults of every kind: a number, a 64-bit number, a string, a bool, a list.
        assert_eq!(j["entries"][0]["refund_count"], "0");
        assert_eq!(j["baseline_event_id"], "");
        assert_eq!(j["entries"][0]["out_of_range"], false);
        assert_eq!(
            j["entries"][0]["unconverted_currencies"],
            serde_json::json!([])
        );
        assert_eq!(j["entries"][0]["out_of_range_currencies"][0], "JPY");
        let event = to_value(&Event::default()).expect("json");
        assert_eq!(event["state"], "EVENT_STATE_UNSPECIFIED");
        // Every field of the message is there, under its .proto name, and nothing else.
        let written: Vec<&str> = j
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        let mut fields: Vec<String> = descriptor::<Leaderboard>()
            .expect("descriptor")
            .fields()
            .map(|f| f.name().to_owned())
            .collect();
        fields.sort();
        assert_eq!(written, fields);
        // An unset message field (no timestamp) is left out.
        let key = to_value(&ApiKey::default()).expect("json");
        assert!(key.get("revoked_at").is_none(), "{key}");
        assert_eq!(key["key_id"], "");
    }

    #[test]
    fn what_is_written_reads_back_the_same() {
        let board = leaderboard();
        let text = to_string(&board).expect("json");
        assert!(!text.contains('\n'), "one line: {text}");
        assert_eq!(from_str::<Leaderboard>(&text).expect("read"), board);
        let sites = ListSitesResponse {
            sites: vec![Site {
                site_id: "alpha".into(),
                disabled: true,
                disabled_at: Some(Timestamp {
                    seconds: 0,
                    nanos: 0,
                }),
                ..Site::default()
            }],
        };
        assert_eq!(
            from_str::<ListSitesResponse>(&to_string(&sites).expect("json")).expect("read"),
            sites
        );
        let breakdown = Breakdown {
            dimension: Dimension::Origin.into(),
            ..Breakdown::default()
        };
        let j = to_value(&breakdown).expect("json");
        assert_eq!(j["dimension"], "DIMENSION_ORIGIN");
        assert_eq!(
            from_str::<Breakdown>(&j.to_string()).expect("read"),
            breakdown
        );
    }

    #[test]
    fn reading_takes_either_spelling_and_refuses_what_is_not_the_message() {
        let camel = r#"{"eventId": "e", "watermark": 7, "nationalNetReportingMinor": "-5"}"#;
        let b = from_str::<Leaderboard>(camel).expect("lowerCamelCase and numbers are read too");
        assert_eq!(
            (
                b.event_id.as_str(),
                b.watermark,
                b.national_net_reporting_minor
            ),
            ("e", 7, -5)
        );
        for bad in [
            r#"{"no_such_field": 1}"#,
            r#"{"watermark": "-1"}"#,
            r#"{"state": "EVENT_STATE_NOPE"}"#,
            r#"{"event_id": "e"} trailing"#,
            "[]",
        ] {
            let error = from_str::<Leaderboard>(bad).expect_err(bad);
            assert!(
                error.to_string().contains("saleboard.v1.Leaderboard"),
                "{bad}: {error}"
            );
        }
    }
}
