//! JSON shapes of products and variants, following the official examples in the fixtures:
//! `"T"`/`"F"` flags, money as 2-decimal strings, dates with `+09:00`.

use serde_json::{json, Map, Value};

use super::catalog::{Product, Variant};
use crate::clock::resource_time;

fn tf(b: bool) -> &'static str {
    if b {
        "T"
    } else {
        "F"
    }
}

fn money(won: u64) -> String {
    format!("{won}.00")
}

/// A product as in `GET /products` (list item) or `GET /products/{no}` (`detail`).
pub fn product(p: &Product, shop_no: u32, detail: bool) -> Value {
    let ex_tax = (p.price as f64 / 1.1 * 100.0).round() / 100.0;
    let image = format!(
        "https://{{domain}}/web/product/medium/202401/{}.png",
        p.code
    );
    let mut v = json!({
        "shop_no": shop_no,
        "product_no": p.no,
        "product_code": p.code,
        "custom_product_code": "",
        "product_name": p.name,
        "eng_product_name": p.name,
        "supply_product_name": "",
        "internal_product_name": "",
        "model_name": "",
        "price_excluding_tax": format!("{ex_tax:.2}"),
        "price": money(p.price),
        "retail_price": "0.00",
        "supply_price": money(p.price * 6 / 10),
        "display": tf(p.display),
        "selling": tf(p.selling),
        "product_condition": "N",
        "product_used_month": null,
        "summary_description": "",
        "margin_rate": "40.00",
        "tax_calculation": "A",
        "tax_type": "A",
        "tax_rate": 10,
        "price_content": null,
        "buy_limit_by_product": "F",
        "buy_limit_type": "F",
        "buy_group_list": [],
        "buy_member_id_list": [],
        "repurchase_restriction": "F",
        "single_purchase_restriction": "F",
        "single_purchase": "F",
        "buy_unit_type": "O",
        "buy_unit": 1,
        "order_quantity_limit_type": "O",
        "minimum_quantity": 1,
        "maximum_quantity": 0,
        "points_by_product": "F",
        "points_setting_by_payment": "C",
        "points_amount": [],
        "except_member_points": "F",
        "product_volume": {
            "use_product_volume": "F",
            "product_width": "",
            "product_height": "",
            "product_length": ""
        },
        "adult_certification": "F",
        "detail_image": image.replace("/medium/", "/big/"),
        "list_image": image,
        "tiny_image": image.replace("/medium/", "/tiny/"),
        "small_image": image.replace("/medium/", "/small/"),
        "use_naverpay": "T",
        "naverpay_type": "C",
        "use_kakaopay": "T",
        "manufacturer_code": "M0000000",
        "trend_code": "T0000000",
        "brand_code": "B0000000",
        "supplier_code": "S0000000",
        "made_date": "",
        "release_date": "",
        "expiration_date": {"start_date": null, "end_date": null},
        "origin_classification": "F",
        "origin_place_no": 1798,
        "origin_place_value": "",
        "made_in_code": "KR",
        "icon_show_period": {"start_date": null, "end_date": null},
        "icon": [],
        "hscode": "",
        "product_weight": "1.00",
        "product_material": "",
        "created_date": resource_time(p.created),
        "updated_date": resource_time(p.updated),
        "english_product_material": null,
        "cloth_fabric": null,
        "list_icon": {"soldout_icon": false, "recommend_icon": false, "new_icon": false},
        "approve_status": "",
        "classification_code": "C000000A",
        "sold_out": "F",
        "additional_price": "0.00",
        "clearance_category_eng": null,
        "clearance_category_kor": null,
        "clearance_category_code": null,
        "exposure_limit_type": "A",
        "exposure_group_list": [],
        "set_product_type": null,
        "shipping_fee_by_product": "F",
        "shipping_fee_type": "T",
        "main": [],
        "market_sync": "F",
        "cultural_tax_deduction": "F",
        "size_guide": {"use": "F", "type": "default", "default": null, "description": null}
    });
    if detail {
        if let Some(obj) = v.as_object_mut() {
            obj.insert(
                "category".into(),
                json!([{"category_no": 24, "recommend": "F", "new": "T"}]),
            );
            obj.insert("description".into(), json!(format!("<p>{}</p>", p.name)));
            obj.insert("mobile_description".into(), json!(""));
            obj.insert("shipping_rates".into(), json!([]));
            obj.insert("additional_information".into(), json!([]));
            obj.insert("relational_product".into(), json!([]));
        }
    }
    v
}

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
