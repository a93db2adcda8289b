//! Requests as raw bytes: what a careless or hostile client can send that the generated
//! clients never would (bytes that do not decode, millions of empty transactions without
//! building them in memory).

use std::net::SocketAddr;

use saleboard_proto::v1::SubmitTransactionsResponse;

/// Sends raw bytes, decodes the answer with prost.
#[derive(Debug, Clone, Copy)]
pub struct RawCodec;

/// Writes the bytes as they are.
#[derive(Debug)]
pub struct RawEncoder;

impl tonic::codec::Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        prost::bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = SubmitTransactionsResponse;
    type Encoder = RawEncoder;
    type Decoder = tonic_prost::ProstDecoder<SubmitTransactionsResponse>;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        tonic_prost::ProstDecoder::default()
    }
}

/// `n` empty transactions as a `SubmitTransactionsRequest`: 2 bytes each on the wire.
#[must_use]
pub fn empty_transactions(n: usize) -> Vec<u8> {
    [0x0a, 0x00].repeat(n)
}

/// Sends `bytes` as the body of an `IngestService.SubmitTransactions` request to `addr`.
///
/// # Errors
/// The status the server answered with.
///
/// # Panics
/// When the server cannot be reached.
pub async fn raw_submit(
    addr: SocketAddr,
    secret: &str,
    bytes: Vec<u8>,
) -> Result<SubmitTransactionsResponse, tonic::Status> {
    let channel = crate::app::channel(addr).await;
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("ready");
    let mut request = tonic::Request::new(bytes);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {secret}").parse().expect("ascii"),
    );
    grpc.unary(
        request,
        "/saleboard.v1.IngestService/SubmitTransactions"
            .parse()
            .expect("path"),
        RawCodec,
    )
    .await
    .map(tonic::Response::into_inner)
}
