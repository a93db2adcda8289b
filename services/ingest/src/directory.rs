//! API keys and the event, cached in memory and reloaded from storage every refresh interval.
//! A key unknown to the cache is looked up in storage at once, so a new key works immediately;
//! a secret that storage does not know either goes into a bounded negative cache until the next
//! reload, so repeating it costs no lookup. A revoked key disappears at the next reload, so it
//! stops working within one interval on every ingest process, and open streams of that key end
//! (they watch [`Directory::keys_changed`]).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use saleboard_domain::{Event, SiteId};
use saleboard_runtime::auth::secret_hash;
use saleboard_storage::{ActiveKey, Store};

use crate::error::IngestError;

/// A retailer, as authenticated by its API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retailer {
    /// The key used.
    pub key_id: String,
    /// The site of the key: the site of every transaction it pushes.
    pub site: SiteId,
}

/// Most unknown secrets remembered between two reloads.
const NEGATIVE_CACHE: usize = 10_000;

/// The cache.
pub struct Directory {
    store: Arc<dyn Store>,
    keys: RwLock<HashMap<String, Retailer>>,
    /// Hashes of secrets storage did not know at their lookup; emptied at every reload.
    unknown: RwLock<HashSet<String>>,
    event: RwLock<Option<Arc<Event>>>,
    /// The last completed reload: open streams check their key against it.
    reloaded: tokio::sync::watch::Sender<Arc<Reload>>,
}

/// What one completed reload of the keys saw.
#[derive(Debug)]
pub struct Reload {
    /// When its read of the keys began: a key missing from a reload that began after a stream
    /// was authenticated has been revoked (one that began before may simply predate the key).
    pub started: tokio::time::Instant,
    /// Ids of the keys that were active.
    pub active: HashSet<String>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory").finish_non_exhaustive()
    }
}

fn retailer(key: ActiveKey) -> (String, Retailer) {
    (
        key.secret_hash,
        Retailer {
            key_id: key.key_id,
            site: key.site_id,
        },
    )
}

impl Directory {
    /// An empty cache over `store`; call [`Directory::refresh`] to fill it.
    #[must_use]
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            keys: RwLock::new(HashMap::new()),
            unknown: RwLock::new(HashSet::new()),
            event: RwLock::new(None),
            reloaded: tokio::sync::watch::Sender::new(Arc::new(Reload {
                started: tokio::time::Instant::now(),
                active: HashSet::new(),
            })),
        }
    }

    /// Changes after every reload of the keys.
    #[must_use]
    pub fn keys_changed(&self) -> tokio::sync::watch::Receiver<Arc<Reload>> {
        self.reloaded.subscribe()
    }

    /// Whether `key_id`, authenticated at `since`, has been revoked: a reload that began after
    /// `since` did not find it active.
    #[must_use]
    pub fn revoked_since(&self, key_id: &str, since: tokio::time::Instant) -> bool {
        let reload = self.reloaded.borrow();
        reload.started > since && !reload.active.contains(key_id)
    }

    /// Reloads every active key and the event.
    ///
    /// # Errors
    /// When storage fails; the cache keeps its previous content.
    pub async fn refresh(&self) -> Result<(), saleboard_storage::StorageError> {
        let started = tokio::time::Instant::now();
        let keys: HashMap<_, _> = self
            .store
            .active_keys()
            .await?
            .into_iter()
            .map(retailer)
            .collect();
        let event = self.store.get_event().await?.map(Arc::new);
        let active = keys.values().map(|r| r.key_id.clone()).collect();
        *self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = keys;
        *self
            .event
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = event;
        self.unknown
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
        self.reloaded
            .send_replace(Arc::new(Reload { started, active }));
        Ok(())
    }

    /// Reloads every `interval` until the task is aborted.
    pub async fn refresh_every(self: Arc<Self>, interval: Duration) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if let Err(e) = self.refresh().await {
                tracing::warn!(error = %e, "cannot reload API keys and event; keeping the cached ones");
            }
        }
    }

    /// The configured event.
    ///
    /// # Errors
    /// [`IngestError::NoEvent`] when no event is configured; storage failures.
    pub async fn event(&self) -> Result<Arc<Event>, IngestError> {
        let cached = self
            .event
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(event) = cached {
            return Ok(event);
        }
        let event = self
            .store
            .get_event()
            .await?
            .map(Arc::new)
            .ok_or(IngestError::NoEvent)?;
        *self
            .event
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(event.clone());
        Ok(event)
    }

    /// The retailer whose key has this secret.
    ///
    /// # Errors
    /// [`IngestError::UnknownKey`]; storage failures.
    pub async fn retailer(&self, secret: &str) -> Result<Retailer, IngestError> {
        let hash = secret_hash(secret);
        let cached = self
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&hash)
            .cloned();
        if let Some(r) = cached {
            return Ok(r);
        }
        let known_unknown = self
            .unknown
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&hash);
        if known_unknown {
            return Err(IngestError::UnknownKey);
        }
        let found = self.store.find_active_key(&hash).await?;
        let Some(key) = found else {
            let mut unknown = self
                .unknown
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if unknown.len() < NEGATIVE_CACHE {
                unknown.insert(hash);
            }
            return Err(IngestError::UnknownKey);
        };
        let (hash, r) = retailer(key);
        self.keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(hash, r.clone());
        Ok(r)
    }
}
