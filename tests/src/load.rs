//! Deterministic streams of transactions for concurrency and crash tests: a content that is a
//! pure function of the id (so any resubmission is a true duplicate) and a tiny PRNG, so runs
//! are reproducible without a random crate.

use saleboard_proto::Timestamp;
use saleboard_proto::v1::{SubmitTransactionsRequest, Transaction, TransactionKind};

/// SplitMix64: small, fast, good enough to pick indices.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    /// A generator from a seed.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// Next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// The amount of a transaction id: 1 to 1,000,000 minor units, a pure function of the id.
#[must_use]
pub fn amount_of(id: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    i64::try_from(h % 1_000_000).unwrap_or(0) + 1
}

/// An IDR sale whose content depends only on `id` and `occurred_at`.
#[must_use]
pub fn sale_of(id: &str, occurred_at: i64) -> Transaction {
    Transaction {
        transaction_id: id.to_owned(),
        store_id: String::new(),
        kind: TransactionKind::Sale.into(),
        currency: "IDR".into(),
        amount_minor: amount_of(id),
        occurred_at: Some(Timestamp {
            seconds: occurred_at,
            nanos: 0,
        }),
        refund_of: String::new(),
        ..Transaction::default()
    }
}

/// Splits transactions into requests of `size`.
#[must_use]
pub fn batches(txs: Vec<Transaction>, size: usize) -> Vec<SubmitTransactionsRequest> {
    txs.chunks(size)
        .map(|c| SubmitTransactionsRequest {
            transactions: c.to_vec(),
        })
        .collect()
}
