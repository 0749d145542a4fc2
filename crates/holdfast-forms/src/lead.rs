//! A lead: the enquiry a visitor submits, its validation rules, and its message on the queue.
//!
//! The message is one flat JSON object (see `docs/forms.md`), version 1:
//! `{"type":"holdfast.lead","version":1,"id":…,"submitted_at":…,"user_agent":…,"source":…,
//! "name":…,"company":…,"email":…,"phone":…,"message":…}`. The front end writes it with
//! [`Lead::to_message`]; the worker reads it back with [`Lead::from_message`], which applies the
//! same limits so a message from any other producer cannot put an oversized value into the table.

use serde::{Deserialize, Serialize};

/// Longest accepted value of each field, in characters.
pub const MAX_NAME: usize = 200;
pub const MAX_COMPANY: usize = 200;
pub const MAX_EMAIL: usize = 254;
pub const MAX_PHONE: usize = 40;
pub const MAX_MESSAGE: usize = 5000;
pub const MAX_USER_AGENT: usize = 512;

/// The message's `type`, so a consumer of a shared stream can tell leads apart.
pub const MESSAGE_TYPE: &str = "holdfast.lead";

/// What the visitor typed, trimmed, before validation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeadInput {
    pub name: String,
    pub company: String,
    pub email: String,
    pub phone: String,
    pub message: String,
    /// The honeypot: hidden from people, so anything in it was typed by a bot.
    pub website: String,
    /// Set by the form page when it is rendered, so a double click or a refresh that submits the
    /// same form twice carries the same id and is stored once.
    pub submission_id: String,
}

/// One field's validation failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

/// A validated lead, ready for the queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lead {
    pub id: String,
    pub submitted_at: String,
    pub user_agent: Option<String>,
    /// How it arrived: `form` (the served page), `post` (another page's form) or `json`.
    pub source: Option<String>,
    pub name: String,
    pub company: Option<String>,
    pub email: String,
    pub phone: Option<String>,
    pub message: String,
}

/// The message envelope: the lead plus its type and version.
#[derive(Serialize, Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    version: u32,
    #[serde(flatten)]
    lead: Lead,
}

impl LeadInput {
    /// Reads the fields from `key=value` pairs (a form post or a JSON object flattened to
    /// strings). Unknown keys are ignored.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, String)>) -> LeadInput {
        let mut input = LeadInput::default();
        for (key, value) in pairs {
            let slot = match key {
                "name" => &mut input.name,
                "company" => &mut input.company,
                "email" => &mut input.email,
                "phone" => &mut input.phone,
                "message" => &mut input.message,
                "website" => &mut input.website,
                "submission_id" | "id" => &mut input.submission_id,
                _ => continue,
            };
            *slot = value.trim().to_string();
        }
        input
    }

    /// Whether the honeypot was filled in.
    pub fn is_bot(&self) -> bool {
        !self.website.is_empty()
    }

    /// Checks every field and returns every problem at once, in the order of the form.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut fail = |field, message: &str| errors.push(FieldError { field, message: message.to_string() });
        if self.name.is_empty() {
            fail("name", "Enter your name.");
        } else if too_long(&self.name, MAX_NAME) || has_control(&self.name) {
            fail("name", "Enter a name of at most 200 characters.");
        }
        if too_long(&self.company, MAX_COMPANY) || has_control(&self.company) {
            fail("company", "Enter a company name of at most 200 characters.");
        }
        if self.email.is_empty() {
            fail("email", "Enter your email address.");
        } else if !is_email(&self.email) {
            fail("email", "Enter an email address in the form name@example.com.");
        }
        if !self.phone.is_empty() && !is_phone(&self.phone) {
            fail("phone", "Enter a phone number using digits, spaces and + ( ) - only, or leave it empty.");
        }
        if self.message.is_empty() {
            fail("message", "Tell us how we can help.");
        } else if too_long(&self.message, MAX_MESSAGE) {
            fail("message", "Keep the message under 5,000 characters.");
        } else if self.message.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') {
            fail("message", "The message contains characters that cannot be stored.");
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The lead this input becomes once valid: the submission id the form carried if it is one,
    /// otherwise a new one.
    pub fn into_lead(self, submitted_at: String, user_agent: Option<&str>, source: &str) -> Lead {
        let id =
            if is_submission_id(&self.submission_id) { self.submission_id } else { uuid::Uuid::new_v4().to_string() };
        let optional = |value: String| if value.is_empty() { None } else { Some(value) };
        Lead {
            id,
            submitted_at,
            user_agent: user_agent.map(|agent| agent.chars().take(MAX_USER_AGENT).collect()),
            source: Some(source.to_string()),
            name: self.name,
            company: optional(self.company),
            email: self.email,
            phone: optional(self.phone),
            message: self.message,
        }
    }
}

impl Lead {
    /// The message body put on the queue.
    pub fn to_message(&self) -> String {
        let envelope = Envelope { kind: MESSAGE_TYPE.to_string(), version: 1, lead: self.clone() };
        serde_json::to_string(&envelope).expect("a lead serializes")
    }

