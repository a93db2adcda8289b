//! Which (site_id, transaction_id) keys the ledger may hold, so an append looks up only the ids
//! that can be duplicates (issue 15: the lookup was a third of the ingest backend's work, and
//! almost every id in a push is new).
//!
//! A Bloom filter of every stored key up to a position `through`: "absent" is certain, "maybe"
//! costs one index probe. It can never miss a stored key: the keys up to `through` were read
//! from the ledger (a background load from the start, then, under the writer lock, the rows
//! other writers appended since), and an append adds its own keys after its commit succeeded,
//! moving `through` in the same step only from the head it locked. Until the load is done,
//! and after any failed insert, appends look every id up as before. The unique index on
//! (site_id, transaction_id) stays the backstop.
//!
//! Its bits never take more than [`MAX_BYTES`], so ingest's memory stays flat as the ledger
//! grows: past that, each key gets fewer bits and more new ids are looked up.
//!
//! Hand-written (about seventy lines) rather than a crate: it needs a filter that grows with
//! the ledger within a budget, and each crate looked at wanted a fixed capacity.

use std::hash::BuildHasher as _;
use std::sync::Mutex;

/// Bits per key of a layer while the budget allows: with 6 probes, about 2% false positives
/// (2% of new ids still looked up), for one byte of memory per stored key.
const BITS_PER_KEY: u64 = 8;
/// Most probes per key (fewer when a layer has fewer bits per key).
const MAX_PROBES: u64 = 6;
/// Keys of the first layer at least.
const MIN_CAPACITY: u64 = 1 << 20;
/// Most memory the filter's bits take, whatever the ledger's size: ingest's memory stays flat
/// as the ledger grows. Up to about 6 million keys each has its byte; a 10-million-row ledger
/// gets about 4.5 bits a key (3 probes: about 9% of new ids looked up); past that the filter
/// rules out less and less (about half of new ids at 30 million keys, a seventh at 100
/// million), towards looking every id up as without it.
pub(crate) const MAX_BYTES: u64 = 6 << 20;
/// Bytes of a layer at least (a smaller remainder of the budget adds no layer).
const MIN_LAYER_BYTES: u64 = 64 << 10;

/// One fixed-size Bloom filter.
#[derive(Debug)]
struct Layer {
    bits: Vec<u64>,
    /// Keys it was sized for (it takes more when the budget allows no new layer).
    capacity: u64,
    len: u64,
    probes: u64,
}

impl Layer {
    /// A layer for `capacity` keys in at most `max_bytes`.
    fn new(capacity: u64, max_bytes: u64) -> Self {
        let bytes = capacity
            .saturating_mul(BITS_PER_KEY)
            .div_ceil(8)
            .min(max_bytes)
            .max(8);
        let words = bytes / 8;
        // The best count for its bits per key: ln 2 * bits / keys.
        let probes = ((words * 64 * 7) / (capacity.max(1) * 10)).clamp(1, MAX_PROBES);
        Self {
            bits: vec![0; usize::try_from(words).unwrap_or(usize::MAX)],
            capacity,
            len: 0,
            probes,
        }
    }

    fn bytes(&self) -> u64 {
        self.bits.len() as u64 * 8
    }

    /// The bit positions of a key (double hashing); borrows nothing, so `insert` can set them.
    fn positions(&self, (h1, h2): (u64, u64)) -> impl Iterator<Item = (usize, u64)> + use<> {
        let nbits = self.bits.len() as u64 * 64;
        (0..self.probes).map(move |i| {
            let bit = h1.wrapping_add(i.wrapping_mul(h2)) % nbits;
            (usize::try_from(bit / 64).unwrap_or(0), 1u64 << (bit % 64))
        })
    }

    fn insert(&mut self, h: (u64, u64)) {
        for (word, mask) in self.positions(h) {
            self.bits[word] |= mask;
        }
        self.len += 1;
    }

    fn may_contain(&self, h: (u64, u64)) -> bool {
        self.positions(h)
            .all(|(word, mask)| self.bits[word] & mask != 0)
    }
}

/// A Bloom filter that grows within a memory budget: when its newest layer is full, it adds
/// one twice the size of every key so far (so the false-positive rate stays about one
/// layer's); once the budget is spent, its largest layer takes the new keys.
#[derive(Debug)]
pub(crate) struct Filter {
    layers: Vec<Layer>,
    max_bytes: u64,
    /// foldhash, seeded per filter (in memory only): a fraction of SipHash's cost on every
    /// append's path, and no one outside can aim ids at its false positives.
    hasher: foldhash::fast::RandomState,
}

