//! Every service accepts gzip- and zstd-compressed requests and compresses its answers when the
//! client asks: what a retailer's backend or a screen on a slow link would turn on.

use saleboard_proto::v1::aggregator_service_client::AggregatorServiceClient;
use saleboard_proto::v1::leaderboard_service_client::LeaderboardServiceClient;
use saleboard_proto::v1::{
    GetAggregatorStatusRequest, GetLeaderboardRequest, Outcome, SubmitTransactionsRequest,
};
use saleboard_tests::app::channel;
use saleboard_tests::data::sale;
use saleboard_tests::{Backend, TestApp};
use tonic::codec::CompressionEncoding;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gzip_and_zstd_on_every_service() {
    let app = TestApp::spawn(Backend::Sqlite)
        .await
        .expect("sqlite always runs");
    app.set_event().await;
    let (_, key) = app.site_with_key("alpha").await;
    for (i, encoding) in [CompressionEncoding::Gzip, CompressionEncoding::Zstd]
        .into_iter()
        .enumerate()
    {
        let mut ingest = app
            .ingest(&key)
            .await
            .send_compressed(encoding)
            .accept_compressed(encoding);
        // Large enough that compression really applies.
        let batch = SubmitTransactionsRequest {
            transactions: (0..500)
                .map(|n| sale(&format!("Z{i}-{n}"), "IDR", 1000))
                .collect(),
        };
        let response = ingest
            .submit_transactions(batch)
            .await
            .unwrap_or_else(|s| panic!("{encoding:?} request: {s:?}"));
        let encoding_header = response
            .metadata()
            .get("grpc-encoding")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        assert_eq!(
            encoding_header.as_deref(),
            Some(match encoding {
                CompressionEncoding::Gzip => "gzip",
                _ => "zstd",
            }),
            "the answer is compressed as asked"
        );
        assert!(
            response
                .into_inner()
                .results
                .iter()
                .all(|r| r.outcome() == Outcome::Accepted)
        );

        let mut board = LeaderboardServiceClient::new(channel(app.leaderboard_addr).await)
            .send_compressed(encoding)
            .accept_compressed(encoding);
        board
            .get_leaderboard(GetLeaderboardRequest {
                limit: 10,
                ..GetLeaderboardRequest::default()
            })
            .await
            .unwrap_or_else(|s| panic!("{encoding:?} leaderboard: {s:?}"));
        let mut aggregator = AggregatorServiceClient::new(channel(app.aggregator_addr).await)
            .send_compressed(encoding)
            .accept_compressed(encoding);
        aggregator
            .get_status(GetAggregatorStatusRequest::default())
            .await
            .unwrap_or_else(|s| panic!("{encoding:?} aggregator: {s:?}"));
    }
    app.stop().await;
}
