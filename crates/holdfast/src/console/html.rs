//! The console's HTML: escaping, the page frame, and the small pieces forms are built from.
//!
//! Every value that did not come from this file goes through `esc` (text and attributes alike),
//! so a queue name, a tag or a message body can never become markup.

use std::fmt::Write as _;

/// `text` with the five HTML-significant characters escaped; safe in text and quoted attributes.
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

/// `text` percent-encoded for a URL path segment or query value.
pub fn url(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// What the page frame shows besides the body.
pub struct Frame<'a> {
    pub title: &'a str,
    /// Who is signed in (the access key), shown with a sign-out button.
    pub signed_in_as: Option<&'a str>,
    /// The session's CSRF token, for the sign-out form.
    pub csrf: Option<&'a str>,
    /// A line to show above the body: `(true, text)` for an error, `(false, text)` for news.
    pub notice: Option<(bool, String)>,
}

/// A whole page: the frame around `body`.
pub fn page(frame: &Frame<'_>, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 2048);
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · holdfast</title>\
         <link rel=\"stylesheet\" href=\"/console/assets/console.css\">\
         <script src=\"/console/assets/console.js\" defer></script></head><body>\
         <header><a class=\"brand\" href=\"/console\">holdfast</a>\
         <nav><a href=\"/console\">Queues</a> <a href=\"/console/new\">Create queue</a></nav>",
        title = esc(frame.title)
    );
    if let (Some(who), Some(csrf)) = (frame.signed_in_as, frame.csrf) {
        let _ = write!(
            out,
            "<form class=\"who\" method=\"post\" action=\"/console/sign-out\">{}<span>{}</span> \
             <button type=\"submit\">Sign out</button></form>",
            csrf_field(csrf),
            esc(who)
        );
    }
    out.push_str("</header><main>");
    if let Some((error, text)) = &frame.notice {
        let class = if *error { "notice error" } else { "notice" };
        let role = if *error { "alert" } else { "status" };
        let _ = write!(out, "<p class=\"{class}\" role=\"{role}\">{}</p>", esc(text));
    }
    out.push_str(body);
    out.push_str("</main></body></html>\n");
    out
}

pub fn csrf_field(csrf: &str) -> String {
    format!("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", esc(csrf))
}

/// A labelled text input.
pub fn input(name: &str, label: &str, value: &str, hint: &str) -> String {
    let hint = if hint.is_empty() { String::new() } else { format!("<small>{}</small>", esc(hint)) };
    format!(
        "<label>{label}<input name=\"{name}\" id=\"{name}\" value=\"{value}\">{hint}</label>",
        label = esc(label),
        name = esc(name),
        value = esc(value),
    )
}

/// A labelled checkbox.
pub fn checkbox(name: &str, label: &str, checked: bool) -> String {
    format!(
        "<label class=\"check\"><input type=\"checkbox\" name=\"{name}\" id=\"{name}\" value=\"true\"{checked}> {label}</label>",
        name = esc(name),
        label = esc(label),
        checked = if checked { " checked" } else { "" }
    )
}

/// A labelled select of `(value, text)` options.
pub fn select(name: &str, label: &str, options: &[(String, String)], selected: &str) -> String {
    let mut out = format!("<label>{}<select name=\"{name}\" id=\"{name}\">", esc(label), name = esc(name));
    for (value, text) in options {
        let mark = if value == selected { " selected" } else { "" };
        let _ = write!(out, "<option value=\"{}\"{mark}>{}</option>", esc(value), esc(text));
    }
    out.push_str("</select></label>");
    out
}

/// A labelled text area.
pub fn textarea(name: &str, label: &str, value: &str, rows: u32) -> String {
    format!(
        "<label>{label}<textarea name=\"{name}\" id=\"{name}\" rows=\"{rows}\">{value}</textarea></label>",
        label = esc(label),
        name = esc(name),
        value = esc(value)
    )
}

/// A form that is one button (purge, delete, cancel...), posting `fields` with the CSRF token.
pub fn button_form(action: &str, label: &str, csrf: &str, fields: &[(&str, &str)], class: &str) -> String {
    let mut out = format!("<form class=\"inline\" method=\"post\" action=\"{}\">{}", esc(action), csrf_field(csrf));
    for (name, value) in fields {
        let _ = write!(out, "<input type=\"hidden\" name=\"{}\" value=\"{}\">", esc(name), esc(value));
    }
    let _ = write!(out, "<button type=\"submit\" class=\"{}\">{}</button></form>", esc(class), esc(label));
    out
}

/// A number for people: thousands separated, at most one decimal.
pub fn number(value: f64) -> String {
    if !value.is_finite() {
        return "–".into();
    }
    let rounded = if value.fract().abs() < 0.05 || value.abs() >= 100.0 {
        format!("{:.0}", value)
    } else {
        format!("{:.1}", value)
    };
    let (sign, digits) = rounded.strip_prefix('-').map(|d| ("-", d)).unwrap_or(("", rounded.as_str()));
    let (whole, fraction) = digits.split_once('.').map(|(w, f)| (w, Some(f))).unwrap_or((digits, None));
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match fraction {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

/// Seconds for people: `45 s`, `12 min`, `3 h`, `4 d`.
pub fn duration(seconds: i64) -> String {
    match seconds {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_values_is_escaped() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        let field = input("Body", "Body", "\"><img src=x onerror=alert(1)>", "");
        assert!(!field.contains("<img"), "{field}");
    }

    #[test]
    fn numbers_and_durations_read_well() {
        assert_eq!(number(1234567.0), "1,234,567");
        assert_eq!(number(12.34), "12.3");
        assert_eq!(number(-1000.0), "-1,000");
        assert_eq!(number(0.0), "0");
        assert_eq!(duration(30), "30 s");
        assert_eq!(duration(900), "15 min");
        assert_eq!(duration(345_600), "4 d");
    }
}
