//! IAM policy documents, parsed once and evaluated per request as IAM does for SQS.
//!
//! Two kinds of policy decide a request (`crate::access` combines them):
//! - an *identity* policy, attached to a key: no `Principal`, it speaks for its key;
//! - a *resource* policy, a queue's `Policy` attribute: every statement names the principals it
//!   applies to (`Principal` / `NotPrincipal`).
//!
//! A statement applies to a request when its principal, action, resource and every condition
//! match. Evaluating a policy reports whether some applicable statement allows and whether some
//! denies; an explicit deny anywhere wins over any allow.
//!
//! Supported: `Version`, `Id`, `Statement` (one object or a list) with `Sid`, `Effect`,
//! `Principal` / `NotPrincipal` (`"*"`, `{"AWS": …}` with `"*"`, account ids, `:root` and user
//! ARNs), `Action` / `NotAction` (`sqs:` names with `*`/`?` wildcards, case-insensitive),
//! `Resource` / `NotResource` (ARN patterns), `Condition` (see `condition`). Anything else is
//! refused when the policy is set, so a policy never silently means less than it says.

mod condition;
mod pattern;

use std::fmt;
use std::net::IpAddr;

use holdfast_api::limits;
use serde_json::{Map, Value};

use crate::store::Millis;
use condition::Condition;

/// Where a policy is attached, which decides what its statements must say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyKind {
    /// A key's policy: statements have no `Principal` and must name their `Resource`s.
    Identity,
    /// A queue's `Policy`: every statement names its `Principal`s.
    Resource,
}

/// Why a policy document was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyError(String);

impl PolicyError {
    fn new(reason: impl Into<String>) -> Self {
        PolicyError(reason.into())
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PolicyError {}

/// A parsed policy document.
#[derive(Clone, Debug)]
pub struct Policy {
    statements: Vec<Statement>,
}

#[derive(Clone, Debug)]
struct Statement {
    deny: bool,
    /// `None` in identity policies: the statement speaks for its key.
    principals: Option<Negatable<Principals>>,
    actions: Negatable<Vec<String>>,
    /// `None`: any resource (resource policies may leave it out; it is then the queue itself).
    resources: Option<Negatable<Vec<String>>>,
    conditions: Vec<Condition>,
}

/// A list of values and whether the statement says `Not…` of them.
#[derive(Clone, Debug)]
struct Negatable<T> {
    negated: bool,
    values: T,
}

#[derive(Clone, Debug)]
enum Principals {
    Anyone,
    /// `AWS` principals: account ids, `arn:aws:iam::ACCOUNT:root`, user ARNs. Principals of other
    /// kinds (`Service`, `Federated`) are accepted and never match a key.
    Aws(Vec<String>),
}

/// Who is asking: a key's account, and its user (none for an account's root key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub account_id: String,
    pub user: Option<String>,
}

impl Principal {
    /// `arn:aws:iam::ACCOUNT:user/NAME`, or `arn:aws:iam::ACCOUNT:root` for a root key.
    pub fn arn(&self) -> String {
        match &self.user {
            Some(user) => format!("arn:aws:iam::{}:user/{user}", self.account_id),
            None => format!("arn:aws:iam::{}:root", self.account_id),
        }
    }

    fn is(&self, principal: &str) -> bool {
        if principal == "*" {
            return true;
        }
        if principal.bytes().all(|b| b.is_ascii_digit()) {
            return principal == self.account_id;
        }
        match principal.strip_prefix("arn:aws:iam::").and_then(|rest| rest.split_once(':')) {
            Some((account, "root")) => account == self.account_id,
            Some(_) => principal == self.arn(),
            None => false,
        }
    }
}

/// The facts of a request that conditions can test.
#[derive(Clone, Debug)]
pub struct RequestFacts<'a> {
    pub principal: &'a Principal,
    /// The client's address (`aws:SourceIp`).
    pub source_ip: Option<IpAddr>,
    /// Whether the request came over TLS (`aws:SecureTransport`).
    pub secure_transport: bool,
    /// `aws:CurrentTime` / `aws:EpochTime`.
    pub now: Millis,
}

impl RequestFacts<'_> {
    /// The request's value of a condition key (lower case), if it has one. Keys that only
    /// service-to-service requests carry (`aws:SourceArn`, `aws:SourceAccount`) are absent.
    fn value(&self, key: &str) -> Option<String> {
        Some(match key {
            "aws:sourceip" => self.source_ip?.to_string(),
            "aws:securetransport" => self.secure_transport.to_string(),
            "aws:currenttime" => format_time(self.now),
            "aws:epochtime" => (self.now.div_euclid(1000)).to_string(),
            "aws:principalaccount" => self.principal.account_id.clone(),
            "aws:principalarn" => self.principal.arn(),
            "aws:principaltype" => if self.principal.user.is_some() { "User" } else { "Account" }.to_owned(),
            "aws:username" => self.principal.user.clone()?,
            _ => return None,
        })
    }
}

