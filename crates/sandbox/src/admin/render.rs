//! JSON shapes of products and variants, following the official examples in the fixtures:
//! `"T"`/`"F"` flags, money as 2-decimal strings, dates with `+09:00`.

use serde_json::{json, Map, Value};

use super::catalog::Variant;

fn tf(b: bool) -> &'static str {
    if b {
        "T"
    } else {
        "F"
    }
}

pub use super::product_json::product;

/// A variant as in `GET /products/{no}/variants`.
pub fn variant(v: &Variant, shop_no: u32) -> Value {
    json!({
        "shop_no": shop_no,
        "variant_code": v.code,
        "options": options(v),
        "custom_variant_code": v.custom_variant_code,
        "display": tf(v.display),
        "selling": tf(v.selling),
        "display_order": v.display_order,
        "additional_amount": v.additional_amount,
        "use_inventory": tf(v.use_inventory),
        "important_inventory": v.important_inventory,
        "inventory_control_type": v.inventory_control_type,
        "display_soldout": tf(v.display_soldout),
        "quantity": v.quantity,
        "safety_inventory": v.safety_inventory,
        "image": null
    })
}

/// The `PUT …/variants/{code}` response: `inventories` is an object, as in the official example.
pub fn updated_variant(v: &Variant, shop_no: u32) -> Value {
    json!({
        "shop_no": shop_no,
        "variant_code": v.code,
        "options": options(v),
        "custom_variant_code": v.custom_variant_code,
        "duplicated_custom_variant_code": "F",
        "display": tf(v.display),
        "selling": tf(v.selling),
        "display_order": v.display_order,
        "additional_amount": v.additional_amount,
        "inventories": {
            "shop_no": shop_no,
            "variant_code": v.code,
            "quantity": v.quantity,
            "use_inventory": tf(v.use_inventory),
            "important_inventory": v.important_inventory,
            "inventory_control_type": v.inventory_control_type,
            "display_soldout": tf(v.display_soldout),
            "safety_inventory": v.safety_inventory
        }
    })
}

fn options(v: &Variant) -> Value {
    Value::Array(
        v.options
            .iter()
            .map(|(n, val)| json!({"name": n, "value": val}))
            .collect(),
    )
}

/// Keeps only the requested top-level fields (`fields=a,b`); no list keeps everything.
pub fn select_fields(v: Value, fields: Option<&[String]>) -> Value {
    match (v, fields) {
        (Value::Object(obj), Some(keep)) => {
            let m: Map<String, Value> = obj
                .into_iter()
                .filter(|(k, _)| keep.iter().any(|f| f == k))
                .collect();
            Value::Object(m)
        }
        (v, _) => v,
    }
}
