//! The consent page: app name, requested scopes, and Approve/Deny buttons in a plain HTML
//! form (no JavaScript), so a headless browser can click `#approve` or `#deny`.

use std::collections::HashMap;

use super::authorize::AuthorizeRequest;
use crate::html::escape;

/// Form fields carried from the authorize request to the decision.
const CARRIED: &[&str] = &[
    "response_type",
    "client_id",
    "state",
    "redirect_uri",
    "scope",
];

pub fn page(req: &AuthorizeRequest, params: &HashMap<String, String>) -> String {
    let hidden: String = CARRIED
        .iter()
        .filter_map(|k| params.get(*k).map(|v| (k, v)))
        .map(|(k, v)| {
            format!(
                "    <input type=\"hidden\" name=\"{k}\" value=\"{}\">\n",
                escape(v)
            )
        })
        .collect();
    let scopes: String = req
        .scopes
        .iter()
        .map(|s| format!("      <li class=\"scope\">{}</li>\n", escape(s)))
        .collect();
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Authorize {app} — Cafe24 sandbox</title>
  <style>
    body {{ font-family: sans-serif; max-width: 36rem; margin: 3rem auto; color: #222; }}
    .mall {{ color: #666; }}
    button {{ font-size: 1rem; padding: .5rem 1.5rem; margin-right: 1rem; }}
  </style>
</head>
<body>
  <h1 id="app-name">{app}</h1>
  <p class="mall">Mall <strong id="mall-id">{mall}</strong> (Cafe24 sandbox)</p>
  <p>This app asks for the following permissions:</p>
  <ul id="scopes">
{scopes}  </ul>
  <form method="post" action="/malls/{mall_path}/api/v2/oauth/authorize">
{hidden}    <button type="submit" id="approve" name="decision" value="approve">Approve</button>
    <button type="submit" id="deny" name="decision" value="deny">Deny</button>
  </form>
</body>
</html>
"#,
        app = escape(&req.app.name),
        mall = escape(&req.mall.id),
        mall_path = escape(&req.mall.id),
    )
}