/// One request as policies see it: `action` is the SQS action name (`SendMessage`), `resource`
/// the queue's ARN (or `*` for actions on no queue, like ListQueues).
#[derive(Clone, Debug)]
pub struct Access<'a> {
    pub action: &'a str,
    pub resource: &'a str,
    pub facts: RequestFacts<'a>,
}

/// What a policy says about a request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Some applicable statement allows it.
    pub allows: bool,
    /// Some applicable statement denies it.
    pub denies: bool,
}

impl Policy {
    /// Parses and checks a policy document of `kind`.
    pub fn parse(text: &str, kind: PolicyKind) -> Result<Policy, PolicyError> {
        if text.len() > limits::MAX_POLICY_BYTES {
            return Err(PolicyError::new(format!(
                "the policy is {} bytes; the limit is {}",
                text.len(),
                limits::MAX_POLICY_BYTES
            )));
        }
        let document: Value = serde_json::from_str(text).map_err(|e| PolicyError::new(format!("not JSON: {e}")))?;
        let Value::Object(document) = document else {
            return Err(PolicyError::new("a policy is a JSON object"));
        };
        for key in document.keys() {
            if !matches!(key.as_str(), "Version" | "Id" | "Statement") {
                return Err(PolicyError::new(format!("unknown policy element {key}")));
            }
        }
        match document.get("Version") {
            None => {}
            Some(Value::String(v)) if v == "2012-10-17" || v == "2008-10-17" => {}
            Some(other) => return Err(PolicyError::new(format!("unsupported policy Version {other}"))),
        }
        if document.get("Id").is_some_and(|id| !id.is_string()) {
            return Err(PolicyError::new("Id must be a string"));
        }
        let statements = match document.get("Statement") {
            Some(Value::Array(list)) => list.iter().map(|s| Statement::parse(s, kind)).collect::<Result<_, _>>()?,
            Some(single @ Value::Object(_)) => vec![Statement::parse(single, kind)?],
            Some(_) => return Err(PolicyError::new("Statement must be an object or a list of objects")),
            None => return Err(PolicyError::new("the policy has no Statement")),
        };
        let policy = Policy { statements };
        if kind == PolicyKind::Resource {
            policy.check_quotas()?;
        }
        Ok(policy)
    }

    /// SQS's quotas on a queue's policy (the Developer Guide's "Amazon SQS policy quotas"; the
    /// size is checked before parsing).
    fn check_quotas(&self) -> Result<(), PolicyError> {
        let over = |what: &str, count: usize, max: usize| {
            (count > max).then(|| PolicyError::new(format!("the policy has {count} {what}; the limit is {max}")))
        };
        let principals: usize = self
            .statements
            .iter()
            .map(|s| match s.principals.as_ref().map(|p| &p.values) {
                Some(Principals::Aws(list)) => list.len(),
                Some(Principals::Anyone) | None => 1,
            })
            .sum();
        let conditions: usize = self.statements.iter().map(|s| s.conditions.len()).sum();
        let actions = self.statements.iter().map(|s| s.actions.values.len()).max().unwrap_or(0);
        let problem = over("statements", self.statements.len(), limits::MAX_POLICY_STATEMENTS)
            .or_else(|| over("principals", principals, limits::MAX_POLICY_PRINCIPALS))
            .or_else(|| over("conditions", conditions, limits::MAX_POLICY_CONDITIONS))
            .or_else(|| over("actions in one statement", actions, limits::MAX_POLICY_ACTIONS_PER_STATEMENT));
        problem.map_or(Ok(()), Err)
    }

    /// Which of this policy's statements apply to `access`, and how.
    pub fn evaluate(&self, access: &Access<'_>) -> Verdict {
        let mut verdict = Verdict::default();
        // SQS actions come bare (`SendMessage`); other services' with their prefix.
        let action = match access.action.contains(':') {
            true => access.action.to_owned(),
            false => format!("sqs:{}", access.action),
        };
        for statement in self.statements.iter().filter(|s| s.applies(access, &action)) {
            if statement.deny {
                verdict.denies = true;
            } else {
                verdict.allows = true;
            }
        }
        verdict
    }
}

