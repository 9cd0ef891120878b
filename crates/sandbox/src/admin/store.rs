//! `GET /store`: the mall's store information, shaped like the official example.

use std::collections::HashMap;

use axum::extract::Query;
use axum::{Extension, Json};
use serde_json::{json, Value};

use super::query::shop_no;
use super::AdminCtx;
use crate::error::AdminError;

pub async fn show(
    Extension(ctx): Extension<AdminCtx>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, AdminError> {
    let shop = shop_no(&params)?;
    if !ctx.mall.has_shop(shop) {
        return Err(AdminError::bad_parameter(
            "shop_no",
            "shop_no does not exist in this mall.",
        ));
    }
    let id = &ctx.mall.id;
    Ok(Json(json!({"store": {
        "shop_no": shop,
        "shop_name": format!("{id} sandbox shop"),
        "admin_name": ctx.mall.user_id,
        "mall_id": id,
        "base_domain": format!("{id}.cafe24.com"),
        "primary_domain": format!("{id}.cafe24.com"),
        "company_registration_no": "000-00-00000",
        "company_name": format!("{id} Co."),
        "president_name": "Sandbox Owner",
        "company_condition": "Retail",
        "company_line": "E-Commerce Product",
        "country": "Korea",
        "country_code": "KOR",
        "zipcode": "07071",
        "address1": "Sindaebang dong Dongjak-gu, Seoul, Republic of Korea",
        "address2": "Sandbox Hall",
        "phone": "02-0000-0000",
        "fax": "02-0000-0000",
        "email": format!("{id}@example.invalid"),
        "notification_only_email": format!("{id}@example.invalid"),
        "mall_url": format!("https://{id}.cafe24.com"),
        "mail_order_sales_registration": "T",
        "mail_order_sales_registration_number": "0000-Seoul-0000",
        "missing_report_reason_type": "",
        "missing_report_reason": "",
        "about_us_contents": "",
        "company_map_url": "",
        "customer_service_phone": "02-0000-0000",
        "customer_service_email": format!("{id}@example.invalid"),
        "customer_service_fax": "02-0000-0000",
        "customer_service_sms": "02-0000-0000",
        "customer_service_hours": "9:00 AM ~ 5:00 PM",
        "privacy_officer_name": "Sandbox Officer",
        "privacy_officer_position": "Manager",
        "privacy_officer_department": "Information Security Team",
        "privacy_officer_phone": "02-0000-0000",
        "privacy_officer_email": format!("{id}@example.invalid"),
        "contact_us_mobile": "T",
        "contact_us_contents": "",
        "sales_product_categories": ["Apparel"],
        "category_tags": [],
        "business_country": "KR",
        "youtube_shops_logo": ""
    }})))
}
