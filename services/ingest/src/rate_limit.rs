//! Per-site rate limit as a tower layer: a token bucket per site, refilled at `rate` requests
//! per second up to `burst`. A request over its site's budget is answered RESOURCE_EXHAUSTED at
//! once. Sits after authentication, which puts the [`Retailer`] in the request extensions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use saleboard_domain::SiteId;
use saleboard_runtime::admit::{Admit, AdmitLayer, Admitted};
use tonic::Status;

use crate::directory::Retailer;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Token buckets of every site.
#[derive(Debug)]
pub struct SiteBuckets {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<SiteId, Bucket>>,
}

impl SiteBuckets {
    /// Buckets refilled at `rate` per second, holding at most `burst`.
    #[must_use]
    pub fn new(rate: u32, burst: u32) -> Self {
        Self {
            rate: f64::from(rate),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token of `site` at `now`; false when its bucket is empty.
    pub fn try_take(&self, site: &SiteId, now: Instant) -> bool {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let bucket = buckets.entry(site.clone()).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The per-site limit as an admission check; off when built with a rate of 0.
#[derive(Debug, Clone)]
pub struct SiteLimit {
    buckets: Option<Arc<SiteBuckets>>,
}

impl Admit for SiteLimit {
    type Pass = ();

    fn admit<B>(&self, request: &http::Request<B>) -> Result<(), Status> {
        match (&self.buckets, request.extensions().get::<Retailer>()) {
            (Some(buckets), Some(retailer))
                if !buckets.try_take(&retailer.site, Instant::now()) =>
            {
                Err(Status::resource_exhausted(format!(
                    "site {} is over its rate limit of {} requests per second; slow down or send \
                     bigger batches",
                    retailer.site, buckets.rate
                )))
            }
            _ => Ok(()),
        }
    }
}

/// Layer adding [`SiteRateLimit`].
pub type SiteRateLimitLayer = AdmitLayer<SiteLimit>;

/// The service wrapped by [`SiteRateLimitLayer`].
pub type SiteRateLimit<S> = Admitted<S, SiteLimit>;

/// `rate` requests per second per site with bursts of `burst`; a rate of 0 turns it off.
#[must_use]
pub fn site_rate_limit(rate: u32, burst: u32) -> SiteRateLimitLayer {
    AdmitLayer::with(SiteLimit {
        buckets: (rate > 0).then(|| Arc::new(SiteBuckets::new(rate, burst))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_allows_a_burst_then_refills_at_the_rate() {
        let b = SiteBuckets::new(10, 3);
        let a = SiteId::parse("a").expect("valid");
        let t0 = Instant::now();
        assert!(b.try_take(&a, t0));
        assert!(b.try_take(&a, t0));
        assert!(b.try_take(&a, t0));
        assert!(!b.try_take(&a, t0), "burst of 3 is spent");
        assert!(
            !b.try_take(&a, t0 + Duration::from_millis(50)),
            "half a token"
        );
        assert!(
            b.try_take(&a, t0 + Duration::from_millis(100)),
            "one token after 100 ms"
        );
        // Long idle refills to the burst, not beyond.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(b.try_take(&a, later));
        }
        assert!(!b.try_take(&a, later));
    }

    #[test]
    fn sites_have_their_own_buckets() {
        let b = SiteBuckets::new(1, 1);
        let t0 = Instant::now();
        let (a, c) = (
            SiteId::parse("a").expect("valid"),
            SiteId::parse("c").expect("valid"),
        );
        assert!(b.try_take(&a, t0));
        assert!(!b.try_take(&a, t0));
        assert!(b.try_take(&c, t0));
    }
}
