//! Deterministic seeded products and variants of a mall, plus the changes made through the API.
//!
//! A product is a pure function of (mall id, product number), so thousands of products cost
//! nothing until asked for; only variants changed by `PUT` are stored.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};

const ADJECTIVES: &[&str] = &[
    "Classic",
    "Linen",
    "Cotton",
    "Wool",
    "Denim",
    "Silk",
    "Vintage",
    "Urban",
    "Cozy",
    "Slim",
    "Oversized",
    "Everyday",
];
const NOUNS: &[&str] = &[
    "Shirt", "Jacket", "Dress", "Skirt", "Cardigan", "Hoodie", "Coat", "Blouse", "Trousers",
    "Scarf", "Sneakers", "Tote Bag",
];
const COLORS: &[&str] = &["Black", "White", "Blue", "Red", "Beige", "Green"];
const SIZES: &[&str] = &["S", "M", "L", "XL"];

/// A seeded product.
#[derive(Debug, Clone, PartialEq)]
pub struct Product {
    pub no: u32,
    pub code: String,
    pub name: String,
    /// Price in whole won.
    pub price: u64,
    pub display: bool,
    pub selling: bool,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    pub variant_count: u32,
}

/// A product variant with its inventory.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    pub code: String,
    pub options: Vec<(String, String)>,
    pub custom_variant_code: String,
    pub display: bool,
    pub selling: bool,
    pub display_order: u32,
    pub additional_amount: String,
    pub quantity: i64,
    pub safety_inventory: i64,
    pub use_inventory: bool,
    pub important_inventory: String,
    pub inventory_control_type: String,
    pub display_soldout: bool,
}

/// The catalog of one mall.
#[derive(Debug)]
pub struct Catalog {
    seed: u64,
    count: u32,
    variants: HashMap<String, Variant>,
    updated: HashMap<u32, DateTime<Utc>>,
}

/// FNV-1a, then SplitMix64: stable across platforms and releases.
fn mix(seed: u64, n: u64) -> u64 {
    let mut z = seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Letters A..Z counting from 0, left-padded with `0` to `width` (Cafe24's code style).
fn letters(mut n: u64, width: usize) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'A' + (n % 26) as u8);
        n /= 26;
        if n == 0 {
            break;
        }
    }
    while out.len() < width {
        out.push(b'0');
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

/// `product_code` of a product number: 8 chars like `P000000X` (product 24).
pub fn product_code(no: u32) -> String {
    format!("P{}", letters(u64::from(no.saturating_sub(1)), 7))
}

/// `variant_code`: the product code plus 4 chars like `000A`, 12 chars in all.
pub fn variant_code(no: u32, index: u32) -> String {
    format!("{}{}", product_code(no), letters(u64::from(index), 4))
}

fn epoch() -> DateTime<Utc> {
    DateTime::from_timestamp(1_704_067_200, 0).unwrap_or_default() // 2024-01-01T00:00:00Z
}

impl Catalog {
    pub fn new(mall_id: &str, count: u32) -> Self {
        Self {
            seed: fnv(mall_id),
            count,
            variants: HashMap::new(),
            updated: HashMap::new(),
        }
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    pub fn product(&self, no: u32) -> Option<Product> {
        if no == 0 || no > self.count {
            return None;
        }
        let h = mix(self.seed, u64::from(no));
        let name = format!(
            "{} {} {}",
            ADJECTIVES[(h % ADJECTIVES.len() as u64) as usize],
            NOUNS[((h >> 8) % NOUNS.len() as u64) as usize],
            no
        );
        let created = epoch() + Duration::hours(i64::from(no));
        let updated = self
            .updated
            .get(&no)
            .copied()
            .unwrap_or_else(|| created + Duration::seconds(((h >> 16) % 86_400) as i64));
        Some(Product {
            no,
            code: product_code(no),
            name,
            price: 1000 + ((h >> 24) % 500) * 100,
            display: !(h >> 40).is_multiple_of(10),
            selling: !(h >> 44).is_multiple_of(10),
            created,
            updated,
            variant_count: 2 + ((h >> 48) % 3) as u32,
        })
    }

    /// Looks a product up by its code.
    pub fn product_no_of_code(&self, code: &str) -> Option<u32> {
        (1..=self.count).find(|&n| product_code(n) == code)
    }

    pub fn variants(&self, product: &Product) -> Vec<Variant> {
        (0..product.variant_count)
            .map(|i| {
                let code = variant_code(product.no, i);
                self.variants
                    .get(&code)
                    .cloned()
                    .unwrap_or_else(|| self.seeded_variant(product.no, i, code))
            })
            .collect()
    }

    fn seeded_variant(&self, no: u32, i: u32, code: String) -> Variant {
        let h = mix(self.seed ^ 0x5EED, u64::from(no) * 16 + u64::from(i));
        let color = COLORS[((u64::from(no) + u64::from(i) / 2) % COLORS.len() as u64) as usize];
        let size = SIZES[(i as usize) % SIZES.len()];
        Variant {
            code,
            options: vec![("Color".into(), color.into()), ("Size".into(), size.into())],
            custom_variant_code: String::new(),
            display: true,
            selling: true,
            display_order: i + 1,
            additional_amount: "0.00".into(),
            quantity: (h % 50) as i64,
            safety_inventory: ((h >> 8) % 5) as i64,
            use_inventory: true,
            important_inventory: "A".into(),
            inventory_control_type: "A".into(),
            display_soldout: true,
        }
    }

    /// Stores a changed variant and bumps the product's `updated_date`.
    pub fn put_variant(&mut self, product_no: u32, variant: Variant, now: DateTime<Utc>) {
        self.variants.insert(variant.code.clone(), variant);
        self.updated.insert(product_no, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_cafe24_shapes() {
        assert_eq!(product_code(24), "P000000X");
        assert_eq!(product_code(55), "P00000CC");
        assert_eq!(variant_code(18, 2), "P000000R000C");
        assert_eq!(variant_code(18, 2).len(), 12);
    }

    #[test]
    fn seeding_is_deterministic_per_mall() {
        let a = Catalog::new("shop", 10);
        let b = Catalog::new("shop", 10);
        assert_eq!(a.product(7), b.product(7));
        assert!(a.product(11).is_none());
        assert!(a.product(0).is_none());
    }
}
