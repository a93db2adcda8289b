//! Hot pure functions: validating a full request of 1,000 transactions, resolving it against
//! the ledger state, and converting and ranking 1,000 sites in 5 currencies.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use saleboard_domain::ranking::{SiteFigures, rank};
use saleboard_domain::resolve::LedgerState;
use saleboard_domain::totals::CurrencyTotals;
use saleboard_domain::transaction::validate;
use saleboard_domain::{
    Currency, Event, Events, Limits, PushedKind, Rate, SiteId, TransactionInput, UnixNanos,
};

const START: i64 = 1_765_497_600;

fn batch() -> Vec<TransactionInput> {
    let currencies = ["IDR", "IDR", "IDR", "USD", "SGD", "MYR", "JPY"];
    (0..1_000)
        .map(|i| TransactionInput {
            transaction_id: format!("order-2026-12-12-{i:08}"),
            store_id: format!("store-{}", i % 20),
            kind: if i % 33 == 32 {
                PushedKind::Refund
            } else {
                PushedKind::Sale
            },
            currency: currencies[i % currencies.len()].to_owned(),
            amount_minor: 10_000 + i64::try_from(i).expect("small"),
            occurred_at: Some((START + 60 + i64::try_from(i).expect("small"), 0)),
            refund_of: if i % 33 == 32 {
                format!("order-2026-12-12-{:08}", i - 1)
            } else {
                String::new()
            },
            // Realistic segments: a brand on most rows, a category on all, some imports.
            brand: if i % 5 == 4 {
                String::new()
            } else {
                format!("brand-{}", i % 300)
            },
            category: format!("category-{}", i % 12),
            origin: if i % 5 == 0 {
                saleboard_domain::PushedOrigin::CrossBorder
            } else {
                saleboard_domain::PushedOrigin::Domestic
            },
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let event = Event::new(
        "e",
        "E",
        UnixNanos::from_parts(START, 0).expect("t"),
        UnixNanos::from_parts(START + 259_200, 0).expect("t"),
        "IDR",
    )
    .expect("event");
    let now = UnixNanos::from_parts(START + 3_600, 0).expect("t");
    let mut all = vec![event];
    for month in 1..=11 {
        let start = START - month * 30 * 86_400;
        all.push(
            Event::new(
                &format!("past-{month}"),
                "Past",
                UnixNanos::from_parts(start, 0).expect("t"),
                UnixNanos::from_parts(start + 259_200, 0).expect("t"),
                "IDR",
            )
            .expect("event"),
        );
    }
    let events = Events::new(all);
    let limits = Limits::default();
    let inputs = batch();
    c.bench_function("validate 1,000 transactions", |b| {
        b.iter(|| {
            black_box(&inputs)
                .iter()
                .map(|t| validate(t, now, &limits))
                .filter(Result::is_ok)
                .count()
        });
    });

    let valid: Vec<_> = inputs
        .iter()
        .filter_map(|t| validate(t, now, &limits).ok())
        .collect();
    let site = SiteId::parse("toko").expect("site");
    c.bench_function("resolve 1,000 transactions against the ledger state", |b| {
        b.iter(|| {
            // The deployment's events: this one and eleven earlier ones (a year of sales).
            let mut state = LedgerState::new(1_000_000, events.clone(), now);
            black_box(&valid)
                .iter()
                .map(|t| state.resolve(&site, t))
                .count()
        });
    });

    let codes = ["IDR", "USD", "SGD", "MYR", "JPY"];
    let sites: Vec<SiteFigures> = (0..1_000)
        .map(|i| SiteFigures {
            site_id: SiteId::parse(&format!("site-{i:04}")).expect("site"),
            display_name: format!("Site {i}"),
            totals: codes
                .iter()
                .map(|c| {
                    let n = 1_000_000 + (i128::from(i) * 7_919) % 100_000_000;
                    (
                        Currency::parse(c).expect("c"),
                        CurrencyTotals {
                            sale_count: 100,
                            gross_minor: n,
                            refund_count: 3,
                            refunded_minor: n / 50,
                        },
                    )
                })
                .collect(),
            held: false,
        })
        .collect();
    let rates: BTreeMap<Currency, Rate> = [
        ("USD", "15850.25"),
        ("SGD", "11790"),
        ("MYR", "3560.5"),
        ("JPY", "105.75"),
    ]
    .iter()
    .map(|(c, r)| (Currency::parse(c).expect("c"), Rate::parse(r).expect("r")))
    .collect();
    let idr = Currency::parse("IDR").expect("IDR");
    c.bench_function("convert and rank 1,000 sites x 5 currencies", |b| {
        b.iter(|| rank(black_box(sites.clone()), &rates, idr));
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
