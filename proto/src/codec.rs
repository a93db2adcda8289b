//! The codec of every `saleboard.v1` service and client: prost, with two differences that matter
//! to a server facing careless and hostile clients.
//!
//! - A request whose top-level repeated field has more elements than the message type allows
//!   ([`DecodeLimit`]) is refused by counting the field on the wire, before anything is
//!   decoded: an empty `Transaction` is 2 bytes on the wire but over a hundred in memory, so a
//!   size limit alone would let one message of a few megabytes expand into a gigabyte.
//! - Bytes that do not decode are INVALID_ARGUMENT (the client sent them), not INTERNAL.

use std::marker::PhantomData;

use prost::Message;
use prost::bytes::Buf;
use prost::encoding::{DecodeContext, decode_key, skip_field};
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder};

/// How many elements a message type allows in one top-level repeated field, counted before
/// decoding. Every message of the contract implements it (most with no limit).
pub trait DecodeLimit {
    /// `(field number, most elements)`, or `None` for no limit beyond the message size.
    const REPEATED_LIMIT: Option<(u32, usize)> = None;
}

/// Most transactions in one ingest request, whatever `--max-batch` says: the ceiling of that
/// flag, checked on the wire before decoding.
pub const MAX_TRANSACTIONS_PER_REQUEST: usize = 10_000;

/// Largest encoded size of a valid `Transaction` inside a request: ids of at most 64 ASCII
/// characters, a 3-letter currency, the amount, the timestamp, brand and category slugs of at
/// most 40 characters, the origin, and framing (checked by a test
/// against a transaction with every field at its widest).
pub const MAX_TRANSACTION_WIRE_BYTES: usize = 384;

/// Most exchange rates in one `SetExchangeRates` request (ISO 4217 has under 200 currencies).
pub const MAX_RATES_PER_REQUEST: usize = 1_000;

/// The codec named in the generated code (`codec_path`).
#[derive(Debug, Clone)]
pub struct SaleboardCodec<T, U> {
    _pd: PhantomData<(T, U)>,
}

impl<T, U> Default for SaleboardCodec<T, U> {
    fn default() -> Self {
        Self { _pd: PhantomData }
    }
}

impl<T, U> Codec for SaleboardCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + DecodeLimit + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = tonic_prost::ProstEncoder<T>;
    type Decoder = SaleboardDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        tonic_prost::ProstEncoder::default()
    }

    fn decoder(&mut self) -> Self::Decoder {
        SaleboardDecoder { _pd: PhantomData }
    }
}

/// Decodes `U` after checking its [`DecodeLimit`] on the wire.
#[derive(Debug, Clone)]
pub struct SaleboardDecoder<U> {
    _pd: PhantomData<U>,
}

impl<U: Message + Default + DecodeLimit> Decoder for SaleboardDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        if let Some((field, most)) = U::REPEATED_LIMIT {
            // A DecodeBuf over tonic's BytesMut is one contiguous chunk; should it ever not
            // be, the message is copied once and decoded from the copy.
            if buf.chunk().len() != buf.remaining() {
                let bytes = buf.copy_to_bytes(buf.remaining());
                check_count::<U>(&bytes, field, most)?;
                return U::decode(bytes).map(Some).map_err(not_decodable::<U>);
            }
            check_count::<U>(buf.chunk(), field, most)?;
        }
        U::decode(buf).map(Some).map_err(not_decodable::<U>)
    }
}

/// What the decoder does, on a byte slice: checks `U`'s [`DecodeLimit`] on the wire, then
/// decodes. (For fuzzing and tests; the server goes through [`SaleboardDecoder`].)
///
/// # Errors
/// INVALID_ARGUMENT when the bytes do not decode or have too many elements.
pub fn decode_bounded<U: Message + Default + DecodeLimit>(bytes: &[u8]) -> Result<U, Status> {
    if let Some((field, most)) = U::REPEATED_LIMIT {
        check_count::<U>(bytes, field, most)?;
    }
    U::decode(bytes).map_err(not_decodable::<U>)
}

fn check_count<U>(bytes: &[u8], field: u32, most: usize) -> Result<(), Status> {
    let n = count_field(bytes, field, most).map_err(not_decodable::<U>)?;
    if n > most {
        return Err(too_many::<U>(field, most));
    }
    Ok(())
}

fn type_name<U>() -> &'static str {
    let name = std::any::type_name::<U>();
    name.rsplit("::").next().unwrap_or(name)
}

fn not_decodable<U>(e: prost::DecodeError) -> Status {
    Status::invalid_argument(format!(
        "the request is not a valid saleboard.v1.{} message: {e}",
        type_name::<U>()
    ))
}

fn too_many<U>(field: u32, most: usize) -> Status {
    Status::invalid_argument(format!(
        "saleboard.v1.{} field {field}: more than {most} elements in one message; split it",
        type_name::<U>()
    ))
}

/// Occurrences of top-level `field` in an encoded message, stopping once past `most`.
///
/// # Errors
/// When the bytes are not a protobuf message.
pub fn count_field(mut bytes: &[u8], field: u32, most: usize) -> Result<usize, prost::DecodeError> {
    let mut n = 0;
    while bytes.has_remaining() {
        let (tag, wire_type) = decode_key(&mut bytes)?;
        if tag == field {
            n += 1;
            if n > most {
                return Ok(n);
            }
        }
        skip_field(wire_type, tag, &mut bytes, DecodeContext::default())?;
    }
    Ok(n)
}

macro_rules! no_limit {
    ($($t:ident),* $(,)?) => {
        $(impl DecodeLimit for crate::v1::$t {})*
    };
}

