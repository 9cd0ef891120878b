//! The axum router.