impl Filter {
    /// A filter sized for about `expected` keys, within [`MAX_BYTES`].
    pub(crate) fn with_capacity(expected: u64) -> Self {
        Self::within(expected, MAX_BYTES)
    }

    /// A filter sized for about `expected` keys whose bits never take more than `max_bytes`.
    fn within(expected: u64, max_bytes: u64) -> Self {
        Self {
            layers: vec![Layer::new(expected.max(MIN_CAPACITY), max_bytes)],
            max_bytes,
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    fn hash(&self, site: &str, transaction_id: &str) -> (u64, u64) {
        let h1 = self.hasher.hash_one((site, transaction_id));
        // The probe stride: another mix of the same hash, odd so it is never zero.
        let h2 = h1.rotate_left(32).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (h1, h2)
    }

    /// Adds a key.
    pub(crate) fn insert(&mut self, site: &str, transaction_id: &str) {
        let h = self.hash(site, transaction_id);
        let full = self.layers.last().is_none_or(|l| l.len >= l.capacity);
        let layer = if full {
            let left = self.max_bytes.saturating_sub(self.bytes());
            if left >= MIN_LAYER_BYTES {
                let so_far: u64 = self.layers.iter().map(|l| l.len).sum();
                self.layers
                    .push(Layer::new(so_far.saturating_mul(2).max(MIN_CAPACITY), left));
                self.layers.last_mut()
            } else {
                self.layers.iter_mut().max_by_key(|l| l.bits.len())
            }
        } else {
            self.layers.last_mut()
        };
        if let Some(layer) = layer {
            layer.insert(h);
        }
    }

    /// False when the key was certainly never added.
    pub(crate) fn may_contain(&self, site: &str, transaction_id: &str) -> bool {
        let h = self.hash(site, transaction_id);
        self.layers.iter().any(|l| l.may_contain(h))
    }

    /// Bytes of the bit arrays.
    fn bytes(&self) -> u64 {
        self.layers.iter().map(Layer::bytes).sum()
    }
}

/// A store's knowledge of the ledger's keys.
#[derive(Debug, Default)]
pub(crate) struct KnownKeys {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Started loading (once per store).
    started: bool,
    /// The filter and the position up to which every stored key is in it; `None` until
    /// loaded (or after a reset).
    filter: Option<(Filter, u64)>,
}

impl KnownKeys {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// True the first time: the caller starts the load.
    pub(crate) fn start_loading(&self) -> bool {
        !std::mem::replace(&mut self.inner().started, true)
    }

    /// The loaded filter: every stored key up to `through` is in it.
    pub(crate) fn loaded(&self, filter: Filter, through: u64) {
        self.inner().filter = Some((filter, through));
    }

    /// Forgets the filter (appends look every id up) and lets the next append load it again.
    pub(crate) fn reset(&self) {
        let mut inner = self.inner();
        inner.filter = None;
        inner.started = false;
    }

    /// The position the filter is complete to, when it is loaded.
    pub(crate) fn through(&self) -> Option<u64> {
        self.inner().filter.as_ref().map(|(_, t)| *t)
    }

    /// Adds the keys of the ledger's positions `(from, to]`: read from the ledger under the
    /// writer lock, or those of a commit that moved the head from `from` to `to` (added after
    /// it committed). The filter is then complete to `to` if it was to `from`; a filter loaded
    /// meanwhile, without them, stays where its load left it, and the next append reads the
    /// rows since from the ledger.
    pub(crate) fn advanced<'a>(
        &self,
        from: u64,
        to: u64,
        keys: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) {
        let mut inner = self.inner();
        if let Some((filter, through)) = inner.filter.as_mut() {
            for (site, id) in keys {
                filter.insert(site, id);
            }
            if *through == from {
                *through = to;
            }
        }
    }

    /// Whether a key may be stored in the ledger up to `head`: true unless a filter complete
    /// to at least `head` rules it out. (Asked per key: a filter loaded while an append runs
    /// may be complete only to an earlier position, and then rules nothing out.)
    pub(crate) fn may_contain(&self, site: &str, transaction_id: &str, head: u64) -> bool {
        match self.inner().filter.as_ref() {
            Some((f, through)) if *through >= head => f.may_contain(site, transaction_id),
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Adds `tx-0`..`tx-{n-1}` of one site.
    fn fill(f: &mut Filter, n: u64) {
        for i in 0..n {
            f.insert("site-a", &format!("tx-{i}"));
        }
    }

    /// The first of `tx-0`..`tx-{n-1}` the filter rules out (a false negative), if any.
    fn missed(f: &Filter, n: u64) -> Option<u64> {
        (0..n).find(|i| !f.may_contain("site-a", &format!("tx-{i}")))
    }

    /// Of `probes` keys never added, how many the filter does not rule out.
    fn false_positives(f: &Filter, probes: u64) -> u64 {
        (0..probes)
            .filter(|i| f.may_contain("site-a", &format!("other-{i}")))
            .count() as u64
    }

    #[test]
    fn never_misses_a_key_it_was_given_and_rarely_claims_one_it_was_not() {
        let mut f = Filter::with_capacity(0);
        // Three layers' worth: the filter grows past its first capacity.
        let n = 3 * MIN_CAPACITY;
        fill(&mut f, n);
        assert!(f.layers.len() >= 2, "grew: {} layers", f.layers.len());
        assert_eq!(missed(&f, n), None);
        let probes = 200_000;
        let false_positives = false_positives(&f, probes);
        // About one layer's rate per layer asked.
        assert!(
            false_positives < probes * 5 / 100,
            "{false_positives} of {probes}"
        );
        // The site is part of the key.
        let other_site = (0..probes)
            .filter(|i| f.may_contain("site-b", &format!("tx-{i}")))
            .count() as u64;
        assert!(other_site < probes * 5 / 100, "{other_site} of {probes}");
        // About 10 bits a key.
        assert!(f.bytes() < n * 3, "{} bytes", f.bytes());
    }

    #[test]
    fn a_ledger_larger_than_the_budget_gets_fewer_bits_a_key_and_no_more_memory() {
        // Sized at load for 2 million keys in 1 MiB: 4 bits a key, 2 probes.
        let budget = MIN_CAPACITY;
        let n = 2 * MIN_CAPACITY;
        let mut f = Filter::within(n, budget);
        fill(&mut f, n);
        assert_eq!(f.bytes(), budget);
        assert_eq!(missed(&f, n), None);
        let probes = 100_000;
        let false_positives = false_positives(&f, probes);
        // About 15%, (1 - e^(-2 x 2.1M keys / 8.4M bits))^2: most new ids are still not
        // looked up.
        assert!(
            false_positives < probes * 20 / 100,
            "{false_positives} of {probes}"
        );
    }

    #[test]
    fn once_the_budget_is_spent_the_largest_layer_takes_the_keys() {
        let budget = MIN_CAPACITY + MIN_LAYER_BYTES;
        let mut f = Filter::within(0, budget);
        // A first layer of a byte a key, a second of the 64 KiB left, then the first again.
        let n = 3 * MIN_CAPACITY + 1_000;
        fill(&mut f, n);
        assert_eq!(f.layers.len(), 2);
        assert_eq!(f.bytes(), budget);
        assert_eq!(f.layers[0].len, MIN_CAPACITY + 1_000);
        assert_eq!(missed(&f, n), None);
    }

    #[test]
    fn through_moves_only_from_where_it_was() {
        let known = KnownKeys::default();
        assert!(known.start_loading());
        assert!(!known.start_loading());
        assert_eq!(known.through(), None);
        assert!(
            known.may_contain("s", "anything", 0),
            "no filter: look everything up"
        );
        let mut f = Filter::with_capacity(10);
        f.insert("s", "t1");
        known.loaded(f, 5);
        assert!(known.may_contain("s", "t1", 5));
        assert!(
            !known.may_contain("s", "t2", 5),
            "ruled out (this key is no false positive)"
        );
        assert!(
            known.may_contain("s", "t2", 6),
            "a filter behind the head rules nothing out"
        );
        // A commit from another head than the filter's leaves it where it is (its keys join).
        known.advanced(4, 9, [("s", "t9")]);
        assert_eq!(known.through(), Some(5));
        assert!(known.may_contain("s", "t9", 5));
        known.advanced(5, 7, [("s", "t6"), ("s", "t7")]);
        assert_eq!(known.through(), Some(7));
        assert!(known.may_contain("s", "t6", 7) && known.may_contain("s", "t7", 7));
        known.advanced(7, 8, [("s", "t8")]);
        assert_eq!(known.through(), Some(8));
        assert!(known.may_contain("s", "t8", 8));
        known.reset();
        assert_eq!(known.through(), None);
        assert!(
            known.start_loading(),
            "a reset lets the next append load again"
        );
    }
}
