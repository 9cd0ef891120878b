//! `GET /products`, `/products/count`, `/products/{no}`, `/products/{no}/variants[/{code}]`
//! and `PUT /products/{no}/variants/{code}` (inventory).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde_json::{json, Value};

use super::catalog::{Catalog, Product, Variant};
use super::query::{shop_no, ProductQuery, SortKey};
use super::render;
use super::AdminCtx;
use crate::error::AdminError;
use crate::state::{lock, Mall, SandboxState};

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

fn parse_product_no(raw: &str) -> Result<u32, AdminError> {
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

pub async fn list(Extension(ctx): Extension<AdminCtx>, Query(params): Params) -> AdminResult {
    let q = ProductQuery::parse(&params)?;
    let shop = checked_shop(&ctx.mall, &params)?;
    let catalog = lock(&ctx.mall.catalog);
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
    Ok(Json(json!({ "products": products })))
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

fn find_variant(catalog: &Catalog, no: u32, code: &str) -> Result<Variant, AdminError> {
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

fn tf_field(req: &Value, key: &str, target: &mut bool) -> Result<(), AdminError> {
    match req.get(key) {
        None => Ok(()),
        Some(Value::String(s)) if s == "T" || s == "F" => {
            *target = s == "T";
            Ok(())
        }
        Some(_) => Err(AdminError::bad_parameter(
            key,
            &format!("{key} must be T or F."),
        )),
    }
}

fn int_field(req: &Value, key: &str, target: &mut i64) -> Result<(), AdminError> {
    match req.get(key) {
        None => Ok(()),
        Some(v) => {
            *target = v.as_i64().filter(|n| *n >= 0).ok_or_else(|| {
                AdminError::bad_parameter(key, &format!("{key} must be a non-negative integer."))
            })?;
            Ok(())
        }
    }
}

fn choice_field(
    req: &Value,
    key: &str,
    allowed: &[&str],
    target: &mut String,
) -> Result<(), AdminError> {
    match req.get(key) {
        None => Ok(()),
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => {
            *target = s.clone();
            Ok(())
        }
        Some(_) => Err(AdminError::bad_parameter(
            key,
            &format!("{key} must be one of {}.", allowed.join(", ")),
        )),
    }
}

/// Applies a `{"shop_no":1,"request":{…}}` body to a variant.
fn apply_update(v: &mut Variant, req: &Value) -> Result<(), AdminError> {
    if !req.is_object() {
        return Err(AdminError::bad_parameter(
            "request",
            "request must be an object.",
        ));
    }
    tf_field(req, "display", &mut v.display)?;
    tf_field(req, "selling", &mut v.selling)?;
    tf_field(req, "use_inventory", &mut v.use_inventory)?;
    tf_field(req, "display_soldout", &mut v.display_soldout)?;
    int_field(req, "quantity", &mut v.quantity)?;
    int_field(req, "safety_inventory", &mut v.safety_inventory)?;
    choice_field(
        req,
        "important_inventory",
        &["A", "B"],
        &mut v.important_inventory,
    )?;
    choice_field(
        req,
        "inventory_control_type",
        &["A", "B"],
        &mut v.inventory_control_type,
    )?;
    if let Some(c) = req.get("custom_variant_code") {
        let c = c
            .as_str()
            .filter(|c| c.chars().count() <= 40)
            .ok_or_else(|| {
                AdminError::bad_parameter(
                    "custom_variant_code",
                    "custom_variant_code must be a string of at most 40 characters.",
                )
            })?;
        v.custom_variant_code = c.to_string();
    }
    if let Some(a) = req.get("additional_amount") {
        let amount: f64 = match a {
            Value::String(s) => s.parse().ok(),
            Value::Number(n) => n.as_f64(),
            _ => None,
        }
        .filter(|x: &f64| x.is_finite())
        .ok_or_else(|| {
            AdminError::bad_parameter(
                "additional_amount",
                "additional_amount must be a decimal amount.",
            )
        })?;
        v.additional_amount = format!("{amount:.2}");
    }
    Ok(())
}

pub async fn update_variant(
    State(state): State<SandboxState>,
    Extension(ctx): Extension<AdminCtx>,
    Path((_mall, no, code)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), AdminError> {
    let body: Value = serde_json::from_slice(&body).map_err(|_| {
        AdminError::new(
            StatusCode::BAD_REQUEST,
            "The request body is not valid JSON.",
        )
    })?;
    let shop = match body.get("shop_no") {
        None => 1,
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| ctx.mall.has_shop(*n))
            .ok_or_else(|| {
                AdminError::bad_parameter("shop_no", "shop_no does not exist in this mall.")
            })?,
    };
    let req = body
        .get("request")
        .ok_or_else(|| AdminError::bad_parameter("request", "request is required."))?;
    let no = parse_product_no(&no)?;
    let (variant, product_code) = {
        let mut catalog = lock(&ctx.mall.catalog);
        let mut v = find_variant(&catalog, no, &code)?;
        apply_update(&mut v, req)?;
        catalog.put_variant(no, v.clone(), state.now());
        (v, super::catalog::product_code(no))
    };
    if state.config.admin_writes_fire_events {
        let resource =
            json!({"product_no": no, "product_code": product_code, "variant_code": variant.code});
        crate::webhooks::fire(
            &state,
            &ctx.mall,
            90002,
            resource,
            crate::webhooks::FireOptions::default(),
        )
        .await;
    }
    Ok((
        StatusCode::OK,
        Json(json!({ "variant": render::updated_variant(&variant, shop) })),
    ))
}