impl DecodeLimit for crate::v1::SubmitTransactionsRequest {
    const REPEATED_LIMIT: Option<(u32, usize)> = Some((1, MAX_TRANSACTIONS_PER_REQUEST));
}

impl DecodeLimit for crate::v1::SetExchangeRatesRequest {
    const REPEATED_LIMIT: Option<(u32, usize)> = Some((1, MAX_RATES_PER_REQUEST));
}

// Everything else a service or a client decodes: bounded by the message size alone.
no_limit!(
    // Organizers only, behind the admin listener and its auth; the ids are counted by the
    // service (at most 1,000).
    AdjustTransactionsRequest,
    GetBreakdownRequest,
    Breakdown,
    SubmitTransactionsResponse,
    WhoAmIRequest,
    WhoAmIResponse,
    SetSiteEnabledRequest,
    ListEventsRequest,
    ListEventsResponse,
    CreateSiteRequest,
    Site,
    ListSitesRequest,
    ListSitesResponse,
    CreateApiKeyRequest,
    ApiKey,
    RevokeApiKeyRequest,
    RevokeApiKeyResponse,
    ListApiKeysRequest,
    ListApiKeysResponse,
    Event,
    GetEventRequest,
    SetExchangeRatesResponse,
    ListExchangeRatesRequest,
    ListExchangeRatesResponse,
    GetLeaderboardRequest,
    Leaderboard,
    WatchLeaderboardRequest,
    GetSiteTotalsRequest,
    SiteTotals,
    GetNationalTotalsRequest,
    NationalTotals,
    GetAggregatorStatusRequest,
    AggregatorStatus,
    CreateOrganizerRequest,
    Organizer,
    ListOrganizersRequest,
    ListOrganizersResponse,
    RevokeOrganizerRequest,
    ListAuditLogRequest,
    ListAuditLogResponse,
    SetSiteHoldRequest,
    AdminAction,
    ApproveActionRequest,
    RejectActionRequest,
    ListActionsRequest,
    ListActionsResponse,
    IntegrityPolicy,
    GetIntegrityPolicyRequest,
    ListIntegrityFlagsRequest,
    ListIntegrityFlagsResponse,
    GetIntegrityFlagRequest,
    IntegrityFlag,
    ReviewIntegrityFlagRequest,
    SampleIntegrityFlagRequest,
    IntegritySample,
    BacktestIntegrityRequest,
    IntegrityBacktest,
    GetEventReportRequest,
    EventReport,
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::{SubmitTransactionsRequest, Transaction};

    fn encoded(n: usize) -> Vec<u8> {
        SubmitTransactionsRequest {
            transactions: vec![Transaction::default(); n],
        }
        .encode_to_vec()
    }

    #[test]
    fn the_widest_valid_transaction_fits_its_budget() {
        let id = "x".repeat(64);
        let widest = SubmitTransactionsRequest {
            transactions: vec![Transaction {
                transaction_id: id.clone(),
                store_id: id.clone(),
                kind: i32::MAX,
                currency: "IDR".into(),
                amount_minor: i64::MIN,
                occurred_at: Some(prost_types::Timestamp {
                    seconds: i64::MIN,
                    nanos: i32::MIN,
                }),
                refund_of: id,
                // Segments: slugs of at most 40 characters; an origin as wide as any number.
                brand: "b".repeat(40),
                category: "c".repeat(40),
                origin: i32::MIN,
            }],
        };
        assert!(
            widest.encoded_len() <= MAX_TRANSACTION_WIRE_BYTES,
            "{}",
            widest.encoded_len()
        );
    }

    #[test]
    fn counts_the_repeated_field_without_decoding() {
        assert_eq!(count_field(&encoded(0), 1, 10), Ok(0));
        assert_eq!(count_field(&encoded(7), 1, 10), Ok(7));
        assert_eq!(
            count_field(&encoded(50), 1, 10),
            Ok(11),
            "stops past the limit"
        );
        assert_eq!(count_field(&encoded(7), 2, 10), Ok(0));
        assert!(
            count_field(&[0x0a, 0x05, 0x00], 1, 10).is_err(),
            "truncated"
        );
        assert!(count_field(&[0xff; 11], 1, 10).is_err(), "bad varint");
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(5_000))]

            /// Any bytes decode or are refused with INVALID_ARGUMENT; nothing panics.
            #[test]
            fn any_bytes_decode_or_are_invalid_argument(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
                if let Err(status) = decode_bounded::<SubmitTransactionsRequest>(&bytes) {
                    prop_assert_eq!(status.code(), tonic::Code::InvalidArgument);
                }
                if let Err(status) = decode_bounded::<crate::v1::Leaderboard>(&bytes) {
                    prop_assert_eq!(status.code(), tonic::Code::InvalidArgument);
                }
            }

            /// The wire count is the number of transactions decoded.
            #[test]
            fn the_wire_count_matches_the_decoded_count(
                ids in proptest::collection::vec(".{0,20}", 0..40),
                amount in any::<i64>(),
            ) {
                let request = SubmitTransactionsRequest {
                    transactions: ids
                        .iter()
                        .map(|id| Transaction {
                            transaction_id: id.clone(),
                            amount_minor: amount,
                            ..Transaction::default()
                        })
                        .collect(),
                };
                let bytes = request.encode_to_vec();
                prop_assert_eq!(count_field(&bytes, 1, usize::MAX), Ok(ids.len()));
                prop_assert_eq!(decode_bounded::<SubmitTransactionsRequest>(&bytes).ok(), Some(request));
            }
        }
    }
}
