//! Shared state of a running sandbox: settings, clock, apps, malls, tokens, faults.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use chrono::{DateTime, Utc};

use crate::admin::catalog::Catalog;
use crate::clock::Clock;
use crate::config::{AppConfig, MallConfig, SandboxConfig};
use crate::faults::Faults;
use crate::ratelimit::LeakyBucket;
use crate::stats::MallStats;
use crate::tokens::TokenStore;
use crate::webhooks::log::WebhookState;

/// Locks a mutex, recovering the data if a panicking thread poisoned it.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Cafe24 mall ids are short lowercase names; `-`/`_` are tolerated. Anything else is refused.
pub fn valid_mall_id(id: &str) -> bool {
    (1..=32).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// One mall: its seeded catalog, bucket, counters and webhook log.
#[derive(Debug)]
pub struct Mall {
    pub id: String,
    pub shop_no: u32,
    pub shops: u32,
    pub user_id: String,
    pub created: DateTime<Utc>,
    pub catalog: Mutex<Catalog>,
    pub bucket: Mutex<LeakyBucket>,
    pub stats: MallStats,
    pub webhook: Mutex<WebhookState>,
}

impl Mall {
    fn new(cfg: &MallConfig, now: DateTime<Utc>) -> Self {
        let shop_no = cfg.shop_no.max(1);
        Self {
            id: cfg.mall_id.clone(),
            shop_no,
            shops: cfg.shops.max(shop_no),
            user_id: cfg.user_id.clone().unwrap_or_else(|| cfg.mall_id.clone()),
            created: now,
            catalog: Mutex::new(Catalog::new(&cfg.mall_id, cfg.products)),
            bucket: Mutex::new(LeakyBucket::new(now)),
            stats: MallStats::default(),
            webhook: Mutex::new(WebhookState::default()),
        }
    }

    /// Whether `shop_no` names a shop of this mall.
    pub fn has_shop(&self, shop_no: u32) -> bool {
        (1..=self.shops).contains(&shop_no)
    }
}

/// Everything the handlers share.
#[derive(Debug)]
pub struct Shared {
    pub config: SandboxConfig,
    pub clock: Clock,
    apps: RwLock<HashMap<String, Arc<AppConfig>>>,
    malls: RwLock<HashMap<String, Arc<Mall>>>,
    pub tokens: Mutex<TokenStore>,
    /// Access and refresh token lifetimes in seconds: the config's, changeable at run time.
    lifetimes: Mutex<(i64, i64)>,
    pub faults: Faults,
    pub http: reqwest::Client,
}

/// Cheap handle to the shared state, given to the router.
pub type SandboxState = Arc<Shared>;

/// Why a mall or app could not be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("mall id must be 1-32 lowercase letters, digits, '-' or '_'")]
    InvalidMallId,
    #[error("client_id must not be empty")]
    InvalidClientId,
    #[error("token lifetimes must be at least one second")]
    InvalidLifetime,
}

impl Shared {
    pub fn new(config: SandboxConfig) -> anyhow::Result<SandboxState> {
        let clock = Clock::default();
        let now = clock.now();
        let mut malls = HashMap::new();
        for m in &config.malls {
            if !valid_mall_id(&m.mall_id) {
                anyhow::bail!("invalid mall id in config: {:?}", m.mall_id);
            }
            malls.insert(m.mall_id.clone(), Arc::new(Mall::new(m, now)));
        }
        let mut apps = HashMap::new();
        for a in &config.apps {
            if a.client_id.is_empty() {
                anyhow::bail!("an app in the config has an empty client_id");
            }
            apps.insert(a.client_id.clone(), Arc::new(a.clone()));
        }
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_millis(config.webhooks.timeout_ms))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let faults = Faults::new(config.fault_seed);
        let lifetimes = Mutex::new((config.access_token_ttl_secs, config.refresh_token_ttl_secs));
        Ok(Arc::new(Self {
            config,
            lifetimes,
            clock,
            apps: RwLock::new(apps),
            malls: RwLock::new(malls),
            tokens: Mutex::new(TokenStore::default()),
            faults,
            http,
        }))
    }

    pub fn app(&self, client_id: &str) -> Option<Arc<AppConfig>> {
        self.apps
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(client_id)
            .cloned()
    }

    pub fn apps(&self) -> Vec<Arc<AppConfig>> {
        let apps = self.apps.read().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<_> = apps.values().cloned().collect();
        v.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        v
    }

    /// Registers (or replaces) an app.
    pub fn add_app(&self, app: AppConfig) -> Result<(), RegistryError> {
        if app.client_id.is_empty() {
            return Err(RegistryError::InvalidClientId);
        }
        let mut apps = self.apps.write().unwrap_or_else(|e| e.into_inner());
        apps.insert(app.client_id.clone(), Arc::new(app));
        Ok(())
    }

    /// The mall if it exists (never creates one).
    pub fn existing_mall(&self, id: &str) -> Option<Arc<Mall>> {
        self.malls
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// The mall, created on first use when `auto_create_malls` is on.
    pub fn mall(&self, id: &str) -> Option<Arc<Mall>> {
        if let Some(m) = self.malls.read().unwrap_or_else(|e| e.into_inner()).get(id) {
            return Some(m.clone());
        }
        if !self.config.auto_create_malls || !valid_mall_id(id) {
            return None;
        }
        let cfg = MallConfig {
            mall_id: id.to_string(),
            products: self.config.auto_create_products,
            ..MallConfig::default()
        };
        self.add_mall(cfg).ok()
    }

    /// Adds a mall; an existing mall with the same id is kept and returned.
    pub fn add_mall(&self, cfg: MallConfig) -> Result<Arc<Mall>, RegistryError> {
        if !valid_mall_id(&cfg.mall_id) {
            return Err(RegistryError::InvalidMallId);
        }
        let now = self.clock.now();
        let mut malls = self.malls.write().unwrap_or_else(|e| e.into_inner());
        let mall = malls
            .entry(cfg.mall_id.clone())
            .or_insert_with(|| Arc::new(Mall::new(&cfg, now)));
        Ok(mall.clone())
    }

    pub fn malls(&self) -> Vec<Arc<Mall>> {
        let malls = self.malls.read().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<_> = malls.values().cloned().collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Lifetimes (seconds) of the access and refresh tokens issued from now on.
    pub fn token_lifetimes(&self) -> (i64, i64) {
        *lock(&self.lifetimes)
    }

    /// Changes the lifetimes of tokens issued from now on (tokens already issued keep theirs).
    /// Both must be at least one second.
    pub fn set_token_lifetimes(
        &self,
        access_secs: i64,
        refresh_secs: i64,
    ) -> Result<(), RegistryError> {
        if access_secs < 1 || refresh_secs < 1 {
            return Err(RegistryError::InvalidLifetime);
        }
        *lock(&self.lifetimes) = (access_secs, refresh_secs);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mall_ids_are_restricted() {
        assert!(valid_mall_id("myshop"));
        assert!(valid_mall_id("shop-1_a"));
        assert!(!valid_mall_id("MyShop"));
        assert!(!valid_mall_id("evil.com/x"));
        assert!(!valid_mall_id(""));
    }
}