impl Statement {
    fn parse(value: &Value, kind: PolicyKind) -> Result<Statement, PolicyError> {
        let Value::Object(fields) = value else {
            return Err(PolicyError::new("each Statement must be an object"));
        };
        for key in fields.keys() {
            let known = matches!(
                key.as_str(),
                "Sid"
                    | "Effect"
                    | "Principal"
                    | "NotPrincipal"
                    | "Action"
                    | "NotAction"
                    | "Resource"
                    | "NotResource"
                    | "Condition"
            );
            if !known {
                return Err(PolicyError::new(format!("unknown statement element {key}")));
            }
        }
        if fields.get("Sid").is_some_and(|sid| !sid.is_string()) {
            return Err(PolicyError::new("Sid must be a string"));
        }
        let deny = match fields.get("Effect").and_then(Value::as_str) {
            Some("Allow") => false,
            Some("Deny") => true,
            _ => return Err(PolicyError::new("Effect must be \"Allow\" or \"Deny\"")),
        };
        let principals = either(fields, "Principal", "NotPrincipal", parse_principals)?;
        match (kind, &principals) {
            (PolicyKind::Identity, Some(_)) => {
                return Err(PolicyError::new("a key's policy cannot name a Principal: it applies to its key"))
            }
            (PolicyKind::Resource, None) => {
                return Err(PolicyError::new("every statement of a queue policy needs a Principal"))
            }
            _ => {}
        }
        let actions = either(fields, "Action", "NotAction", |v| strings(v, "Action"))?
            .ok_or_else(|| PolicyError::new("every statement needs an Action or NotAction"))?;
        for action in &actions.values {
            if action != "*" && !action.contains(':') {
                return Err(PolicyError::new(format!("action {action} needs a service prefix, as in sqs:{action}")));
            }
        }
        let resources = either(fields, "Resource", "NotResource", |v| strings(v, "Resource"))?;
        if kind == PolicyKind::Identity && resources.is_none() {
            return Err(PolicyError::new("every statement of a key's policy needs a Resource or NotResource"));
        }
        let conditions = fields.get("Condition").map(condition::parse_block).transpose()?.unwrap_or_default();
        Ok(Statement { deny, principals, actions, resources, conditions })
    }

    /// Whether this statement speaks of `access`; `action` is its `sqs:`-prefixed action name.
    fn applies(&self, access: &Access<'_>, action: &str) -> bool {
        let principal_matches = self.principals.as_ref().is_none_or(|p| {
            let listed = match &p.values {
                Principals::Anyone => true,
                Principals::Aws(list) => list.iter().any(|id| access.facts.principal.is(id)),
            };
            listed != p.negated
        });
        let action_matches =
            self.actions.values.iter().any(|a| pattern::matches(a, action, true)) != self.actions.negated;
        let resource_matches = self.resources.as_ref().is_none_or(|r| {
            r.values.iter().any(|pattern| pattern::matches(pattern, access.resource, false)) != r.negated
        });
        principal_matches
            && action_matches
            && resource_matches
            && self.conditions.iter().all(|c| c.holds(&access.facts))
    }
}

/// Reads whichever of `name` / `not_name` the statement has (never both).
fn either<T>(
    fields: &Map<String, Value>,
    name: &str,
    not_name: &str,
    parse: impl Fn(&Value) -> Result<T, PolicyError>,
) -> Result<Option<Negatable<T>>, PolicyError> {
    match (fields.get(name), fields.get(not_name)) {
        (Some(_), Some(_)) => Err(PolicyError::new(format!("a statement cannot have both {name} and {not_name}"))),
        (Some(v), None) => Ok(Some(Negatable { negated: false, values: parse(v)? })),
        (None, Some(v)) => Ok(Some(Negatable { negated: true, values: parse(v)? })),
        (None, None) => Ok(None),
    }
}

/// A string or a non-empty list of strings.
fn strings(value: &Value, element: &str) -> Result<Vec<String>, PolicyError> {
    let list = match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| PolicyError::new(format!("{element} must be a string or a list of strings")))?,
        _ => return Err(PolicyError::new(format!("{element} must be a string or a list of strings"))),
    };
    if list.is_empty() {
        return Err(PolicyError::new(format!("{element} lists nothing")));
    }
    Ok(list)
}

fn parse_principals(value: &Value) -> Result<Principals, PolicyError> {
    match value {
        Value::String(s) if s == "*" => Ok(Principals::Anyone),
        Value::Object(kinds) if !kinds.is_empty() => {
            let mut aws = Vec::new();
            for (kind, ids) in kinds {
                let ids = strings(ids, "Principal")?;
                match kind.as_str() {
                    "AWS" => {
                        for id in &ids {
                            let valid = id == "*"
                                || (id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()))
                                || id.starts_with("arn:aws:iam::")
                                || id.starts_with("arn:aws:sts::");
                            if !valid {
                                return Err(PolicyError::new(format!("invalid principal {id}")));
                            }
                        }
                        if ids.iter().any(|id| id == "*") {
                            return Ok(Principals::Anyone);
                        }
                        aws.extend(ids);
                    }
                    "Service" | "Federated" | "CanonicalUser" => {}
                    other => return Err(PolicyError::new(format!("unknown principal type {other}"))),
                }
            }
            Ok(Principals::Aws(aws))
        }
        _ => Err(PolicyError::new("Principal must be \"*\" or an object such as {\"AWS\": \"123456789012\"}")),
    }
}

/// `aws:CurrentTime`'s form: ISO 8601 in UTC, to the second.
fn format_time(millis: Millis) -> String {
    let seconds = millis.div_euclid(1000);
    let (days, of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = holdfast_api::calendar::civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", of_day / 3600, of_day / 60 % 60, of_day % 60)
}

#[cfg(test)]
mod tests;
