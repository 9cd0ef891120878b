//! Product JSON, written straight into a string: the list endpoint is the hot path of
//! benchmarks, and building a `serde_json::Value` per product cost ten times more.
//!
//! Shapes follow the official example in the fixtures: `"T"`/`"F"` flags, money as
//! 2-decimal strings, dates with `+09:00`. Fields that do not vary between products are one
//! constant block.

use std::fmt::Write;

use serde_json::Value;

use super::catalog::Product;
use crate::clock::resource_time;

/// Members identical for every seeded product (valid JSON object members, comma-terminated).
const CONSTANT_MEMBERS: &str = concat!(
    "\"custom_product_code\":\"\",",
    "\"supply_product_name\":\"\",",
    "\"internal_product_name\":\"\",",
    "\"model_name\":\"\",",
    "\"retail_price\":\"0.00\",",
    "\"product_condition\":\"N\",",
    "\"product_used_month\":null,",
    "\"summary_description\":\"\",",
    "\"margin_rate\":\"40.00\",",
    "\"tax_calculation\":\"A\",",
    "\"tax_type\":\"A\",",
    "\"tax_rate\":10,",
    "\"price_content\":null,",
    "\"buy_limit_by_product\":\"F\",",
    "\"buy_limit_type\":\"F\",",
    "\"buy_group_list\":[],",
    "\"buy_member_id_list\":[],",
    "\"repurchase_restriction\":\"F\",",
    "\"single_purchase_restriction\":\"F\",",
    "\"single_purchase\":\"F\",",
    "\"buy_unit_type\":\"O\",",
    "\"buy_unit\":1,",
    "\"order_quantity_limit_type\":\"O\",",
    "\"minimum_quantity\":1,",
    "\"maximum_quantity\":0,",
    "\"points_by_product\":\"F\",",
    "\"points_setting_by_payment\":\"C\",",
    "\"points_amount\":[],",
    "\"except_member_points\":\"F\",",
    "\"product_volume\":{\"use_product_volume\":\"F\",\"product_width\":\"\",\"product_height\":\"\",\"product_length\":\"\"},",
    "\"adult_certification\":\"F\",",
    "\"use_naverpay\":\"T\",",
    "\"naverpay_type\":\"C\",",
    "\"use_kakaopay\":\"T\",",
    "\"manufacturer_code\":\"M0000000\",",
    "\"trend_code\":\"T0000000\",",
    "\"brand_code\":\"B0000000\",",
    "\"supplier_code\":\"S0000000\",",
    "\"made_date\":\"\",",
    "\"release_date\":\"\",",
    "\"expiration_date\":{\"start_date\":null,\"end_date\":null},",
    "\"origin_classification\":\"F\",",
    "\"origin_place_no\":1798,",
    "\"origin_place_value\":\"\",",
    "\"made_in_code\":\"KR\",",
    "\"icon_show_period\":{\"start_date\":null,\"end_date\":null},",
    "\"icon\":[],",
    "\"hscode\":\"\",",
    "\"product_weight\":\"1.00\",",
    "\"product_material\":\"\",",
    "\"english_product_material\":null,",
    "\"cloth_fabric\":null,",
    "\"list_icon\":{\"soldout_icon\":false,\"recommend_icon\":false,\"new_icon\":false},",
    "\"approve_status\":\"\",",
    "\"classification_code\":\"C000000A\",",
    "\"sold_out\":\"F\",",
    "\"additional_price\":\"0.00\",",
    "\"clearance_category_eng\":null,",
    "\"clearance_category_kor\":null,",
    "\"clearance_category_code\":null,",
    "\"exposure_limit_type\":\"A\",",
    "\"exposure_group_list\":[],",
    "\"set_product_type\":null,",
    "\"shipping_fee_by_product\":\"F\",",
    "\"shipping_fee_type\":\"T\",",
    "\"main\":[],",
    "\"market_sync\":\"F\",",
    "\"cultural_tax_deduction\":\"F\",",
    "\"size_guide\":{\"use\":\"F\",\"type\":\"default\",\"default\":null,\"description\":null},",
);

/// Extra members of `GET /products/{no}` (the detail view).
const DETAIL_MEMBERS: &str = concat!(
    "\"category\":[{\"category_no\":24,\"recommend\":\"F\",\"new\":\"T\"}],",
    "\"mobile_description\":\"\",\"shipping_rates\":[],",
    "\"additional_information\":[],\"relational_product\":[],",
);

fn tf(b: bool) -> &'static str {
    if b {
        "T"
    } else {
        "F"
    }
}

/// A JSON string literal (quoted and escaped).
fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// A product as in `GET /products` (list item) or `GET /products/{no}` (`detail`), as JSON text.
pub fn product_text(p: &Product, shop_no: u32, detail: bool) -> String {
    let ex_tax = (p.price as f64 / 1.1 * 100.0).round() / 100.0;
    let image = |size: &str| {
        format!(
            "https://{{domain}}/web/product/{size}/202401/{}.png",
            p.code
        )
    };
    let name = quoted(&p.name);
    let mut s = String::with_capacity(2800);
    s.push('{');
    s.push_str(CONSTANT_MEMBERS);
    if detail {
        s.push_str(DETAIL_MEMBERS);
        let _ = write!(
            s,
            "\"description\":{},",
            quoted(&format!("<p>{}</p>", p.name))
        );
    }
    let _ = write!(
        s,
        concat!(
            "\"shop_no\":{},\"product_no\":{},\"product_code\":{},\"product_name\":{},",
            "\"eng_product_name\":{},\"price_excluding_tax\":\"{:.2}\",\"price\":\"{}.00\",",
            "\"supply_price\":\"{}.00\",\"display\":\"{}\",\"selling\":\"{}\",",
            "\"detail_image\":{},\"list_image\":{},\"tiny_image\":{},\"small_image\":{},",
            "\"created_date\":\"{}\",\"updated_date\":\"{}\"}}"
        ),
        shop_no,
        p.no,
        quoted(&p.code),
        name,
        name,
        ex_tax,
        p.price,
        p.price * 6 / 10,
        tf(p.display),
        tf(p.selling),
        quoted(&image("big")),
        quoted(&image("medium")),
        quoted(&image("tiny")),
        quoted(&image("small")),
        resource_time(p.created),
        resource_time(p.updated),
    );
    s
}

/// The same product as a `Value`, for `fields=`/`embed=` (the slow path).
pub fn product(p: &Product, shop_no: u32, detail: bool) -> Value {
    serde_json::from_str(&product_text(p, shop_no, detail)).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::catalog::Catalog;

    #[test]
    fn product_text_is_valid_json_with_the_fixture_conventions() {
        let c = Catalog::new("shop", 30);
        let p = c.product(24).unwrap_or_else(|| panic!("seeded"));
        let v = product(&p, 1, true);
        assert_eq!(v["product_code"], "P000000X");
        assert_eq!(v["shop_no"], 1);
        assert!(v["price"].as_str().is_some_and(|s| s.ends_with(".00")));
        assert!(v["created_date"]
            .as_str()
            .is_some_and(|s| s.ends_with("+09:00")));
        assert!(v["size_guide"].is_object());
        assert!(v["description"].is_string());
        assert!(v.as_object().is_some_and(|o| o.len() > 80));
    }
}
