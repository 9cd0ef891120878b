//! Typed helpers for the endpoints the sandbox emulates: products (list, count, one),
//! variants (list, inventory update) and the store. Each type keeps the fields it does not
//! name in `rest`, so nothing Cafe24 sends is lost.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::client::MallClient;
use crate::pages::Pages;
use crate::request::Request;
use crate::ApiError;

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Product {
    pub product_no: u64,
    #[serde(default)]
    pub product_code: String,
    #[serde(default)]
    pub product_name: String,
    /// Money is a string at Cafe24 (`"1100.00"`).
    #[serde(default)]
    pub price: Option<String>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Variant {
    pub variant_code: String,
    #[serde(default)]
    pub quantity: Option<i64>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Store {
    #[serde(default)]
    pub mall_id: Option<String>,
    #[serde(default)]
    pub shop_name: Option<String>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// The `request` of `PUT /products/{no}/variants/{code}`; unset fields are not sent.
/// Flags are Cafe24's `"T"`/`"F"`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct VariantUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantity: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub safety_inventory: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_inventory: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_soldout: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selling: Option<&'static str>,
}

/// `body[key]` as `T`.
fn field<T: DeserializeOwned>(mut body: Value, key: &str) -> Result<T, ApiError> {
    let value = body
        .get_mut(key)
        .map(Value::take)
        .ok_or_else(|| ApiError::Malformed(format!("no \"{key}\" in the answer")))?;
    serde_json::from_value(value).map_err(|e| ApiError::Malformed(format!("{key}: {e}")))
}

impl MallClient {
    async fn get_field<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        key: &str,
    ) -> Result<T, ApiError> {
        let req = Request::get(path)?.queries(query.iter().copied());
        field(self.send(&req).await?.body, key)
    }

    /// `GET /products` with filters (`limit`, `offset`, `product_no`, `display`, …).
    pub async fn products(&self, query: &[(&str, &str)]) -> Result<Vec<Product>, ApiError> {
        self.get_field("/products", query, "products").await
    }

    /// `GET /products/count` with the same filters.
    pub async fn products_count(&self, query: &[(&str, &str)]) -> Result<u64, ApiError> {
        self.get_field("/products/count", query, "count").await
    }

    /// `GET /products/{product_no}`.
    pub async fn product(&self, product_no: u64) -> Result<Product, ApiError> {
        self.get_field(&format!("/products/{product_no}"), &[], "product")
            .await
    }

    /// `GET /products/{product_no}/variants`.
    pub async fn variants(&self, product_no: u64) -> Result<Vec<Variant>, ApiError> {
        self.get_field(&format!("/products/{product_no}/variants"), &[], "variants")
            .await
    }

    /// `PUT /products/{product_no}/variants/{variant_code}` with
    /// `{"shop_no":…,"request":{…}}` — inventory and display of one variant.
    pub async fn update_variant(
        &self,
        product_no: u64,
        variant_code: &str,
        update: &VariantUpdate,
    ) -> Result<Variant, ApiError> {
        let body = json!({ "shop_no": self.shop_no, "request": update });
        let req = Request::put(
            &format!("/products/{product_no}/variants/{variant_code}"),
            body,
        )?;
        field(self.send(&req).await?.body, "variant")
    }

    /// `GET /store`.
    pub async fn store(&self) -> Result<Store, ApiError> {
        let shop = self.shop_no.to_string();
        self.get_field("/store", &[("shop_no", &shop)], "store")
            .await
    }

    /// Every product matching `filters`, page by page, in ascending `product_no`, without
    /// duplicates — past Cafe24's offset cap (see [`Pages`]).
    pub fn product_pages(&self, filters: &[(&str, &str)]) -> Result<Pages, ApiError> {
        Pages::products(self.clone(), filters)
    }
}
