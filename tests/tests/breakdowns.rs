//! What sold, not only where (issue 13), black-box over gRPC on both databases: the segment
//! fields' reasons, refunds inheriting (and mismatching) their sale's segments, idempotency
//! with segments, and every breakdown, national and per site, against an independent model
//! (ranking, ties, conversion, unconverted currencies, the empty key, paging); who may read a
//! site's breakdown; disabled sites; `verify`; the command line.

use std::collections::{BTreeMap, BTreeSet};

use saleboard_proto::v1::{
    Breakdown, Dimension, ExchangeRate, GetBreakdownRequest, GetNationalTotalsRequest, Origin,
    Outcome, SetExchangeRatesRequest, SetSiteEnabledRequest, SubmitTransactionsRequest,
    Transaction, TransactionKind,
};
use saleboard_tests::data::{now_secs, sale};
use saleboard_tests::{Backend, TestApp, backend_tests};
use tonic::Code;

fn seg(mut t: Transaction, brand: &str, category: &str, origin: Origin) -> Transaction {
    t.brand = brand.into();
    t.category = category.into();
    t.origin = origin.into();
    t
}

fn refund(id: &str, of: &str, currency: &str, amount: i64) -> Transaction {
    Transaction {
        transaction_id: id.into(),
        kind: TransactionKind::Refund.into(),
        refund_of: of.into(),
        ..sale(id, currency, amount)
    }
}

/// (outcome, reason) per transaction.
async fn push(app: &TestApp, secret: &str, txs: Vec<Transaction>) -> Vec<(Outcome, String)> {
    app.ingest(secret)
        .await
        .submit_transactions(SubmitTransactionsRequest { transactions: txs })
        .await
        .expect("push")
        .into_inner()
        .results
        .into_iter()
        .map(|r| (r.outcome(), r.reason))
        .collect()
}

fn ok() -> (Outcome, String) {
    (Outcome::Accepted, String::new())
}

fn dup() -> (Outcome, String) {
    (Outcome::Duplicate, String::new())
}

fn no(reason: &str) -> (Outcome, String) {
    (Outcome::Rejected, reason.to_owned())
}

fn request(dimension: Dimension, site: &str, limit: u32, token: &str) -> GetBreakdownRequest {
    GetBreakdownRequest {
        event_id: String::new(),
        dimension: dimension.into(),
        site_id: site.into(),
        limit,
        page_token: token.into(),
    }
}

