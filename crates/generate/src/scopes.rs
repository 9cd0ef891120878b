//! Cafe24's scope catalogue (CAFE24.md §8): `mall.read_X` / `mall.write_X` for each resource,
//! plus the two read-only extras.

const RESOURCES: &[&str] = &[
    "category",
    "product",
    "collection",
    "supply",
    "personal",
    "order",
    "community",
    "customer",
    "notification",
    "store",
    "promotion",
    "design",
    "application",
    "salesreport",
    "privacy",
    "mileage",
    "shipping",
    "translation",
];

const EXTRAS: &[&str] = &["mall.read_customer_Identifier", "mall.read_analytics"];

/// Every scope an app may ask for.
pub fn catalogue() -> Vec<String> {
    let mut all: Vec<String> = RESOURCES
        .iter()
        .flat_map(|r| [format!("mall.read_{r}"), format!("mall.write_{r}")])
        .collect();
    all.extend(EXTRAS.iter().map(|s| (*s).to_owned()));
    all
}

pub fn is_known(scope: &str) -> bool {
    catalogue().iter().any(|s| s == scope)
}

/// The known name closest to `raw`, if one is close enough to be a plausible typo.
pub fn closest<'a>(raw: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .map(|k| {
            (
                strsim::jaro_winkler(&raw.to_lowercase(), &k.to_lowercase()),
                k,
            )
        })
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_has_reads_writes_and_the_extras() {
        assert!(is_known("mall.read_product") && is_known("mall.write_order"));
        assert!(is_known("mall.read_analytics"));
        assert!(!is_known("mall.read_products") && !is_known("read_product"));
        assert_eq!(catalogue().len(), RESOURCES.len() * 2 + EXTRAS.len());
    }

    #[test]
    fn typos_get_the_closest_scope() {
        let all = catalogue();
        let known = || all.iter().map(String::as_str);
        assert_eq!(
            closest("mall.read_products", known()),
            Some("mall.read_product")
        );
        assert_eq!(closest("mall.raed_store", known()), Some("mall.read_store"));
        assert_eq!(closest("zzz", known()), None);
    }
}
