//! The Cafe24 Admin API client: every call succeeds as fast as Cafe24 allows, without tripping
//! its bucket.
//!
//! - Tokens come from the token lifecycle ([`cafe24_tokens::TokenManager`]); a 401 triggers one
//!   forced refresh and one retry.
//! - [`pacer`]: per mall, a client-side mirror of Cafe24's leaky bucket (40 deep, 2 per second),
//!   corrected by every `X-Api-Call-Limit` and paused by `X-Cafe24-*-Remain`. Calls wait for
//!   room; malls never slow each other.
//! - Retries: 429 after the pause Cafe24 asks for; 500/503/504 and lost answers with
//!   exponential backoff and jitter, only for idempotent requests; bounded attempts, an
//!   overall deadline; each retry logged and counted ([`ClientMetrics`]).
//! - [`pages`]: every page of `/products`, past the 5,000 offset cap by `since_product_no`.
//!
//! ```no_run
//! # async fn demo(client: cafe24_client::Client) -> Result<(), cafe24_client::ApiError> {
//! let mall = client.mall(cafe24_core::MallId::parse("shop1").expect("mall id"));
//! let count = mall.products_count(&[("display", "T")]).await?;
//! let mut pages = mall.product_pages(&[])?;
//! while let Some(page) = pages.next_products().await? {
//!     for product in page { println!("{} {}", product.product_no, product.product_name); }
//! }
//! # let _ = count; Ok(()) }
//! ```

pub mod client;
pub mod error;
pub mod metrics;
pub mod pacer;
pub mod pages;
pub mod products;
pub mod request;
pub mod timer;

pub use client::{ApiResponse, Client, MallClient};
pub use error::ApiError;
pub use metrics::ClientMetrics;
pub use pacer::{BucketSpec, LimitReport, MallPacer, PaceStats, Pacers, MAX_PAUSE};
pub use pages::Pages;
pub use products::{Product, Store, Variant, VariantUpdate};
pub use request::Request;
pub use reqwest::Method;
pub use timer::{SystemTimer, Timer, VirtualTimer};
