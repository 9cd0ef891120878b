//! `GET /products`, `/products/count`, `/products/{no}`, `/products/{no}/variants[/{code}]`.

use std::collections::HashMap;

use axum::extract::{Path, Query};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Value};

use super::catalog::{Catalog, Product, Variant};
use super::product_json::product_text;
use super::query::{shop_no, ProductQuery, SortKey};
use super::render;
use super::AdminCtx;
use crate::error::AdminError;
use crate::state::{lock, Mall};

type Params = Query<HashMap<String, String>>;
type AdminResult = Result<Json<Value>, AdminError>;

fn checked_shop(mall: &Mall, params: &HashMap<String, String>) -> Result<u32, AdminError> {
    let shop = shop_no(params)?;
    if !mall.has_shop(shop) {
        return Err(AdminError::bad_parameter(
            "shop_no",
            "shop_no does not exist in this mall.",
        ));
    }
    Ok(shop)
}

pub(super) fn parse_product_no(raw: &str) -> Result<u32, AdminError> {
    raw.parse()
        .map_err(|_| AdminError::bad_parameter("product_no", "product_no must be a number."))
}

/// Products passing the query's filters, in the query's order, after offset/limit.
fn select(catalog: &Catalog, q: &ProductQuery, paged: bool) -> Vec<Product> {
    let numbers: Box<dyn Iterator<Item = u32>> = match (&q.product_no, q.descending) {
        (Some(list), _) => {
            let mut v = list.clone();
            v.sort_unstable();
            v.dedup();
            if q.descending {
                v.reverse();
            }
            Box::new(v.into_iter())
        }
        (None, true) => Box::new((1..=catalog.count()).rev()),
        (None, false) => Box::new(1..=catalog.count()),
    };
    let matching = numbers
        .filter_map(|n| catalog.product(n))
        .filter(|p| q.matches(p));
    if !paged {
        return matching.collect();
    }
    if q.sort == SortKey::ProductNo {
        // Already in order: stop as soon as the page is full.
        return matching.skip(q.offset).take(q.limit).collect();
    }
    let mut all: Vec<Product> = matching.collect();
    all.sort_by(|a, b| {
        let ord = match q.sort {
            SortKey::CreatedDate => a.created.cmp(&b.created),
            SortKey::UpdatedDate => a.updated.cmp(&b.updated),
            SortKey::ProductName => a.name.cmp(&b.name),
            SortKey::ProductNo => a.no.cmp(&b.no),
        }
        .then(a.no.cmp(&b.no));
        if q.descending {
            ord.reverse()
        } else {
            ord
        }
    });
    all.into_iter().skip(q.offset).take(q.limit).collect()
}

fn product_json(
    catalog: &Catalog,
    p: &Product,
    q_shop: u32,
    detail: bool,
    embed: bool,
    fields: Option<&[String]>,
) -> Value {
    let mut v = render::product(p, q_shop, detail);
    if embed {
        let variants: Vec<Value> = catalog
            .variants(p)
            .iter()
            .map(|x| render::variant(x, q_shop))
            .collect();
        if let Some(obj) = v.as_object_mut() {
            obj.insert("variants".into(), Value::Array(variants));
        }
    }
    let fields = fields.map(|f| {
        let mut f = f.to_vec();
        if embed {
            f.push("variants".into());
        }
        f
    });
    render::select_fields(v, fields.as_deref())
}

pub async fn list(
    Extension(ctx): Extension<AdminCtx>,
    Query(params): Params,
) -> Result<Response, AdminError> {
    let q = ProductQuery::parse(&params)?;
    let shop = checked_shop(&ctx.mall, &params)?;
    let catalog = lock(&ctx.mall.catalog);
    if q.fields.is_none() && !q.embed_variants {
        // Hot path: products written straight as JSON text.
        let items: Vec<String> = select(&catalog, &q, true)
            .iter()
            .map(|p| product_text(p, shop, false))
            .collect();
        let body = format!("{{\"products\":[{}]}}", items.join(","));
        return Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response());
    }
    let products: Vec<Value> = select(&catalog, &q, true)
        .iter()
        .map(|p| {
            product_json(
                &catalog,
                p,
                shop,
                false,
                q.embed_variants,
                q.fields.as_deref(),
            )
        })
        .collect();
    Ok(Json(json!({ "products": products })).into_response())
}

pub async fn count(Extension(ctx): Extension<AdminCtx>, Query(params): Params) -> AdminResult {
    let q = ProductQuery::parse(&params)?;
    checked_shop(&ctx.mall, &params)?;
    let catalog = lock(&ctx.mall.catalog);
    let n = select(&catalog, &q, false).len();
    Ok(Json(json!({ "count": n })))
}

pub async fn detail(
    Extension(ctx): Extension<AdminCtx>,
    Path((_mall, no)): Path<(String, String)>,
    Query(params): Params,
) -> AdminResult {
    let shop = checked_shop(&ctx.mall, &params)?;
    let no = parse_product_no(&no)?;
    let embed = params
        .get("embed")
        .is_some_and(|e| e.split(',').any(|x| x.trim() == "variants"));
    let fields: Option<Vec<String>> = params
        .get("fields")
        .map(|f| f.split(',').map(|s| s.trim().to_string()).collect());
    let catalog = lock(&ctx.mall.catalog);
    let p = catalog
        .product(no)
        .ok_or_else(|| AdminError::not_found("Product"))?;
    let v = product_json(&catalog, &p, shop, true, embed, fields.as_deref());
    Ok(Json(json!({ "product": v })))
}

pub async fn variants(
    Extension(ctx): Extension<AdminCtx>,
    Path((_mall, no)): Path<(String, String)>,
    Query(params): Params,
) -> AdminResult {
    let shop = checked_shop(&ctx.mall, &params)?;
    let no = parse_product_no(&no)?;
    let catalog = lock(&ctx.mall.catalog);
    let p = catalog
        .product(no)
        .ok_or_else(|| AdminError::not_found("Product"))?;
    let list: Vec<Value> = catalog
        .variants(&p)
        .iter()
        .map(|v| render::variant(v, shop))
        .collect();
    Ok(Json(json!({ "variants": list })))
}

pub(super) fn find_variant(catalog: &Catalog, no: u32, code: &str) -> Result<Variant, AdminError> {
    let p = catalog
        .product(no)
        .ok_or_else(|| AdminError::not_found("Product"))?;
    catalog
        .variants(&p)
        .into_iter()
        .find(|v| v.code == code)
        .ok_or_else(|| AdminError::not_found("Variant"))
}

pub async fn variant(
    Extension(ctx): Extension<AdminCtx>,
    Path((_mall, no, code)): Path<(String, String, String)>,
    Query(params): Params,
) -> AdminResult {
    let shop = checked_shop(&ctx.mall, &params)?;
    let no = parse_product_no(&no)?;
    let catalog = lock(&ctx.mall.catalog);
    let v = find_variant(&catalog, no, &code)?;
    Ok(Json(json!({ "variant": render::variant(&v, shop) })))
}
