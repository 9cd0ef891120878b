//! `PUT /products/{no}/variants/{code}`: updates a variant and its inventory from
//! `{"shop_no":1,"request":{…}}` and answers in the official shape (`inventories` object).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde_json::{json, Value};

use super::catalog::Variant;
use super::products::{find_variant, parse_product_no};
use super::render;
use super::AdminCtx;
use crate::error::AdminError;
use crate::state::{lock, SandboxState};

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