async fn segments_reasons_refunds_and_idempotency(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.set_event().await;
    let (_, secret) = app.site_with_key("alpha").await;
    let s1 = seg(
        sale("S1", "IDR", 10_000),
        "nestle",
        "food",
        Origin::Domestic,
    );
    let got = push(
        &app,
        &secret,
        vec![
            seg(sale("X1", "IDR", 1), "Nestle", "", Origin::Unspecified),
            seg(sale("X2", "IDR", 1), "", "food drink", Origin::Unspecified),
            seg(
                sale("X3", "IDR", 1),
                &"b".repeat(41),
                "",
                Origin::Unspecified,
            ),
            Transaction {
                origin: 7,
                ..sale("X4", "IDR", 1)
            },
            s1.clone(),
            s1.clone(),
            seg(
                sale("S1", "IDR", 10_000),
                "unilever",
                "food",
                Origin::Domestic,
            ),
            sale("S1", "IDR", 10_000),
            // Refunds: bare (takes the sale's), again bare and naming the sale's brand (the
            // same refund), a different brand or origin (refused), all three as the sale's.
            refund("R1", "S1", "IDR", 1_000),
            refund("R1", "S1", "IDR", 1_000),
            seg(
                refund("R1", "S1", "IDR", 1_000),
                "nestle",
                "",
                Origin::Unspecified,
            ),
            seg(
                refund("R2", "S1", "IDR", 1_000),
                "unilever",
                "",
                Origin::Unspecified,
            ),
            seg(
                refund("R3", "S1", "IDR", 1_000),
                "",
                "",
                Origin::CrossBorder,
            ),
            seg(
                refund("R4", "S1", "IDR", 2_000),
                "nestle",
                "food",
                Origin::Domestic,
            ),
            // A sale without segments: a refund naming one does not match it.
            sale("S2", "IDR", 500),
            seg(
                refund("R5", "S2", "IDR", 100),
                "nestle",
                "",
                Origin::Unspecified,
            ),
            refund("R6", "S2", "IDR", 100),
        ],
    )
    .await;
    assert_eq!(
        got,
        [
            no("INVALID_BRAND"),
            no("INVALID_CATEGORY"),
            no("INVALID_BRAND"),
            no("INVALID_ORIGIN"),
            ok(),
            dup(),
            no("ID_CONFLICT"),
            no("ID_CONFLICT"),
            ok(),
            dup(),
            dup(),
            no("REFUND_SEGMENT_MISMATCH"),
            no("REFUND_SEGMENT_MISMATCH"),
            ok(),
            ok(),
            no("REFUND_SEGMENT_MISMATCH"),
            ok(),
        ]
    );
    // The messages name the field.
    let results = app
        .ingest(&secret)
        .await
        .submit_transactions(SubmitTransactionsRequest {
            transactions: vec![
                seg(sale("Y1", "IDR", 1), "", "Food", Origin::Unspecified),
                seg(
                    refund("R7", "S1", "IDR", 1),
                    "",
                    "toys",
                    Origin::Unspecified,
                ),
            ],
        })
        .await
        .expect("push")
        .into_inner()
        .results;
    assert!(
        results[0].message.starts_with("category \"Food\""),
        "{}",
        results[0].message
    );
    assert!(
        results[1]
            .message
            .contains(r#"category "toys" (the sale's: "food")"#),
        "{}",
        results[1].message
    );

    // Stored: every refund with its sale's segments.
    app.settle().await;
    let rows = app.store.read_ledger(0, 100).await.expect("ledger");
    for r in &rows {
        let want = match r
            .tx
            .refund_of()
            .map(saleboard_domain::TransactionId::as_str)
        {
            Some("S1") | None if r.tx.id.as_str() != "S2" => ("nestle", "food", "domestic"),
            _ => ("", "", ""),
        };
        let got = (
            r.tx.segments.key(saleboard_domain::Dimension::Brand),
            r.tx.segments.key(saleboard_domain::Dimension::Category),
            r.tx.segments.key(saleboard_domain::Dimension::Origin),
        );
        assert_eq!(got, want, "{}", r.tx.id);
    }
    // And counted so: nestle 10,000 - 1,000 - 2,000; the bare sale and its refund under "".
    let b = app
        .leaderboard()
        .await
        .get_breakdown(request(Dimension::Brand, "", 10, ""))
        .await
        .expect("breakdown")
        .into_inner();
    let entries: Vec<(u32, &str, i64, u64, u64, u32)> = b
        .entries
        .iter()
        .map(|e| {
            (
                e.rank,
                e.key.as_str(),
                e.net_reporting_minor,
                e.sale_count,
                e.refund_count,
                e.site_count,
            )
        })
        .collect();
    assert_eq!(
        entries,
        [(1, "nestle", 7_000, 1, 2, 1), (2, "", 400, 1, 1, 1)]
    );
    assert_eq!(b.total_net_reporting_minor, 7_400);
    let national = app
        .leaderboard()
        .await
        .get_national_totals(GetNationalTotalsRequest::default())
        .await
        .expect("national")
        .into_inner();
    assert_eq!(national.net_reporting_minor, 7_400);
    assert_eq!(b.watermark, national.watermark);
}

/// One accepted transaction as the model sees it.
#[derive(Debug, Clone)]
struct Row {
    site: &'static str,
    currency: &'static str,
    /// Positive for a sale, negative for a refund.
    amount: i64,
    keys: [&'static str; 3],
}

/// Minor units of `from` into minor units of IDR at `rate` (IDR per major unit), half-even:
/// written here from the definition, not with the server's code.
fn to_idr(net: i128, from: &str, rate: &str) -> i128 {
    let exponent = |c: &str| match c {
        "JPY" => 0,
        _ => 2,
    };
    let (whole, frac) = rate.split_once('.').unwrap_or((rate, ""));
    let mantissa: i128 = format!("{whole}{frac}").parse().expect("rate");
    let shift = 2 - exponent(from) - i32::try_from(frac.len()).expect("scale");
    let product = net * mantissa;
    if shift >= 0 {
        return product * 10_i128.pow(shift.unsigned_abs());
    }
    let d = 10_i128.pow(shift.unsigned_abs());
    let (q, r) = (product.div_euclid(d), product.rem_euclid(d));
    match (2 * r).cmp(&d) {
        std::cmp::Ordering::Less => q,
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => q + (q % 2),
    }
}

/// (rank, key, net, sales, refunds, sites, unconverted) of every key of a dimension.
type Line = (u32, String, i64, u64, u64, u32, Vec<String>);

fn model(rows: &[Row], dimension: usize, site: Option<&str>, rates: &[(&str, &str)]) -> Vec<Line> {
    let mut by_key: BTreeMap<&str, BTreeMap<&str, (i128, u64, u64)>> = BTreeMap::new();
    let mut sites: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for r in rows.iter().filter(|r| site.is_none_or(|s| s == r.site)) {
        let key = r.keys[dimension];
        let e = by_key
            .entry(key)
            .or_default()
            .entry(r.currency)
            .or_default();
        e.0 += i128::from(r.amount);
        if r.amount > 0 {
            e.1 += 1;
        } else {
            e.2 += 1;
        }
        sites.entry(key).or_default().insert(r.site);
    }
    let mut lines: Vec<Line> = by_key
        .iter()
        .map(|(key, currencies)| {
            let mut net = 0_i128;
            let mut unconverted = Vec::new();
            let (mut sales, mut refunds) = (0, 0);
            for (currency, (n, s, r)) in currencies {
                sales += s;
                refunds += r;
                if *currency == "IDR" {
                    net += n;
                } else if let Some((_, rate)) = rates.iter().find(|(c, _)| c == currency) {
                    net += to_idr(*n, currency, rate);
                } else {
                    unconverted.push((*currency).to_owned());
                }
            }
            (
                0,
                (*key).to_owned(),
                i64::try_from(net).expect("small"),
                sales,
                refunds,
                u32::try_from(sites[key].len()).expect("few"),
                unconverted,
            )
        })
        .collect();
    lines.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.1.cmp(&b.1)));
    for i in 0..lines.len() {
        lines[i].0 = if i > 0 && lines[i].2 == lines[i - 1].2 {
            lines[i - 1].0
        } else {
            u32::try_from(i + 1).expect("few")
        };
    }
    lines
}

