//! Building the console's HTML: escaping every value that is not the console's own text, the
//! page layout, and times. Pages are `format!`ed strings: a template engine would add a build
//! dependency for a handful of small pages; [`esc`] is the one rule every page follows.

use chrono::{DateTime, SecondsFormat, Utc};
use std::fmt::Write as _;

/// `text` safe inside an element and inside a double-quoted attribute value.
pub fn esc(text: &str) -> String {
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

/// `text` as one query-string value (then escaped for the attribute it goes into by the caller).
pub fn query_value(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A time as a `<time>` element: UTC in the text (the zone named), the browser's local time
/// once the script ran.
pub fn time(t: DateTime<Utc>) -> String {
    let iso = t.to_rfc3339_opts(SecondsFormat::Secs, true);
    format!(
        r#"<time datetime="{iso}">{}</time>"#,
        t.format("%Y-%m-%d %H:%M:%S UTC")
    )
}

/// [`time`] of microseconds since the epoch, or a dash.
pub fn time_us(us: Option<i64>) -> String {
    us.and_then(DateTime::from_timestamp_micros)
        .map_or_else(|| "—".to_owned(), time)
}

/// [`time`] of seconds since the epoch, or the number itself when out of range.
pub fn time_secs(secs: i64) -> String {
    DateTime::from_timestamp(secs, 0).map_or_else(|| secs.to_string(), time)
}

/// Which section of the navigation a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Identities and their pages.
    Identities,
    /// The token inspector.
    Inspect,
    /// Keys.
    Keys,
    /// Activity.
    Activity,
    /// Settings.
    Settings,
    /// Signed out (no navigation).
    None,
}

const NAV: [(Section, &str, &str); 5] = [
    (Section::Identities, "/console/identities", "Identities"),
    (Section::Inspect, "/console/inspect", "Token inspector"),
    (Section::Keys, "/console/keys", "Keys"),
    (Section::Activity, "/console/activity", "Activity"),
    (Section::Settings, "/console/settings", "Settings"),
];

/// A whole page: `main` is already HTML. `csrf` is the session's token (the sign-out form),
/// `None` when signed out.
pub fn page(title: &str, section: Section, csrf: Option<&str>, main: &str) -> String {
    let mut nav = String::new();
    if let Some(csrf) = csrf {
        nav.push_str(r#"<nav aria-label="Console"><ul>"#);
        for (s, href, label) in NAV {
            let current = if s == section {
                r#" aria-current="page""#
            } else {
                ""
            };
            let _ = write!(nav, r#"<li><a href="{href}"{current}>{label}</a></li>"#);
        }
        let _ = write!(
            nav,
            r#"</ul><form method="post" action="/console/sign-out" class="sign-out"><input type="hidden" name="csrf" value="{}"><button type="submit">Sign out</button></form></nav>"#,
            esc(csrf)
        );
    }
    format!(
        r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{} · callsign console</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/console/assets/console.css">
<script src="/console/assets/console.js" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header><a class="brand" href="/console/identities">callsign</a>{nav}</header>
<main id="main" tabindex="-1">
{main}
</main>
</body>
</html>
"##,
        esc(title)
    )
}

/// A copy button for the element with id `target` (shown once the script runs).
pub fn copy_button(target: &str, label: &str) -> String {
    format!(
        r#"<button type="button" class="copy" data-copy="{}" hidden>Copy {}</button>"#,
        esc(target),
        esc(label)
    )
}

/// A notice on top of a page: `kind` is `ok` or `error`.
pub fn notice(kind: &str, html: &str) -> String {
    let role = if kind == "error" { "alert" } else { "status" };
    format!(r#"<p class="notice {kind}" role="{role}">{html}</p>"#)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_elements_and_attributes() {
        assert_eq!(
            esc(r#"<script>alert("x") & 'y'</script>"#),
            "&lt;script&gt;alert(&quot;x&quot;) &amp; &#39;y&#39;&lt;/script&gt;"
        );
        assert_eq!(esc("plain 8:acs:id_1"), "plain 8:acs:id_1");
    }

    #[test]
    fn times_name_their_zone() {
        let t = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        assert_eq!(
            time(t),
            r#"<time datetime="2023-11-14T22:13:20Z">2023-11-14 22:13:20 UTC</time>"#
        );
        assert_eq!(time_us(None), "—");
    }

    #[test]
    fn signed_out_pages_have_no_navigation() {
        let html = page("Sign in", Section::None, None, "<p>x</p>");
        assert!(!html.contains("<nav"));
        let html = page("Keys", Section::Keys, Some("tok"), "");
        assert!(html.contains(r#"href="/console/keys" aria-current="page""#));
        assert!(html.contains(r#"name="csrf" value="tok""#));
    }
}
