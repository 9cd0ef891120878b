//! Reading every page of a list endpoint. Cafe24 caps `offset` (5000 for products, 8000
//! elsewhere), so products are read `limit=100` by `offset` in ascending `product_no` up to the
//! cap, then continued by `since_product_no` (keyset paging, which Cafe24 refuses to combine
//! with `offset`/`sort`/`order`). A key never goes backwards, so a product is never returned
//! twice even if the catalogue changes between pages. A full page that brings nothing new
//! (the server ignored the cursor) ends paging with [`ApiError::NoProgress`] instead of asking
//! for it again for ever.

use serde_json::Value;

use crate::client::MallClient;
use crate::products::Product;
use crate::request::Request;
use crate::ApiError;

/// Products per page: Cafe24's maximum.
pub const PAGE_LIMIT: usize = 100;
/// Largest `offset` Cafe24 accepts on `/products`.
pub const PRODUCTS_OFFSET_CAP: usize = 5000;
/// Largest `offset` on the other list endpoints.
pub const DEFAULT_OFFSET_CAP: usize = 8000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Offset(usize),
    Since(u64),
    Done,
}

/// Keyset continuation: the query parameter and the item field it pages by.
#[derive(Debug, Clone, Copy)]
struct Keyset {
    param: &'static str,
    key: &'static str,
}

/// Pages of one list endpoint; call [`Pages::next_page`] until it returns `None`.
#[derive(Debug)]
pub struct Pages {
    client: MallClient,
    path: String,
    collection: Option<String>,
    filters: Vec<(String, String)>,
    keyset: Option<Keyset>,
    offset_cap: usize,
    phase: Phase,
    last_key: Option<u64>,
    /// Without a key: the last full page, to notice the same page coming back.
    previous: Option<Vec<Value>>,
    pages: u64,
    items: u64,
}

impl Pages {
    /// All products matching `filters` (which must not set paging or ordering themselves).
    pub fn products(client: MallClient, filters: &[(&str, &str)]) -> Result<Self, ApiError> {
        check_filters(
            filters,
            &[
                "limit",
                "offset",
                "since_product_no",
                "sort",
                "order",
                "product_no",
            ],
        )?;
        Ok(Self::new(
            client,
            "/products",
            Some("products".into()),
            filters,
            Some(Keyset {
                param: "since_product_no",
                key: "product_no",
            }),
            PRODUCTS_OFFSET_CAP,
        ))
    }

    /// Any list endpoint, by `offset` up to `offset_cap`; the items are the answer's array.
    pub fn list(
        client: MallClient,
        path: &str,
        filters: &[(&str, &str)],
        offset_cap: usize,
    ) -> Result<Self, ApiError> {
        check_filters(filters, &["limit", "offset"])?;
        Request::get(path)?; // the same path check as any call
        Ok(Self::new(client, path, None, filters, None, offset_cap))
    }

    fn new(
        client: MallClient,
        path: &str,
        collection: Option<String>,
        filters: &[(&str, &str)],
        keyset: Option<Keyset>,
        offset_cap: usize,
    ) -> Self {
        Self {
            client,
            path: path.to_owned(),
            collection,
            filters: filters
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            keyset,
            offset_cap,
            phase: Phase::Offset(0),
            last_key: None,
            previous: None,
            pages: 0,
            items: 0,
        }
    }

    /// Pages fetched so far.
    pub fn pages(&self) -> u64 {
        self.pages
    }

    /// Items returned so far.
    pub fn items(&self) -> u64 {
        self.items
    }