fn lines(b: &[Breakdown]) -> Vec<Line> {
    b.iter()
        .flat_map(|b| &b.entries)
        .map(|e| {
            (
                e.rank,
                e.key.clone(),
                e.net_reporting_minor,
                e.sale_count,
                e.refund_count,
                e.site_count,
                e.unconverted_currencies.clone(),
            )
        })
        .collect()
}

const DIMENSIONS: [Dimension; 3] = [Dimension::Brand, Dimension::Category, Dimension::Origin];

async fn breakdowns_against_a_model(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.set_event().await;
    let rates = [("USD", "15850.25"), ("JPY", "105.75")];
    app.admin()
        .await
        .set_exchange_rates(SetExchangeRatesRequest {
            rates: rates
                .iter()
                .map(|(c, r)| ExchangeRate {
                    currency: (*c).into(),
                    rate: (*r).into(),
                })
                .collect(),
            event_id: String::new(),
        })
        .await
        .expect("rates");
    let mut secrets = BTreeMap::new();
    for site in ["alpha", "beta", "gamma"] {
        secrets.insert(site, app.site_with_key(site).await.1);
    }
    // Sales over three sites, four currencies (EUR has no rate), brands with a tie (tie-a and
    // tie-b), transactions without a brand or category or origin, and refunds.
    let brands = ["nestle", "wardah", "tie-a", "tie-b", "", "samsung"];
    let categories = ["food", "beauty", "", "electronics"];
    let origins = [Origin::Domestic, Origin::CrossBorder, Origin::Unspecified];
    let origin_key = |o: Origin| match o {
        Origin::Domestic => "domestic",
        Origin::CrossBorder => "cross-border",
        Origin::Unspecified => "",
    };
    let mut model_rows = Vec::new();
    let mut per_site: BTreeMap<&str, Vec<Transaction>> = BTreeMap::new();
    for i in 0..36_usize {
        let site = ["alpha", "beta", "gamma"][i % 3];
        let (brand, category, origin) = (brands[i % 6], categories[i % 4], origins[i % 3]);
        let (currency, amount) = match i % 5 {
            0 => ("USD", 1_234 + i64::try_from(i).expect("small")),
            1 => ("JPY", 777),
            2 => ("EUR", 5_000),
            _ => ("IDR", 100_000 * i64::try_from(i).expect("small")),
        };
        // The tie: tie-a and tie-b sell exactly the same in IDR.
        let (currency, amount) = if matches!(brand, "tie-a" | "tie-b") {
            ("IDR", 4_242_400)
        } else {
            (currency, amount)
        };
        let id = format!("S{i}");
        per_site.entry(site).or_default().push(seg(
            sale(&id, currency, amount),
            brand,
            category,
            origin,
        ));
        let keys = [brand, category, origin_key(origin)];
        model_rows.push(Row {
            site,
            currency,
            amount,
            keys,
        });
        if i % 4 == 1 && !matches!(brand, "tie-a" | "tie-b") {
            per_site.entry(site).or_default().push(refund(
                &format!("R{i}"),
                &id,
                currency,
                amount / 3,
            ));
            model_rows.push(Row {
                site,
                currency,
                amount: -(amount / 3),
                keys,
            });
        }
    }
    for (site, txs) in &per_site {
        let n = txs.len();
        assert_eq!(push(&app, &secrets[site], txs.clone()).await, vec![ok(); n]);
    }
    app.settle().await;

    let mut board = app.leaderboard().await;
    let mut organizer = app.leaderboard_as(&app.token).await;
    for (d, dimension) in DIMENSIONS.into_iter().enumerate() {
        // National, two entries a page, following the tokens.
        let mut pages = Vec::new();
        let mut token = String::new();
        loop {
            let page = board
                .get_breakdown(request(dimension, "", 2, &token))
                .await
                .expect("a page")
                .into_inner();
            assert!(page.entries.len() <= 2);
            token = page.next_page_token.clone();
            pages.push(page);
            if token.is_empty() {
                break;
            }
        }
        let want = model(&model_rows, d, None, &rates);
        assert_eq!(lines(&pages), want, "{dimension:?} national");
        assert!(
            want.iter().any(|l| l.1.is_empty()),
            "the empty key is an entry"
        );
        let first = &pages[0];
        assert_eq!(first.reporting_currency, "IDR");
        assert_eq!(first.unconverted_currencies, ["EUR"]);
        assert!(pages.iter().all(|p| p.watermark == first.watermark));
        let sum: i64 = want.iter().map(|l| l.2).sum();
        assert_eq!(first.total_net_reporting_minor, sum, "{dimension:?}");
        // Per site, with the organizer token.
        for site in ["alpha", "beta", "gamma"] {
            let b = organizer
                .get_breakdown(request(dimension, site, 1_000, ""))
                .await
                .expect("a site's breakdown")
                .into_inner();
            assert_eq!(b.site_id, site);
            let want = model(&model_rows, d, Some(site), &rates);
            assert_eq!(
                lines(std::slice::from_ref(&b)),
                want,
                "{dimension:?} {site}"
            );
            assert_eq!(
                b.total_net_reporting_minor,
                want.iter().map(|l| l.2).sum::<i64>()
            );
        }
    }
    // The tie shares a rank, ordered by key.
    let brand = lines(&[board
        .get_breakdown(request(Dimension::Brand, "", 100, ""))
        .await
        .expect("brand")
        .into_inner()]);
    let ties: Vec<(u32, &str)> = brand
        .iter()
        .filter(|l| l.1.starts_with("tie-"))
        .map(|l| (l.0, l.1.as_str()))
        .collect();
    assert_eq!(ties.len(), 2);
    assert_eq!(ties[0].0, ties[1].0, "{brand:?}");
    assert_eq!((ties[0].1, ties[1].1), ("tie-a", "tie-b"));
    // A site's page tokens continue that site's breakdown.
    let page = organizer
        .get_breakdown(request(Dimension::Brand, "alpha", 1, ""))
        .await
        .expect("page")
        .into_inner();
    let next = organizer
        .get_breakdown(request(Dimension::Brand, "alpha", 1, &page.next_page_token))
        .await
        .expect("next")
        .into_inner();
    let want = model(&model_rows, 0, Some("alpha"), &rates);
    assert_eq!(lines(&[page.clone(), next]), want[..2].to_vec());
    let err = organizer
        .get_breakdown(request(Dimension::Brand, "beta", 1, &page.next_page_token))
        .await
        .expect_err("another site's token");
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = organizer
        .get_breakdown(request(
            Dimension::Category,
            "alpha",
            1,
            &page.next_page_token,
        ))
        .await
        .expect_err("another dimension's token");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("page_token"), "{}", err.message());

    // Refusals.
    let err = board
        .get_breakdown(request(Dimension::Unspecified, "", 10, ""))
        .await
        .expect_err("no dimension");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("dimension"), "{}", err.message());
    let err = board
        .get_breakdown(GetBreakdownRequest {
            event_id: "nope".into(),
            ..request(Dimension::Brand, "", 10, "")
        })
        .await
        .expect_err("unknown event");
    assert_eq!(err.code(), Code::NotFound);
    let err = board
        .get_breakdown(request(Dimension::Brand, "", 1_001, ""))
        .await
        .expect_err("limit");
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = board
        .get_breakdown(request(Dimension::Brand, "alpha", 10, ""))
        .await
        .expect_err("a site's breakdown is its detail");
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = app
        .leaderboard_as(&secrets["beta"])
        .await
        .get_breakdown(request(Dimension::Brand, "alpha", 10, ""))
        .await
        .expect_err("another site's key");
    assert_eq!(err.code(), Code::PermissionDenied);
    app.leaderboard_as(&secrets["alpha"])
        .await
        .get_breakdown(request(Dimension::Brand, "alpha", 10, ""))
        .await
        .expect("its own key");
    let err = organizer
        .get_breakdown(request(Dimension::Brand, "nobody", 10, ""))
        .await
        .expect_err("unknown site");
    assert_eq!(err.code(), Code::NotFound);

    // A disabled site leaves the national breakdowns as it leaves the national figure.
    app.admin()
        .await
        .set_site_enabled(SetSiteEnabledRequest {
            site_id: "beta".into(),
            enabled: false,
        })
        .await
        .expect("disable");
    let without: Vec<Row> = model_rows
        .iter()
        .filter(|r| r.site != "beta")
        .cloned()
        .collect();
    for (d, dimension) in DIMENSIONS.into_iter().enumerate() {
        let b = board
            .get_breakdown(request(dimension, "", 1_000, ""))
            .await
            .expect("breakdown")
            .into_inner();
        assert_eq!(
            lines(&[b]),
            model(&without, d, None, &rates),
            "{dimension:?} without beta"
        );
    }

    // Enabled again, it is back in them.
    app.admin()
        .await
        .set_site_enabled(SetSiteEnabledRequest {
            site_id: "beta".into(),
            enabled: true,
        })
        .await
        .expect("enable");
    let b = board
        .get_breakdown(request(Dimension::Category, "", 1_000, ""))
        .await
        .expect("breakdown")
        .into_inner();
    assert_eq!(
        lines(&[b]),
        model(&model_rows, 1, None, &rates),
        "beta back"
    );

    // verify covers the breakdowns, and names one that is wrong.
    let out = verify(&app.db);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    app.db
        .execute(
            "UPDATE segment_totals SET sale_count = sale_count + 1 \
             WHERE dimension = 2 AND key = 'beauty' AND currency = 'IDR'",
        )
        .await;
    app.db
        .execute(
            "UPDATE segment_site_totals SET sale_count = sale_count + 1 \
             WHERE dimension = 1 AND key = 'nestle' AND site_id = 'alpha' AND currency = 'IDR'",
        )
        .await;
    let out = verify(&app.db);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("category \"beauty\" IDR"), "{said}");
    assert!(said.contains("brand \"nestle\" alpha IDR"), "{said}");
}

