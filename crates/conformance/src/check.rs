//! What a case returns: a note when it passed, a [`Failure`] saying what was expected and what
//! happened when it did not. Any error (HTTP, database) converts into a failure.

/// Why a case failed, in words a developer of the target can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure(String);

impl Failure {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    pub fn message(&self) -> &str {
        &self.0
    }
}

impl<E: std::error::Error> From<E> for Failure {
    fn from(e: E) -> Self {
        // The whole chain: reqwest and sqlx put the useful part in the source.
        let mut message = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            let text = s.to_string();
            if !message.contains(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = s.source();
        }
        if message.contains("relation \"cafe24.") && message.contains("does not exist") {
            message.push_str(" (the contract's schema is missing: the target applies the migrations at start-up)");
        }
        Self(message)
    }
}

/// A passed case's note (timings, counts), or why it failed.
pub type Outcome = Result<String, Failure>;

/// Adds what was being done to an error.
pub trait Context<T> {
    fn context(self, what: &str) -> Result<T, Failure>;
}

impl<T, E: Into<Failure>> Context<T> for Result<T, E> {
    fn context(self, what: &str) -> Result<T, Failure> {
        self.map_err(|e| Failure::new(format!("{what}: {}", e.into().message())))
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, what: &str) -> Result<T, Failure> {
        self.ok_or_else(|| Failure::new(what.to_owned()))
    }
}

/// Fails the case with a formatted message unless the condition holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($message:tt)+) => {
        if !$cond {
            return Err($crate::check::Failure::new(format!($($message)+)));
        }
    };
}
