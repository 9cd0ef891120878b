//! `api MALL METHOD PATH`: one Admin API call with the mall's managed token, pacing and retries,
//! the JSON answer on stdout — or, with `--all`, every page as one JSON array, streamed, with a
//! progress bar on a terminal.

use std::io::Write;

use anyhow::Context as _;
use cafe24_client::pages::DEFAULT_OFFSET_CAP;
use cafe24_client::{ApiError, Client, MallClient, Method, Pages, Request};
use cafe24_core::settings::{AppSettings, ClientSettings, Source};

use super::context::lifecycle;
use crate::args::ApiArgs;

pub async fn run(source: &Source, args: &ApiArgs) -> anyhow::Result<()> {
    let app = AppSettings::load(source)?;
    let settings = ClientSettings::load(source)?;
    let manager = lifecycle(source).await?;
    let client = Client::new(manager.clone(), &app, settings)?;
    let mall = client.mall(args.mall_id.clone());
    let result = if args.all {
        all_pages(&mall, args).await
    } else {
        one_call(&mall, args).await
    };
    manager.store().close().await;
    result
}

async fn one_call(mall: &MallClient, args: &ApiArgs) -> anyhow::Result<()> {
    let mut req = Request::new(args.method.clone(), &args.path)?.queries(args.query.clone());
    if let Some(body) = &args.data {
        req = req.json(body.clone());
    }
    if args.retry_post {
        req = req.retry_safe();
    }
    match mall.send(&req).await {
        Ok(response) => print_json(&response.body),
        Err(e) => {
            if let ApiError::Cafe24 { body, .. } = &e {
                if !body.is_null() {
                    print_json(body)?;
                }
            }
            Err(e.into())
        }
    }
}

async fn all_pages(mall: &MallClient, args: &ApiArgs) -> anyhow::Result<()> {
    if args.method != Method::GET || args.data.is_some() {
        anyhow::bail!("--all reads pages: use it with GET and no --data");
    }
    let filters: Vec<(&str, &str)> = args
        .query
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let path = Request::get(&args.path)?.path().to_owned();
    let (mut pages, total) = if path == "/products" {
        let total = mall.products_count(&filters).await?;
        (Pages::products(mall.clone(), &filters)?, Some(total))
    } else {
        (
            Pages::list(mall.clone(), &path, &filters, DEFAULT_OFFSET_CAP)?,
            None,
        )
    };
    // Drawn on stderr, and only when it is a terminal.
    let bar = match total {
        Some(n) => indicatif::ProgressBar::new(n),
        None => indicatif::ProgressBar::new_spinner(),
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    out.write_all(b"[")?;
    let mut first = true;
    while let Some(page) = pages.next_page().await? {
        for item in &page {
            out.write_all(if first { b"\n" } else { b",\n" })?;
            first = false;
            serde_json::to_writer(&mut out, item)?;
        }
        out.flush()?;
        bar.inc(page.len() as u64);
    }
    out.write_all(b"\n]\n")?;
    out.flush()?;
    bar.finish_and_clear();
    tracing::info!(
        pages = pages.pages(),
        items = pages.items(),
        "read every page"
    );
    Ok(())
}

fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value).context("printing the answer")?;
    println!("{text}");
    Ok(())
}

/// The Admin API proxy for `serve`, when `CAFE24_ADMIN_TOKEN` is set; `None` otherwise. It uses
/// the server's one client (and so its token manager and per-mall pacing).
pub fn proxy(
    client: Option<&Client>,
    settings: &ClientSettings,
) -> Option<std::sync::Arc<cafe24_server::Proxy>> {
    let (client, admin_token) = (client?, settings.admin_token.clone()?);
    tracing::info!("Admin API proxy enabled under /internal/malls/{{mall_id}}/api/v2/admin/");
    Some(std::sync::Arc::new(cafe24_server::Proxy::new(
        client.clone(),
        admin_token,
    )))
}