    /// Reads a message back, with the same limits the form applies. The error says why the
    /// message cannot be stored; such a message goes to the dead-letter queue.
    pub fn from_message(body: &str) -> Result<Lead, String> {
        let value: serde_json::Value = serde_json::from_str(body).map_err(|error| format!("not JSON ({error})"))?;
        let object = value.as_object().ok_or("not a JSON object")?;
        if let Some(kind) = object.get("type") {
            if kind.as_str() != Some(MESSAGE_TYPE) {
                return Err(format!("type is {kind}, not {MESSAGE_TYPE:?}"));
            }
        }
        let envelope: Envelope = serde_json::from_value(value).map_err(|error| format!("not a lead: {error}"))?;
        let lead = envelope.lead;
        let checks: [(&str, &str, usize); 4] = [
            ("id", &lead.id, 64),
            ("submitted_at", &lead.submitted_at, 64),
            ("name", &lead.name, MAX_NAME),
            ("email", &lead.email, MAX_EMAIL),
        ];
        for (field, value, max) in checks {
            if value.trim().is_empty() {
                return Err(format!("field {field} is empty"));
            }
            if too_long(value, max) {
                return Err(format!("field {field} is longer than {max} characters"));
            }
        }
        if lead.message.trim().is_empty() {
            return Err("field message is empty".into());
        }
        let optional = [
            ("company", &lead.company, MAX_COMPANY),
            ("phone", &lead.phone, MAX_PHONE),
            ("message", &Some(lead.message.clone()), MAX_MESSAGE),
            ("user_agent", &lead.user_agent, MAX_USER_AGENT),
            ("source", &lead.source, 32),
        ];
        for (field, value, max) in optional {
            if value.as_deref().is_some_and(|value| too_long(value, max)) {
                return Err(format!("field {field} is longer than {max} characters"));
            }
        }
        Ok(lead)
    }
}

fn too_long(value: &str, max: usize) -> bool {
    value.chars().count() > max
}

fn has_control(value: &str) -> bool {
    value.chars().any(char::is_control)
}

/// A deliberately plain check: one `@`, something before it, a dotted domain after it, no spaces.
/// Anything stricter rejects real addresses; the real test of an address is writing to it.
pub fn is_email(value: &str) -> bool {
    if too_long(value, MAX_EMAIL) || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((local, domain)) = value.rsplit_once('@') else { return false };
    !local.is_empty()
        && !local.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && domain.chars().all(|c| c.is_alphanumeric() || c == '-' || c == '.')
}

fn is_phone(value: &str) -> bool {
    let digits = value.chars().filter(char::is_ascii_digit).count();
    !too_long(value, MAX_PHONE)
        && (6..=20).contains(&digits)
        && value.chars().all(|c| c.is_ascii_digit() || " +()-./".contains(c))
}

/// Submission ids are UUIDs; anything else a client sends is replaced by a fresh one.
fn is_submission_id(value: &str) -> bool {
    uuid::Uuid::parse_str(value).is_ok() && value.len() == 36
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(pairs: &[(&'static str, &str)]) -> LeadInput {
        LeadInput::from_pairs(pairs.iter().map(|(k, v)| (*k, v.to_string())))
    }

    fn valid() -> LeadInput {
        input(&[("name", " Ada Lovelace "), ("email", "ada@example.com"), ("message", "Hello")])
    }

    #[test]
    fn a_complete_lead_is_valid_and_trimmed() {
        let lead = valid();
        assert_eq!(lead.name, "Ada Lovelace");
        assert_eq!(lead.validate(), Ok(()));
    }

    #[test]
    fn every_problem_is_reported_against_its_field() {
        let errors = input(&[("email", "not-an-address"), ("phone", "call me")]).validate().unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field).collect();
        assert_eq!(fields, ["name", "email", "phone", "message"]);
    }

    #[test]
    fn email_check_is_plain_but_catches_typos() {
        for good in ["a@b.co", "first.last+tag@sub.example.org", "x@bücher.de"] {
            assert!(is_email(good), "{good}");
        }
        for bad in ["", "a", "a@b", "@b.co", "a@.co", "a@b.", "a b@c.de", "a@b..de", "a@b_c.de"] {
            assert!(!is_email(bad), "{bad}");
        }
    }

    #[test]
    fn phone_numbers_allow_common_punctuation() {
        assert!(is_phone("+44 (0)20 7946-0958"));
        assert!(!is_phone("12345"));
        assert!(!is_phone("call 0123456"));
    }

    #[test]
    fn the_form_submission_id_is_kept_only_if_it_is_a_uuid() {
        let id = uuid::Uuid::new_v4().to_string();
        let mut lead_input = valid();
        lead_input.submission_id = id.clone();
        assert_eq!(lead_input.into_lead("t".into(), None, "form").id, id);
        let mut lead_input = valid();
        lead_input.submission_id = "'; DROP TABLE leads; --".into();
        assert_ne!(lead_input.into_lead("t".into(), None, "form").id, "'; DROP TABLE leads; --");
    }

    #[test]
    fn a_message_round_trips_and_bad_messages_say_why() {
        let lead = valid().into_lead("2026-01-01T00:00:00Z".into(), Some("test-agent"), "json");
        let body = lead.to_message();
        assert!(body.contains(r#""type":"holdfast.lead""#));
        assert_eq!(Lead::from_message(&body), Ok(lead));
        assert!(Lead::from_message("not json").unwrap_err().starts_with("not JSON"));
        assert!(Lead::from_message(r#"{"id":"1"}"#).unwrap_err().contains("missing field"));
        assert!(Lead::from_message(r#"{"type":"order"}"#).unwrap_err().contains("type"));
        let empty_email = body.replace("ada@example.com", " ");
        assert_eq!(Lead::from_message(&empty_email).unwrap_err(), "field email is empty");
    }
}
