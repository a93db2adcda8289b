//! What ingest does with the bytes of a request: the wire count, the decode, and validation of
//! every transaction (the rules that need only the transaction and the clock). Nothing may
//! panic; a refusal is INVALID_ARGUMENT.
#![no_main]

use libfuzzer_sys::fuzz_target;
use saleboard_domain::transaction::validate;
use saleboard_domain::{Limits, UnixNanos};
use saleboard_proto::codec::decode_bounded;
use saleboard_proto::v1::SubmitTransactionsRequest;

fuzz_target!(|bytes: &[u8]| {
    let request = match decode_bounded::<SubmitTransactionsRequest>(bytes) {
        Ok(request) => request,
        Err(status) => {
            assert_eq!(status.code(), tonic::Code::InvalidArgument);
            return;
        }
    };
    let now = UnixNanos(1_800_000_000_000_000_000);
    for t in &request.transactions {
        let input = saleboard_ingest::grpc::transaction_input(t);
        if let Err(rejection) = validate(&input, now, &Limits::default()) {
            // At most 64 characters of any field are echoed; escaped, each is at most 10.
            assert!(
                rejection.message.chars().count() < 1024,
                "{}",
                rejection.message
            );
        }
    }
});
