//! Parsing and checking the query of `GET /products` and `/products/count`.
//!
//! Rules (CAFE24.md §4): `limit` 1–100 (default 10), `offset` ≤ 5000, `since_product_no`
//! excludes `offset`/`sort`/`order`/`product_no`, comma lists mean OR (≤ 100 values),
//! `fields=`, `embed=variants`, `shop_no` (default 1). Bad values are 422.

use std::collections::HashMap;

use super::catalog::Product;
use crate::clock::parse_filter_time;
use crate::error::AdminError;

/// Sort keys Cafe24 accepts for products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    ProductNo,
    CreatedDate,
    UpdatedDate,
    ProductName,
}

/// A checked product query.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductQuery {
    pub shop_no: u32,
    pub limit: usize,
    pub offset: usize,
    pub since_product_no: Option<u32>,
    pub sort: SortKey,
    pub descending: bool,
    pub product_no: Option<Vec<u32>>,
    pub product_code: Option<Vec<String>>,
    pub product_name: Option<Vec<String>>,
    pub display: Option<bool>,
    pub selling: Option<bool>,
    pub price_min: Option<u64>,
    pub price_max: Option<u64>,
    pub created_start: Option<chrono::DateTime<chrono::Utc>>,
    pub created_end: Option<chrono::DateTime<chrono::Utc>>,
    pub fields: Option<Vec<String>>,
    pub embed_variants: bool,
}

fn number<T: std::str::FromStr>(
    params: &HashMap<String, String>,
    key: &str,
) -> Result<Option<T>, AdminError> {
    match params.get(key) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| AdminError::bad_parameter(key, &format!("{key} must be a number."))),
    }
}

/// A comma list (OR), at most 100 values, empty items dropped.
fn list(params: &HashMap<String, String>, key: &str) -> Result<Option<Vec<String>>, AdminError> {
    let Some(raw) = params.get(key) else {
        return Ok(None);
    };
    let items: Vec<String> = raw
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if items.len() > 100 {
        return Err(AdminError::bad_parameter(
            key,
            "At most 100 values may be given.",
        ));
    }
    Ok(Some(items))
}

fn flag(params: &HashMap<String, String>, key: &str) -> Result<Option<bool>, AdminError> {
    match params.get(key).map(String::as_str) {
        None => Ok(None),
        Some("T") => Ok(Some(true)),
        Some("F") => Ok(Some(false)),
        Some(_) => Err(AdminError::bad_parameter(
            key,
            &format!("{key} must be T or F."),
        )),
    }
}

fn date(
    params: &HashMap<String, String>,
    key: &str,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, AdminError> {
    match params.get(key) {
        None => Ok(None),
        Some(v) => parse_filter_time(v)
            .map(Some)
            .ok_or_else(|| AdminError::bad_parameter(key, &format!("{key} is not a valid date."))),
    }
}

/// The `shop_no` parameter (default 1).
pub fn shop_no(params: &HashMap<String, String>) -> Result<u32, AdminError> {
    let n: u32 = number(params, "shop_no")?.unwrap_or(1);
    if n == 0 {
        return Err(AdminError::bad_parameter(
            "shop_no",
            "shop_no must be at least 1.",
        ));
    }
    Ok(n)
}

impl ProductQuery {
    pub fn parse(params: &HashMap<String, String>) -> Result<Self, AdminError> {
        let since_product_no: Option<u32> = number(params, "since_product_no")?;
        if since_product_no.is_some() {
            for key in ["offset", "sort", "order", "product_no"] {
                if params.contains_key(key) {
                    return Err(AdminError::bad_parameter(
                        key,
                        &format!("since_product_no cannot be used with {key}."),
                    ));
                }
            }
        }
        let limit: i64 = number(params, "limit")?.unwrap_or(10);
        if !(1..=100).contains(&limit) {
            return Err(AdminError::bad_parameter(
                "limit",
                "limit must be between 1 and 100.",
            ));
        }
        let offset: i64 = number(params, "offset")?.unwrap_or(0);
        if !(0..=5000).contains(&offset) {
            return Err(AdminError::bad_parameter(
                "offset",
                "offset must be between 0 and 5000.",
            ));
        }
        let sort = match params.get("sort").map(String::as_str) {
            None => SortKey::ProductNo,
            Some("created_date") => SortKey::CreatedDate,
            Some("updated_date") => SortKey::UpdatedDate,
            Some("product_name") => SortKey::ProductName,
            Some(_) => {
                return Err(AdminError::bad_parameter(
                    "sort",
                    "sort must be created_date, updated_date or product_name.",
                ))
            }
        };
        let descending = match params.get("order").map(String::as_str) {
            None | Some("desc") => true,
            Some("asc") => false,
            Some(_) => {
                return Err(AdminError::bad_parameter(
                    "order",
                    "order must be asc or desc.",
                ))
            }
        };
        let product_no = match list(params, "product_no")? {
            None => None,
            Some(items) => Some(
                items
                    .iter()
                    .map(|s| s.parse::<u32>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| {
                        AdminError::bad_parameter("product_no", "product_no must be numbers.")
                    })?,
            ),
        };
        let embed = list(params, "embed")?.unwrap_or_default();
        if let Some(bad) = embed.iter().find(|e| e.as_str() != "variants") {
            return Err(AdminError::bad_parameter(
                "embed",
                &format!(
                    "embed {} is not supported by the sandbox; use variants.",
                    crate::html::truncate(bad, 40)
                ),
            ));
        }
        Ok(Self {
            shop_no: shop_no(params)?,
            limit: limit as usize,
            offset: offset as usize,
            since_product_no,
            sort,
            descending: descending && since_product_no.is_none(),
            product_no,
            product_code: list(params, "product_code")?,
            product_name: list(params, "product_name")?,
            display: flag(params, "display")?,
            selling: flag(params, "selling")?,
            price_min: number(params, "price_min")?,
            price_max: number(params, "price_max")?,
            created_start: date(params, "created_start_date")?,
            created_end: date(params, "created_end_date")?,
            fields: list(params, "fields")?,
            embed_variants: !embed.is_empty(),
        })
    }

    /// Whether a product passes every filter (not paging).
    pub fn matches(&self, p: &Product) -> bool {
        self.product_no.as_ref().is_none_or_contains(&p.no)
            && self
                .product_code
                .as_ref()
                .is_none_or(|c| c.contains(&p.code))
            && self
                .product_name
                .as_ref()
                .is_none_or(|names| names.iter().any(|n| p.name.contains(n.as_str())))
            && self.display.is_none_or(|d| d == p.display)
            && self.selling.is_none_or(|s| s == p.selling)
            && self.price_min.is_none_or(|m| p.price >= m)
            && self.price_max.is_none_or(|m| p.price <= m)
            && self.created_start.is_none_or(|t| p.created >= t)
            && self.created_end.is_none_or(|t| p.created <= t)
            && self.since_product_no.is_none_or(|s| p.no > s)
    }
}

trait ContainsOrAll<T> {
    fn is_none_or_contains(&self, x: &T) -> bool;
}

impl<T: PartialEq> ContainsOrAll<T> for Option<&Vec<T>> {
    fn is_none_or_contains(&self, x: &T) -> bool {
        self.is_none_or(|v| v.contains(x))
    }
}
