//! One module per route group.

pub mod callback;
pub mod health;
pub mod install;
pub mod proxy;
pub mod webhooks;

/// The single value of `name` in a query, or an error for a repeated parameter.
pub(crate) fn single_param(query: &str, name: &str) -> Result<Option<String>, crate::ApiError> {
    let mut found = None;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        if key == name {
            if found.is_some() {
                return Err(crate::ApiError::bad_request(
                    "duplicate_parameter",
                    format!("The parameter {name} appears more than once."),
                ));
            }
            found = Some(value.into_owned());
        }
    }
    Ok(found.filter(|v| !v.is_empty()))
}
