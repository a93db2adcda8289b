//! Many streaming clients at once: 8 clients of 4 sites (two per site) each send 20,000
//! transactions over StreamTransactions, 10% of them resubmissions (of their own or their
//! partner's ids). Afterwards the ledger holds exactly the unique transactions, every id was
//! told ACCEPTED exactly once, and each site's sum matches what its clients were told.

use std::collections::{BTreeMap, BTreeSet};

use saleboard_proto::v1::Outcome;
use saleboard_tests::data::now_secs;
use saleboard_tests::load::{SplitMix, amount_of, batches, sale_of};
use saleboard_tests::{Backend, TestApp, backend_tests};

const CLIENTS: usize = 8;
const SITES: usize = 4;
const PER_CLIENT: usize = 20_000;
const BATCH: usize = 500;

struct ClientReport {
    site: usize,
    accepted: Vec<String>,
    sent_unique: BTreeSet<String>,
}

async fn eight_streaming_clients_count_exactly_once(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |c| c.site_rate_limit = 0).await else {
        return;
    };
    app.set_event().await;
    let mut secrets = Vec::new();
    for s in 0..SITES {
        secrets.push(app.site_with_key(&format!("site-{s}")).await.1);
    }
    let occurred_at = now_secs() - 120;

    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let site = c % SITES;
        let partner = (c + SITES) % CLIENTS;
        let mut client = app.ingest(&secrets[site]).await;
        tasks.push(tokio::spawn(async move {
            let mut rng = SplitMix::new(c as u64 + 1);
            let mut txs = Vec::with_capacity(PER_CLIENT);
            let mut sent_unique = BTreeSet::new();
            let mut fresh = 0usize;
            for i in 0..PER_CLIENT {
                let id = if i % 10 == 9 {
                    // Resubmission: an id of this client or its partner (same site), which the
                    // partner may or may not have sent yet.
                    let owner = if rng.below(2) == 0 { c } else { partner };
                    let upto = u64::try_from(fresh.max(1)).unwrap_or(1);
                    format!("c{owner}-{}", rng.below(upto))
                } else {
                    fresh += 1;
                    format!("c{c}-{}", fresh - 1)
                };
                sent_unique.insert(id.clone());
                txs.push(sale_of(&id, occurred_at));
            }
            let requests = batches(txs, BATCH);
            let expected_responses = requests.len();
            let mut stream = client
                .stream_transactions(tokio_stream::iter(requests))
                .await
                .expect("stream")
                .into_inner();
            let mut accepted = Vec::new();
            let mut responses = 0;
            while let Some(r) = stream.message().await.expect("response") {
                responses += 1;
                for t in r.results {
                    match t.outcome() {
                        Outcome::Accepted => accepted.push(t.transaction_id),
                        Outcome::Duplicate => {}
                        other => panic!(
                            "{} got {other:?} {} {}",
                            t.transaction_id, t.reason, t.message
                        ),
                    }
                }
            }
            assert_eq!(responses, expected_responses, "one response per request");
            ClientReport {
                site,
                accepted,
                sent_unique,
            }
        }));
    }

    let mut told_accepted: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    let mut sent: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    for t in tasks {
        let report = t.await.expect("client task");
        let site_accepted = told_accepted.entry(report.site).or_default();
        for id in report.accepted {
            assert!(
                site_accepted.insert(id.clone()),
                "{id} was told ACCEPTED twice"
            );
        }
        sent.entry(report.site)
            .or_default()
            .extend(report.sent_unique);
    }

    let mut ledger: BTreeMap<String, (BTreeSet<String>, i128)> = BTreeMap::new();
    let mut after = 0;
    loop {
        let rows = app.store.read_ledger(after, 10_000).await.expect("ledger");
        let Some(last) = rows.last() else { break };
        after = last.position;
        for r in rows {
            let entry = ledger.entry(r.site.to_string()).or_default();
            assert!(
                entry.0.insert(r.tx.id.to_string()),
                "{} stored twice",
                r.tx.id
            );
            entry.1 += i128::from(r.tx.amount_minor);
        }
    }
    let mut total = 0;
    for s in 0..SITES {
        let (ids, sum) = ledger.get(&format!("site-{s}")).expect("site has rows");
        assert_eq!(
            ids, &sent[&s],
            "site-{s}: the ledger holds exactly the unique transactions sent"
        );
        assert_eq!(
            ids, &told_accepted[&s],
            "site-{s}: every stored id was told ACCEPTED once"
        );
        let told_sum: i128 = told_accepted[&s]
            .iter()
            .map(|id| i128::from(amount_of(id)))
            .sum();
        assert_eq!(*sum, told_sum, "site-{s}: sum matches what was ACCEPTED");
        total += ids.len();
    }
    assert_eq!(
        app.store.ledger_head().await.expect("head"),
        u64::try_from(total).expect("fits")
    );
}

backend_tests!(eight_streaming_clients_count_exactly_once);