/// The command line: push files with segment columns, `saleboard breakdown`.
async fn the_command_line(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.set_event().await;
    let (_, secret) = app.site_with_key("alpha").await;
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("day.csv");
    let at = time::OffsetDateTime::from_unix_timestamp(now_secs() - 60)
        .expect("time")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("rfc 3339");
    std::fs::write(
        &file,
        format!(
            "transaction_id,kind,currency,amount_minor,occurred_at,refund_of,brand,category,origin\n\
             C1,SALE,IDR,300000,{at},,Wardah,beauty,domestic\n\
             C2,SALE,IDR,500000,{at},,samsung,electronics,cross-border\n\
             C3,SALE,IDR,100000,{at},,,,\n\
             C4,REFUND,IDR,50000,{at},C2,,,\n\
             C5,SALE,IDR,1,{at},,eiger,fashion,import\n"
        ),
    )
    .expect("write");
    let saleboard = |args: &[&str]| {
        std::process::Command::new(saleboard_tests::proc::bin_dir().join("saleboard"))
            .args(args)
            .env_remove("SALEBOARD_ORGANIZER_TOKEN")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .output()
            .expect("saleboard runs")
    };
    let ingest = format!("http://{}", app.ingest_addr);
    let board = format!("http://{}", app.leaderboard_addr);
    let file_arg = file.to_string_lossy().into_owned();
    let out = saleboard(&[
        "push",
        &file_arg,
        "--endpoint",
        &ingest,
        "--key",
        &secret,
        "--output",
        "json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(report[0]["accepted"], 4, "{report}");
    assert_eq!(report[0]["malformed"][0]["line"], 6, "{report}");
    assert_eq!(
        report[0]["malformed"][0]["message"],
        "origin \"import\" is not domestic, cross-border or empty"
    );
    app.settle().await;

    let out = saleboard(&["breakdown", "origin", "--endpoint", &board, "--tz", "UTC"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("by origin, national, in IDR"), "{text}");
    let line = |key: &str| {
        text.lines()
            .find(|l| l.split_whitespace().nth(1) == Some(key))
            .unwrap_or_else(|| panic!("no {key} line in {text}"))
            .to_owned()
    };
    assert!(line("cross-border").contains("IDR 4,500.00"), "{text}");
    assert!(line("domestic").contains("IDR 3,000.00"), "{text}");
    assert!(line("(none)").contains("IDR 1,000.00"), "{text}");
    assert!(
        line("cross-border").contains("52.9%"),
        "4,500 of 8,500: {text}"
    );
    let out = saleboard(&[
        "breakdown",
        "brand",
        "--endpoint",
        &board,
        "--output",
        "json",
    ]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["dimension"], "DIMENSION_BRAND");
    assert_eq!(json["entries"][0]["key"], "samsung");
    assert_eq!(json["entries"][0]["net_reporting_minor"], "450000");
    assert_eq!(
        json["entries"][1]["key"], "wardah",
        "lower-cased by the CLI"
    );
    assert_eq!(json["total_net_reporting_minor"], "850000");
    // A site's breakdown needs a credential.
    let out = saleboard(&[
        "breakdown",
        "category",
        "--site",
        "alpha",
        "--endpoint",
        &board,
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("UNAUTHENTICATED"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = saleboard(&[
        "breakdown",
        "category",
        "--site",
        "alpha",
        "--endpoint",
        &board,
        "--key",
        &secret,
        "--limit",
        "1",
    ]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("site alpha"), "{text}");
    assert!(text.contains("more: --page-token"), "{text}");
    // The leaderboard table can show the top categories under it.
    let out = saleboard(&["leaderboard", "--endpoint", &board, "--categories", "2"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let under = text
        .split("top categories")
        .nth(1)
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(
        under.lines().filter(|l| !l.trim().is_empty()).count(),
        2,
        "{text}"
    );
    assert!(
        under.contains("electronics") && under.contains("52.9%"),
        "{text}"
    );
}

/// A database as the release before segments left it (an event, a sale and a refund, their
/// totals), then the segments migration: the rows have no segment, the per-site breakdowns
/// hold them under "" in every dimension, and the aggregator derives the national rows when it
/// starts (without moving); verify agrees.
async fn a_database_from_before_segments_migrates(backend: Backend) {
    let Some(db) = saleboard_tests::TestDb::create(backend).await else {
        return;
    };
    let previous = match backend {
        Backend::Postgres => 7,
        Backend::Sqlite => 6,
    };
    let old = db.store_until(previous).await;
    let ns = |s: i64| s * 1_000_000_000;
    let now = now_secs();
    let (starts, ends, at) = (ns(now - 86_400), ns(now + 86_400), ns(now - 60));
    db.execute(&format!(
        "INSERT INTO events (event_id, display_name, starts_at_ns, ends_at_ns, closes_at_ns, \
         reporting_currency, baseline_event_id, time_zone) VALUES ('e', 'E', {starts}, {ends}, \
         {ends}, 'IDR', '', '')"
    ))
    .await;
    db.execute("INSERT INTO sites (site_id, display_name, created_at_ns) VALUES ('alpha', 'A', 0)")
        .await;
    db.execute(&format!(
        "INSERT INTO ledger (position, site_id, transaction_id, store_id, kind, currency, \
         amount_minor, occurred_at_ns, refund_of, key_id, received_at_ns, event_id) VALUES \
         (1, 'alpha', 'S1', '', 1, 'IDR', 5000, {at}, '', 'key_old', {at}, 'e'), \
         (2, 'alpha', 'R1', '', 2, 'IDR', 500, {at}, 'S1', 'key_old', {at}, 'e')"
    ))
    .await;
    db.execute("UPDATE ledger_head SET head = 2 WHERE id = 1")
        .await;
    db.execute(
        "INSERT INTO site_totals (event_id, site_id, currency, sale_count, gross_minor, \
         refund_count, refunded_minor, net_minor) VALUES ('e', 'alpha', 'IDR', 1, '5000', 1, \
         '500', '4500')",
    )
    .await;
    let hour = at - at.rem_euclid(ns(3_600));
    db.execute(&format!(
        "INSERT INTO hourly_totals (event_id, site_id, currency, hour_start_ns, sale_count, \
         net_minor) VALUES ('e', 'alpha', 'IDR', {hour}, 1, '4500')"
    ))
    .await;
    db.execute("UPDATE aggregator_state SET applied_position = 2 WHERE id = 1")
        .await;
    drop(old);

    let store = db.store().await;
    let rows = store.read_ledger(0, 10).await.expect("ledger");
    assert!(rows.iter().all(|r| r.tx.segments.is_empty()), "no segment");
    let loaded = store.load_totals().await.expect("totals");
    let per_site = loaded.book.segment_sites();
    let keys: Vec<(String, &str, &str, &str)> = per_site
        .keys()
        .map(|(e, d, k, s)| (d.to_string(), e.as_str(), k.as_str(), s.as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            ("brand".to_owned(), "e", "", "alpha"),
            ("category".to_owned(), "e", "", "alpha"),
            ("origin".to_owned(), "e", "", "alpha")
        ]
    );
    assert!(loaded.segments.is_empty(), "no national rows yet");

    // The aggregator writes the national rows when it starts.
    let healed = aggregate_until(&db, &store, "wrote the national breakdown rows", |t| {
        !t.segments.is_empty()
    })
    .await;
    assert_eq!(healed.segments, healed.book.segments());
    assert_eq!(healed.applied, 2, "without moving");
    let origin = &healed.segments[&(
        "e".to_owned(),
        saleboard_domain::Dimension::Origin,
        String::new(),
    )];
    assert_eq!(origin.site_count, 1);
    assert_eq!(
        origin
            .totals
            .values()
            .map(saleboard_domain::totals::CurrencyTotals::net_minor)
            .sum::<i128>(),
        4_500
    );
    let out = verify(&db);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Breakdown figures carry their own watermark (issue 26): a database whose totals moved on
/// without them (the aggregator defers breakdown writes while the ledger is busy) is exact at
/// both watermarks for `verify` and the leaderboard, and an aggregator starting on it folds the
/// rows in between into the breakdowns alone.
async fn breakdowns_trailing_the_totals_catch_up(backend: Backend) {
    use saleboard_domain::totals::TotalsBook;
    let Some(db) = saleboard_tests::TestDb::create(backend).await else {
        return;
    };
    let store = db.store().await;
    let now = now_secs();
    let ns = |s: i64| saleboard_domain::UnixNanos(s * 1_000_000_000);
    store
        .set_event(
            &saleboard_domain::Event::new("e", "E", ns(now - 86_400), ns(now + 86_400), "IDR")
                .expect("event"),
            saleboard_domain::UnixNanos::now(),
            saleboard_storage::Audit::ok(&saleboard_tests::db::seed_call("SetEvent")),
        )
        .await
        .expect("event");
    for site in ["alpha", "beta"] {
        store
            .create_site(
                &saleboard_domain::SiteId::parse(site).expect("site"),
                site,
                ns(now - 100),
                saleboard_storage::Audit::ok(&saleboard_tests::db::seed_call("CreateSite")),
            )
            .await
            .expect("site");
    }
    let candidate = |site: &str, n: i64| saleboard_storage::Candidate {
        site: saleboard_domain::SiteId::parse(site).expect("site"),
        key_id: "key_test".into(),
        received_at: ns(now - 30),
        tx: saleboard_domain::transaction::validate(
            &saleboard_domain::TransactionInput {
                transaction_id: format!("{site}-{n}"),
                kind: saleboard_domain::PushedKind::Sale,
                currency: "IDR".into(),
                amount_minor: 1_000 + n,
                occurred_at: Some(ns(now - 60).to_parts()),
                brand: format!("brand-{}", n % 7),
                category: format!("cat-{}", n % 3),
                origin: saleboard_domain::PushedOrigin::Domestic,
                ..saleboard_domain::TransactionInput::default()
            },
            ns(now - 30),
            &saleboard_domain::Limits::default(),
        )
        .expect("valid"),
    };
    let batch: Vec<_> = (0..60)
        .map(|n| candidate(if n % 3 == 0 { "beta" } else { "alpha" }, n))
        .collect();
    store.append(&batch).await.expect("append");
    // Rows 1-20 in every figure; 21-60 in the headline figures only.
    let rows = store.read_ledger(0, 100).await.expect("ledger");
    assert_eq!(rows.len(), 60);
    let mut book = TotalsBook::default();
    let mut whole = TotalsBook::default();
    for row in &rows {
        whole
            .apply(&row.event_id, &row.site, &row.tx)
            .expect("fold");
    }
    // The late figures go with the breakdowns, as the aggregator writes them.
    let mut late = saleboard_domain::late::LateBook::default();
    for row in &rows[..20] {
        book.apply(&row.event_id, &row.site, &row.tx).expect("fold");
        late.apply(&row.event_id, &row.site, &row.tx, row.received_at)
            .expect("fold");
    }
    let now_ns = saleboard_domain::UnixNanos::now();
    let mut changes = book.take_changes();
    changes.late = late.take_changes();
    store
        .apply_totals(0, 20, &changes, now_ns)
        .await
        .expect("apply");
    for row in &rows[20..] {
        book.apply(&row.event_id, &row.site, &row.tx).expect("fold");
    }
    store
        .apply_totals(20, 60, &book.take_headline_changes(), now_ns)
        .await
        .expect("apply");

    let stored = store.load_totals().await.expect("load");
    assert_eq!((stored.applied, stored.breakdown_applied), (60, 20));
    assert_eq!(stored.book.totals(), whole.totals(), "headline at 60");
    let mut at_20 = TotalsBook::default();
    for row in &rows[..20] {
        at_20
            .apply(&row.event_id, &row.site, &row.tx)
            .expect("fold");
    }
    assert_eq!(stored.segments, at_20.segments(), "breakdowns at 20");
    let board = store.read_board(Some("e"), None).await.expect("board");
    assert_eq!((board.applied, board.segments.applied), (60, 20));
    let out = verify(&db);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("stored up to position 20"), "{text}");
    // A breakdown write stands only on the watermark it started from, and never ahead of the
    // totals: anything else is fenced, and writes nothing.
    let mut pending = book.clone();
    let changes = pending.take_breakdown_changes();
    for (from, at) in [(19, 60), (20, 61)] {
        let fenced = store.apply_breakdowns(from, at, &changes).await;
        assert!(
            matches!(fenced, Err(saleboard_storage::StorageError::Fenced { .. })),
            "from {from} at {at}: {fenced:?}"
        );
    }
    assert_eq!(
        store.load_totals().await.expect("load").breakdown_applied,
        20
    );

    // An aggregator starting here folds rows 21-60 into the breakdowns and writes them.
    let caught_up = aggregate_until(&db, &store, "caught the breakdowns up", |t| {
        t.breakdown_applied == 60
    })
    .await;
    assert_eq!(caught_up.applied, 60, "without moving");
    assert_eq!(caught_up.segments, whole.segments());
    assert_eq!(caught_up.book.segment_sites(), whole.segment_sites());
    assert_eq!(caught_up.book.totals(), whole.totals());
    let board = store.read_board(Some("e"), None).await.expect("board");
    assert_eq!(board.segments.applied, 60);
    let out = verify(&db);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("stored up to position"), "{text}");
}

/// Starts an aggregator on `db` and waits (at most 10 s) until the stored totals satisfy
/// `done` (`what` says what it waits for), then stops it and returns them.
async fn aggregate_until(
    db: &saleboard_tests::TestDb,
    store: &std::sync::Arc<dyn saleboard_storage::Store>,
    what: &str,
    done: impl Fn(&saleboard_storage::StoredTotals) -> bool,
) -> saleboard_storage::StoredTotals {
    let aggregator = aggregator_on(db).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let loaded = store.load_totals().await.expect("totals");
        if done(&loaded) {
            drop(aggregator);
            return loaded;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the aggregator never {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The late figures (issue 28) follow each event's end: folded with it, counted again from the
/// ledger when the end moves across rows already folded, and counted once for a database from
/// before them (no windows stored); `verify` agrees each time.
async fn late_figures_are_counted_again_when_the_end_moves(backend: Backend) {
    use saleboard_domain::late::LateTotals;
    let Some(db) = saleboard_tests::TestDb::create(backend).await else {
        return;
    };
    let store = db.store().await;
    let ns = |s: i64| s * 1_000_000_000;
    let now = now_secs();
    let (starts, ends, at) = (ns(now - 86_400), ns(now + 86_400), ns(now - 60));
    let long_ago = ns(now - 3 * 3_600);
    db.execute(&format!(
        "INSERT INTO events (event_id, display_name, starts_at_ns, ends_at_ns, closes_at_ns, \
         reporting_currency, baseline_event_id, time_zone) VALUES ('e', 'E', {starts}, {ends}, \
         {ends}, 'IDR', '', '')"
    ))
    .await;
    db.execute("INSERT INTO sites (site_id, display_name, created_at_ns) VALUES ('alpha', 'A', 0)")
        .await;
    // S1 on time, S2 received three hours after it occurred, R1 (of S1) on time: all received
    // a minute ago.
    db.execute(&format!(
        "INSERT INTO ledger (position, site_id, transaction_id, store_id, kind, currency, \
         amount_minor, occurred_at_ns, refund_of, key_id, received_at_ns, event_id) VALUES \
         (1, 'alpha', 'S1', '', 1, 'IDR', 1000, {at}, '', 'k', {at}, 'e'), \
         (2, 'alpha', 'S2', '', 1, 'IDR', 3000, {long_ago}, '', 'k', {at}, 'e'), \
         (3, 'alpha', 'R1', '', 2, 'IDR', 500, {at}, 'S1', 'k', {at}, 'e')"
    ))
    .await;
    db.execute("UPDATE ledger_head SET head = 3 WHERE id = 1")
        .await;
    let late_of = |t: &saleboard_storage::StoredTotals| {
        t.late
            .figures()
            .values()
            .copied()
            .next()
            .unwrap_or_default()
    };
    // With their denominators: both sales, whatever is late.
    let figures = |refunded: i128, sales: i128| LateTotals {
        late_refunded_minor: refunded,
        late_sales_minor: sales,
        sale_count: 2,
        gross_minor: 4_000,
        // Rp 10 and Rp 30: one significant digit each.
        round_count: 2,
    };
    let verified = || {
        let out = verify(&db);
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // One aggregator running throughout the first two steps.
    let aggregator = aggregator_on(&db).await;
    let until = |what: &'static str,
                 done: Box<dyn Fn(&saleboard_storage::StoredTotals) -> bool>| {
        let store = store.clone();
        async move {
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                let loaded = store.load_totals().await.expect("totals");
                if done(&loaded) {
                    return loaded;
                }
                assert!(tokio::time::Instant::now() < deadline, "never {what}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    };
    // Folded against the end tomorrow: S2 alone is late (by its delay).
    let folded = until(
        "folded the late figures",
        Box::new(move |t| t.applied == 3 && late_of(t) != LateTotals::default()),
    )
    .await;
    assert_eq!(late_of(&folded), figures(0, 3_000));
    verified();

    // The end moved to two minutes ago, before every receipt, while the aggregator runs (it
    // reads the ends every second): all three rows are late now, counted again.
    db.execute(&format!(
        "UPDATE events SET ends_at_ns = {} WHERE event_id = 'e'",
        ns(now - 120)
    ))
    .await;
    let counted = until(
        "counted the late figures again",
        Box::new(move |t| late_of(t) == figures(500, 4_000)),
    )
    .await;
    assert_eq!(
        counted.late.window("e").map(|w| w.ends_at.0),
        Some(ns(now - 120))
    );
    assert_eq!(counted.applied, 3, "without moving");
    verified();
    drop(aggregator);

    // Restarted after the end moves back past every receipt (tomorrow again): the window's
    // latest receipt was stored, so the figures are counted again at start.
    db.execute(&format!(
        "UPDATE events SET ends_at_ns = {ends} WHERE event_id = 'e'"
    ))
    .await;
    let back = aggregate_until(&db, &store, "counted the late figures back", |t| {
        late_of(t) == figures(0, 3_000)
    })
    .await;
    assert_eq!(back.late.window("e").map(|w| w.ends_at.0), Some(ends));
    verified();

    // A database from before the late figures: no window, no figure; counted once at start.
    db.execute("DELETE FROM late_totals").await;
    db.execute("DELETE FROM late_windows").await;
    let again = aggregate_until(&db, &store, "counted a database from before them", |t| {
        late_of(t) == figures(0, 3_000)
    })
    .await;
    assert_eq!(again.applied, 3, "without moving");
    verified();
}

/// An aggregator process on `db`, stopped when dropped.
async fn aggregator_on(db: &saleboard_tests::TestDb) -> saleboard_tests::proc::ServiceProcess {
    let addr = saleboard_tests::proc::free_addr();
    let listen = addr.to_string();
    saleboard_tests::proc::ServiceProcess::start(
        "saleboard-aggregator",
        &["--aggregator-listen", &listen],
        &[("SALEBOARD_DATABASE_URL", db.url.as_str())],
        addr,
    )
    .await
}

/// `saleboard verify` on `db`.
fn verify(db: &saleboard_tests::TestDb) -> std::process::Output {
    std::process::Command::new(saleboard_tests::proc::bin_dir().join("saleboard"))
        .arg("verify")
        .env("SALEBOARD_DATABASE_URL", &db.url)
        .output()
        .expect("verify runs")
}

backend_tests!(
    late_figures_are_counted_again_when_the_end_moves,
    segments_reasons_refunds_and_idempotency,
    breakdowns_against_a_model,
    the_command_line,
    a_database_from_before_segments_migrates,
    breakdowns_trailing_the_totals_catch_up
);
