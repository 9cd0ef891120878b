//! Every page of /products, past the 5,000 offset cap.

use crate::support::{rig, Time};

#[tokio::test]
async fn twelve_thousand_products_are_read_completely_in_order_without_a_429() {
    // The real bucket (40 deep, 2/s), on virtual time: 121 pages take a virtual minute.
    let rig = rig(&[("bigmall", 12_000)], Time::Virtual, &[]).await;
    let shop = rig.mall("bigmall");
    assert_eq!(shop.products_count(&[]).await.expect("count"), 12_000);

    let mut pages = shop.product_pages(&[]).expect("pager");
    let mut numbers = Vec::new();
    while let Some(page) = pages.next_products().await.expect("page") {
        assert!(page.len() <= 100);
        numbers.extend(page.iter().map(|p| p.product_no));
    }

    let expected: Vec<u64> = (1..=12_000).collect();
    assert_eq!(numbers.len(), expected.len());
    assert!(numbers == expected, "not every product once, in order");
    // 51 offset pages (0..=5000), 69 full keyset pages, one empty page that ends it.
    assert_eq!(pages.pages(), 121);
    let stats = rig.stats("bigmall");
    assert_eq!(stats.api_calls, 122, "the count plus every page, each once");
    assert_eq!(stats.rate_limited, 0);
    assert_eq!(rig.client.metrics().attempts("429"), 0);
    let pace = shop.pacer().stats();
    assert_eq!(pace.granted, 122);
    // 82 calls past the burst at 2/s: the pacer held calls back ~41 s in all.
    assert!(pace.waited_ms >= 40_000, "{pace:?}");
    // Past the 40-call burst, 2 calls per virtual second.
    assert!(rig.virtual_now().as_secs_f64() >= (122.0 - 40.0) / 2.0 - 0.01);
}

#[tokio::test]
async fn a_filter_that_sets_paging_is_refused() {
    let rig = rig(&[("shop", 10)], Time::Virtual, &[]).await;
    for key in ["offset", "limit", "since_product_no", "order"] {
        assert!(
            rig.mall("shop").product_pages(&[(key, "1")]).is_err(),
            "{key}"
        );
    }
}

#[tokio::test]
async fn a_short_catalogue_is_one_page_and_filters_apply() {
    let rig = rig(&[("shop", 250)], Time::Virtual, &[]).await;
    let mut pages = rig.mall("shop").product_pages(&[]).expect("pager");
    let mut n = 0;
    while let Some(page) = pages.next_page().await.expect("page") {
        n += page.len();
    }
    assert_eq!((n, pages.pages()), (250, 3));
}
