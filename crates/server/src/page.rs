//! The small HTML page a browser sees instead of JSON.

use axum::http::StatusCode;

/// How a JSON response reads as a page; attached to responses as an extension.
#[derive(Debug, Clone)]
pub struct View {
    pub ok: bool,
    pub title: String,
    pub message: String,
}

impl View {
    pub fn success(title: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            ok: true,
            title: title.into(),
            message: message.into(),
        }
    }

    pub fn failure(status: StatusCode, message: impl Into<String>) -> Self {
        let title = match status.as_u16() {
            500..=599 => "Temporarily unavailable",
            _ => "This link did not work",
        };
        Self {
            ok: false,
            title: title.into(),
            message: message.into(),
        }
    }

    pub fn render(&self) -> String {
        format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{title}</title><style>body{{font-family:system-ui,sans-serif;max-width:36rem;\
             margin:4rem auto;padding:0 1rem;line-height:1.5}}h1{{font-size:1.5rem}}\
             .ok{{color:#17663a}}.fail{{color:#a4262c}}</style></head>\n<body>\
             <h1 id=\"result\" class=\"{class}\" data-ok=\"{ok}\">{title}</h1>\
             <p id=\"message\">{message}</p></body></html>\n",
            title = escape(&self.title),
            message = escape(&self.message),
            class = if self.ok { "ok" } else { "fail" },
            ok = self.ok,
        )
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_their_text() {
        let html = View::success("<b>", "a & \"b\"").render();
        assert!(html.contains("&lt;b&gt;") && html.contains("a &amp; &quot;b&quot;"));
        assert!(!html.contains("<b>"));
    }
}
