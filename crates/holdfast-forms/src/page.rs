//! The HTML the front end serves: the enquiry form (with its errors), the thank-you page and the
//! not-found page.
//!
//! Plain server-rendered HTML with inline CSS: it works without JavaScript and needs no second
//! request. The form has `novalidate` on purpose: every check runs on the server and its message is
//! shown next to its field and in an error summary at the top, linked to the field (the pattern the
//! GOV.UK design system documents), instead of each browser's own validation bubbles. Every value
//! written into the page goes through [`escape`].

use crate::lead::{FieldError, LeadInput};

/// Text the page shows that a deployment may want to change.
#[derive(Clone, Debug)]
pub struct PageText {
    pub title: String,
    pub intro: String,
}

/// Escapes text for use in HTML content and in double-quoted attribute values.
pub fn escape(text: &str) -> String {
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

const STYLE: &str = r#"
*,*::before,*::after{box-sizing:border-box}
html{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;line-height:1.5;color:#1b1f24;background:#f4f6f8}
body{margin:0;padding:1.5rem 1rem}
main{max-width:40rem;margin:0 auto;background:#fff;border-radius:.75rem;padding:1.5rem;box-shadow:0 1px 3px rgba(0,0,0,.12)}
h1{font-size:1.6rem;line-height:1.25;margin:0 0 .5rem}
p{margin:0 0 1rem}
.field{margin:0 0 1.1rem}
label{display:block;font-weight:600;margin-bottom:.25rem}
.optional{font-weight:400;color:#57606a}
input,textarea{display:block;width:100%;font:inherit;padding:.55rem .65rem;border:2px solid #8c959f;border-radius:.4rem;background:#fff;color:inherit}
textarea{min-height:8rem;resize:vertical}
input:focus,textarea:focus,button:focus,a:focus{outline:3px solid #f2b705;outline-offset:1px}
.invalid input,.invalid textarea{border-color:#c62828}
.error-message{display:block;color:#c62828;font-weight:600;margin-bottom:.25rem}
.summary{border:3px solid #c62828;border-radius:.4rem;padding:1rem;margin:0 0 1.25rem}
.summary h2{font-size:1.15rem;margin:0 0 .5rem}
.summary ul{margin:0;padding-left:1.2rem}
.summary a{color:#c62828;font-weight:600}
.notice{border-left:6px solid #c62828;background:#fdecea;padding:.75rem 1rem;margin:0 0 1.25rem}
.success{border-left:6px solid #2e7d32;background:#edf7ee;padding:.75rem 1rem;margin:0 0 1rem}
button{font:inherit;font-weight:600;color:#fff;background:#0b5cad;border:0;border-radius:.4rem;padding:.7rem 1.4rem;cursor:pointer}
button:hover{background:#084a8c}
.hp{position:absolute;left:-10000px;top:auto;width:1px;height:1px;overflow:hidden}
.small{font-size:.9rem;color:#57606a}
@media (min-width:40rem){body{padding:3rem 1rem}main{padding:2rem 2.5rem}}
"#;

fn document(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main id=\"main\">\n{body}\n</main>\n</body>\n</html>\n",
        escape(title)
    )
}

struct Field {
    name: &'static str,
    label: &'static str,
    kind: &'static str,
    autocomplete: &'static str,
    required: bool,
}

const FIELDS: [Field; 5] = [
    Field { name: "name", label: "Your name", kind: "text", autocomplete: "name", required: true },
    Field { name: "company", label: "Company", kind: "text", autocomplete: "organization", required: false },
    Field { name: "email", label: "Email address", kind: "email", autocomplete: "email", required: true },
    Field { name: "phone", label: "Phone", kind: "tel", autocomplete: "tel", required: false },
    Field { name: "message", label: "How can we help?", kind: "textarea", autocomplete: "off", required: true },
];

/// The form, with `input`'s values kept, `errors` shown next to their fields, and `notice` (a
/// failure that is not the visitor's, such as the queue being unreachable) above it.
pub fn form(text: &PageText, input: &LeadInput, errors: &[FieldError], notice: Option<&str>) -> String {
    let mut body = String::new();
    let title = if errors.is_empty() { text.title.clone() } else { format!("Error: {}", text.title) };
    body.push_str(&format!("<h1>{}</h1>\n<p>{}</p>\n", escape(&text.title), escape(&text.intro)));
    if let Some(notice) = notice {
        body.push_str(&format!("<div class=\"notice\" role=\"alert\" id=\"notice\"><p>{}</p></div>\n", escape(notice)));
    }
    if !errors.is_empty() {
        body.push_str(
            "<div class=\"summary\" role=\"alert\" aria-labelledby=\"summary-title\" tabindex=\"-1\" id=\"error-summary\">\n\
             <h2 id=\"summary-title\">There is a problem</h2>\n<ul>\n",
        );
        for error in errors {
            body.push_str(&format!("<li><a href=\"#{}\">{}</a></li>\n", error.field, escape(&error.message)));
        }
        body.push_str("</ul>\n</div>\n");
    }
    body.push_str("<form method=\"post\" action=\"/\" novalidate>\n");
    body.push_str(&format!(
        "<input type=\"hidden\" name=\"submission_id\" value=\"{}\">\n",
        escape(&if input.submission_id.is_empty() {
            uuid::Uuid::new_v4().to_string()
        } else {
            input.submission_id.clone()
        })
    ));
    for field in &FIELDS {
        let value = match field.name {
            "name" => &input.name,
            "company" => &input.company,
            "email" => &input.email,
            "phone" => &input.phone,
            _ => &input.message,
        };
        let error = errors.iter().find(|e| e.field == field.name);
        let mut described = Vec::new();
        let class = if error.is_some() { "field invalid" } else { "field" };
        body.push_str(&format!("<div class=\"{class}\">\n<label for=\"{0}\">{1}", field.name, field.label));
        if !field.required {
            body.push_str(" <span class=\"optional\">(optional)</span>");
        }
        body.push_str("</label>\n");
        if let Some(error) = error {
            body.push_str(&format!(
                "<span class=\"error-message\" id=\"{}-error\"><span class=\"hp\">Error:</span> {}</span>\n",
                field.name,
                escape(&error.message)
            ));
            described.push(format!("{}-error", field.name));
        }
        let mut attributes = format!("id=\"{0}\" name=\"{0}\" autocomplete=\"{1}\"", field.name, field.autocomplete);
        if field.required {
            attributes.push_str(" required aria-required=\"true\"");
        }
        if error.is_some() {
            attributes.push_str(" aria-invalid=\"true\"");
        }
        if !described.is_empty() {
            attributes.push_str(&format!(" aria-describedby=\"{}\"", described.join(" ")));
        }
        if field.kind == "textarea" {
            body.push_str(&format!("<textarea {attributes} rows=\"6\">{}</textarea>\n", escape(value)));
        } else {
            let spellcheck = if field.kind == "email" { " spellcheck=\"false\"" } else { "" };
            body.push_str(&format!(
                "<input type=\"{}\" {attributes}{spellcheck} value=\"{}\">\n",
                field.kind,
                escape(value)
            ));
        }
        body.push_str("</div>\n");
    }
    // The honeypot: off screen, skipped by the keyboard and by screen readers, so only a bot that
    // fills every field fills it.
    body.push_str(
        "<div class=\"hp\" aria-hidden=\"true\">\n<label for=\"website\">Leave this field empty</label>\n\
         <input type=\"text\" id=\"website\" name=\"website\" tabindex=\"-1\" autocomplete=\"off\" value=\"\">\n</div>\n",
    );
    body.push_str("<button type=\"submit\">Send enquiry</button>\n</form>\n");
    document(&title, &body)
}

/// The page after a successful submission.
pub fn thanks(text: &PageText, reference: Option<&str>) -> String {
    let mut body = String::from(
        "<div class=\"success\" role=\"status\"><h1>Thank you, your enquiry has been sent</h1></div>\n\
         <p>We have received your message and will get back to you soon.</p>\n",
    );
    if let Some(reference) = reference {
        body.push_str(&format!("<p class=\"small\">Your reference: <code>{}</code></p>\n", escape(reference)));
    }
    body.push_str("<p><a href=\"/\">Send another enquiry</a></p>\n");
    document(&format!("Thank you - {}", text.title), &body)
}

/// Any other path.
pub fn not_found() -> String {
    document("Page not found", "<h1>Page not found</h1>\n<p><a href=\"/\">Go to the enquiry form</a></p>\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text() -> PageText {
        PageText { title: "Contact <sales>".into(), intro: "Hi".into() }
    }

    #[test]
    fn values_are_escaped_and_kept() {
        let input = LeadInput { name: "<script>\"x\"</script>".into(), ..LeadInput::default() };
        let html = form(&text(), &input, &[], None);
        assert!(html.contains("value=\"&lt;script&gt;&quot;x&quot;&lt;/script&gt;\""));
        assert!(html.contains("<title>Contact &lt;sales&gt;</title>"));
        assert!(!html.contains("<script>"));
    }

    #[test]
    fn errors_are_linked_described_and_announced() {
        let errors = [FieldError { field: "email", message: "Enter an email address.".into() }];
        let html = form(&text(), &LeadInput::default(), &errors, None);
        assert!(html.contains("<title>Error: "));
        assert!(html.contains("<a href=\"#email\">Enter an email address.</a>"));
        assert!(html.contains("aria-invalid=\"true\" aria-describedby=\"email-error\""));
        assert!(html.contains("id=\"email-error\""));
        assert_eq!(html.matches("aria-invalid").count(), 1);
    }

    #[test]
    fn every_field_has_a_label_and_the_form_carries_a_submission_id() {
        let html = form(&text(), &LeadInput::default(), &[], None);
        for name in ["name", "company", "email", "phone", "message", "website"] {
            assert!(html.contains(&format!("<label for=\"{name}\">")), "{name}");
        }
        assert!(html.contains("name=\"submission_id\" value=\""));
    }
}