    /// The next non-empty page, or `None` when every item has been returned.
    pub async fn next_page(&mut self) -> Result<Option<Vec<Value>>, ApiError> {
        loop {
            let mut req = Request::get(&self.path)?
                .queries(self.filters.iter().cloned())
                .query("limit", PAGE_LIMIT.to_string());
            match (self.phase, self.keyset) {
                (Phase::Done, _) => return Ok(None),
                (Phase::Offset(offset), keyset) => {
                    if keyset.is_some() {
                        // Ascending key order, so the keyset phase continues where this ends.
                        req = req.query("order", "asc");
                    }
                    req = req.query("offset", offset.to_string());
                }
                (Phase::Since(after), Some(k)) => req = req.query(k.param, after.to_string()),
                (Phase::Since(_), None) => return Ok(None),
            }
            let body = self.client.send(&req).await?.body;
            let items = self.take_items(body)?;
            self.pages += 1;
            let full = items.len() >= PAGE_LIMIT;
            if full && self.keyset.is_none() {
                if self.previous.as_ref() == Some(&items) {
                    return Err(self.no_progress());
                }
                self.previous = Some(items.clone());
            }
            let fresh = self.drop_seen(items)?;
            if full && fresh.is_empty() {
                // Keys only grow, so a full page of keys already returned means the cursor
                // (offset or since_product_no) was ignored.
                return Err(self.no_progress());
            }
            self.phase = match self.phase {
                _ if !full => Phase::Done,
                Phase::Offset(o) if o + PAGE_LIMIT <= self.offset_cap => {
                    Phase::Offset(o + PAGE_LIMIT)
                }
                _ => match (self.keyset, self.last_key) {
                    (Some(_), Some(last)) => Phase::Since(last),
                    _ => {
                        tracing::warn!(path = %self.path, cap = self.offset_cap, "offset cap reached: later items cannot be listed by offset");
                        Phase::Done
                    }
                },
            };
            if !fresh.is_empty() {
                self.items += fresh.len() as u64;
                return Ok(Some(fresh));
            }
        }
    }

    /// [`Pages::next_page`] as typed products.
    pub async fn next_products(&mut self) -> Result<Option<Vec<Product>>, ApiError> {
        match self.next_page().await? {
            None => Ok(None),
            Some(items) => items
                .into_iter()
                .map(|v| serde_json::from_value(v).map_err(|e| ApiError::Malformed(e.to_string())))
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
        }
    }

    fn no_progress(&self) -> ApiError {
        tracing::warn!(path = %self.path, page = self.pages, "paging made no progress: stopped");
        ApiError::NoProgress {
            path: self.path.clone(),
            page: self.pages,
        }
    }

    fn take_items(&mut self, mut body: Value) -> Result<Vec<Value>, ApiError> {
        if self.collection.is_none() {
            // The one array of a list answer (`{"products":[…]}`, `{"logs":[…]}`).
            self.collection = body
                .as_object()
                .and_then(|o| o.iter().find(|(_, v)| v.is_array()))
                .map(|(k, _)| k.clone());
        }
        let key = self.collection.as_deref().unwrap_or_default();
        match body.get_mut(key).map(Value::take) {
            Some(Value::Array(items)) => Ok(items),
            _ => Err(ApiError::Malformed(format!(
                "no list in the answer of {}",
                self.path
            ))),
        }
    }

    /// With keyset paging: keeps only items past the last key returned, which also proves the
    /// order is ascending.
    fn drop_seen(&mut self, items: Vec<Value>) -> Result<Vec<Value>, ApiError> {
        let Some(keyset) = self.keyset else {
            return Ok(items);
        };
        let mut fresh = Vec::with_capacity(items.len());
        for item in items {
            let key = item[keyset.key].as_u64().ok_or_else(|| {
                ApiError::Malformed(format!("an item without a numeric {}", keyset.key))
            })?;
            if self.last_key.is_none_or(|last| key > last) {
                self.last_key = Some(key);
                fresh.push(item);
            }
        }
        Ok(fresh)
    }
}

fn check_filters(filters: &[(&str, &str)], reserved: &[&str]) -> Result<(), ApiError> {
    match filters.iter().find(|(k, _)| reserved.contains(k)) {
        Some((k, _)) => Err(ApiError::InvalidRequest(format!(
            "{k} is set by the pager; it cannot be a filter of a read of every page"
        ))),
        None => Ok(()),
    }
}
