//! The policy language: what parses, what each element matches, and properties over generated
//! policies. A long run of the properties: `PROPTEST_CASES=100000 cargo test --release -p
//! holdfast-core policy`.

use holdfast_api::limits;
use proptest::prelude::*;

use super::*;

const QUEUE: &str = "arn:aws:sqs:us-east-1:111111111111:orders";

fn root(account: &str) -> Principal {
    Principal { account_id: account.into(), user: None }
}

fn user(account: &str, name: &str) -> Principal {
    Principal { account_id: account.into(), user: Some(name.into()) }
}

fn facts(principal: &Principal) -> RequestFacts<'_> {
    RequestFacts {
        principal,
        source_ip: Some("10.0.0.7".parse().unwrap()),
        secure_transport: false,
        now: condition::parse_time("2026-06-01T12:00:00Z").unwrap(),
    }
}

fn verdict(policy: &str, kind: PolicyKind, principal: &Principal, action: &str, resource: &str) -> Verdict {
    let policy = Policy::parse(policy, kind).unwrap_or_else(|e| panic!("{policy}: {e}"));
    policy.evaluate(&Access { action, resource, facts: facts(principal) })
}

fn queue_policy(statement: &str) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":[{statement}]}}"#)
}

const ALLOWS: Verdict = Verdict { allows: true, denies: false };
const SILENT: Verdict = Verdict { allows: false, denies: false };
const DENIES: Verdict = Verdict { allows: false, denies: true };

#[test]
fn principals() {
    let for_principal = |p: &str| {
        queue_policy(&format!(r#"{{"Effect":"Allow","Principal":{p},"Action":"sqs:*","Resource":"{QUEUE}"}}"#))
    };
    let cases: &[(&str, Principal, Verdict)] = &[
        (r#""*""#, user("222222222222", "x"), ALLOWS),
        (r#"{"AWS":"*"}"#, root("222222222222"), ALLOWS),
        (r#"{"AWS":"222222222222"}"#, root("222222222222"), ALLOWS),
        (r#"{"AWS":"222222222222"}"#, user("222222222222", "x"), ALLOWS),
        (r#"{"AWS":"222222222222"}"#, root("333333333333"), SILENT),
        (r#"{"AWS":"arn:aws:iam::222222222222:root"}"#, user("222222222222", "x"), ALLOWS),
        (r#"{"AWS":["arn:aws:iam::222222222222:user/x"]}"#, user("222222222222", "x"), ALLOWS),
        (r#"{"AWS":["arn:aws:iam::222222222222:user/x"]}"#, user("222222222222", "y"), SILENT),
        (r#"{"AWS":["arn:aws:iam::222222222222:user/x"]}"#, root("222222222222"), SILENT),
        (r#"{"Service":"sns.amazonaws.com"}"#, root("222222222222"), SILENT),
    ];
    for (principal, caller, expected) in cases {
        let policy = for_principal(principal);
        assert_eq!(
            verdict(&policy, PolicyKind::Resource, caller, "SendMessage", QUEUE),
            *expected,
            "{principal} {caller:?}"
        );
    }
    let everyone_but = queue_policy(&format!(
        r#"{{"Effect":"Deny","NotPrincipal":{{"AWS":"111111111111"}},"Action":"sqs:*","Resource":"{QUEUE}"}}"#
    ));
    assert_eq!(verdict(&everyone_but, PolicyKind::Resource, &root("222222222222"), "SendMessage", QUEUE), DENIES);
    assert_eq!(verdict(&everyone_but, PolicyKind::Resource, &user("111111111111", "a"), "SendMessage", QUEUE), SILENT);
}

#[test]
fn actions_and_resources() {
    let me = root("111111111111");
    let identity = |action: &str, resource: &str| {
        format!(r#"{{"Statement":{{"Effect":"Allow","Action":{action},"Resource":{resource}}}}}"#)
    };
    let check =
        |policy: String, action: &str, resource: &str| verdict(&policy, PolicyKind::Identity, &me, action, resource);
    assert_eq!(check(identity(r#""sqs:SendMessage""#, r#""*""#), "SendMessage", QUEUE), ALLOWS);
    assert_eq!(check(identity(r#""SQS:sendmessage""#, r#""*""#), "SendMessage", QUEUE), ALLOWS, "actions ignore case");
    assert_eq!(check(identity(r#""sqs:Send*""#, r#""*""#), "SendMessage", QUEUE), ALLOWS);
    assert_eq!(check(identity(r#""sqs:Send*""#, r#""*""#), "ReceiveMessage", QUEUE), SILENT);
    assert_eq!(check(identity(r#"["sqs:Receive*","sqs:DeleteMessage"]"#, r#""*""#), "DeleteMessage", QUEUE), ALLOWS);
    assert_eq!(check(identity(r#""*""#, r#""*""#), "PurgeQueue", QUEUE), ALLOWS);
    assert_eq!(check(identity(r#""sns:*""#, r#""*""#), "SendMessage", QUEUE), SILENT, "another service");
    let not_action = r#"{"Statement":{"Effect":"Allow","NotAction":"sqs:Delete*","Resource":"*"}}"#;
    assert_eq!(check(not_action.into(), "SendMessage", QUEUE), ALLOWS);
    assert_eq!(check(not_action.into(), "DeleteQueue", QUEUE), SILENT);
    let orders = r#""arn:aws:sqs:*:111111111111:orders*""#;
    assert_eq!(check(identity(r#""sqs:*""#, orders), "SendMessage", QUEUE), ALLOWS);
    assert_eq!(
        check(identity(r#""sqs:*""#, orders), "SendMessage", "arn:aws:sqs:us-east-1:111111111111:leads"),
        SILENT
    );
    assert_eq!(check(identity(r#""sqs:*""#, orders), "ListQueues", "*"), SILENT, "ListQueues needs Resource *");
    let not_resource = r#"{"Statement":{"Effect":"Allow","Action":"sqs:*","NotResource":"arn:aws:sqs:*:*:secret*"}}"#;
    assert_eq!(check(not_resource.into(), "SendMessage", QUEUE), ALLOWS);
    assert_eq!(check(not_resource.into(), "SendMessage", "arn:aws:sqs:us-east-1:111111111111:secret-1"), SILENT);
}

#[test]
fn conditions() {
    let me = root("111111111111");
    let with = |condition: &str| {
        queue_policy(&format!(
            r#"{{"Effect":"Allow","Principal":"*","Action":"sqs:SendMessage","Resource":"{QUEUE}","Condition":{condition}}}"#
        ))
    };
    let check = |condition: &str| verdict(&with(condition), PolicyKind::Resource, &me, "SendMessage", QUEUE).allows;
    assert!(check(r#"{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#));
    assert!(!check(r#"{"IpAddress":{"aws:SourceIp":["192.168.0.0/16","172.16.0.0/12"]}}"#));
    assert!(check(r#"{"NotIpAddress":{"aws:SourceIp":"192.168.0.0/16"}}"#));
    assert!(!check(r#"{"Bool":{"aws:SecureTransport":"true"}}"#));
    assert!(check(r#"{"Bool":{"aws:SecureTransport":false}}"#));
    assert!(check(r#"{"DateGreaterThan":{"aws:CurrentTime":"2026-01-01T00:00:00Z"}}"#));
    assert!(!check(r#"{"DateLessThan":{"aws:CurrentTime":"2026-01-01T00:00:00Z"}}"#));
    assert!(check(r#"{"DateLessThan":{"aws:CurrentTime":"2027-01-01"}}"#));
    assert!(check(r#"{"StringEquals":{"aws:PrincipalAccount":"111111111111"}}"#));
    assert!(check(r#"{"StringEquals":{"AWS:PRINCIPALACCOUNT":["999999999999","111111111111"]}}"#), "keys ignore case");
    // Keys only a service-to-service request has: absent here.
    assert!(!check(r#"{"ArnLike":{"aws:SourceArn":"arn:aws:sns:*:111111111111:*"}}"#));
    assert!(!check(r#"{"StringEquals":{"aws:SourceAccount":"111111111111"}}"#));
    assert!(check(r#"{"ArnNotLike":{"aws:SourceArn":"arn:aws:sns:*:*:*"}}"#), "negated on an absent key");
    assert!(check(r#"{"ArnLikeIfExists":{"aws:SourceArn":"arn:aws:sns:*:*:*"}}"#));
    assert!(check(r#"{"Null":{"aws:SourceArn":"true"}}"#));
    assert!(!check(r#"{"Null":{"aws:SourceIp":"true"}}"#));
    // Every operator and every key must hold.
    assert!(!check(r#"{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"},"Bool":{"aws:SecureTransport":"true"}}"#));
    assert!(check(r#"{"NumericGreaterThan":{"aws:EpochTime":1700000000}}"#));
}

#[test]
fn deny_and_allow_are_reported_separately() {
    let policy = queue_policy(&format!(
        r#"{{"Effect":"Allow","Principal":"*","Action":"sqs:*","Resource":"{QUEUE}"}},
           {{"Sid":"NoPurge","Effect":"Deny","Principal":"*","Action":"sqs:PurgeQueue","Resource":"{QUEUE}"}}"#
    ));
    let me = root("111111111111");
    assert_eq!(verdict(&policy, PolicyKind::Resource, &me, "SendMessage", QUEUE), ALLOWS);
    assert_eq!(
        verdict(&policy, PolicyKind::Resource, &me, "PurgeQueue", QUEUE),
        Verdict { allows: true, denies: true }
    );
}

#[test]
fn refusals() {
    let statement = |s: &str| queue_policy(s);
    let refused = [
        "not json".to_owned(),
        "[]".to_owned(),
        r#"{"Statement":[]," Version":"2012-10-17"}"#.to_owned(),
        r#"{"Version":"2011-01-01","Statement":[]}"#.to_owned(),
        r#"{"Version":"2012-10-17"}"#.to_owned(),
        statement(r#"{"Effect":"Allow","Action":"sqs:*","Resource":"*"}"#),
        statement(r#"{"Effect":"allow","Principal":"*","Action":"sqs:*"}"#),
        statement(r#"{"Effect":"Allow","Principal":"*"}"#),
        statement(r#"{"Effect":"Allow","Principal":"*","Action":"SendMessage"}"#),
        statement(r#"{"Effect":"Allow","Principal":"*","Action":"sqs:*","NotAction":"sqs:Purge*"}"#),
        statement(r#"{"Effect":"Allow","Principal":{"AWS":"bob"},"Action":"sqs:*"}"#),
        statement(r#"{"Effect":"Allow","Principal":"someone","Action":"sqs:*"}"#),
        statement(r#"{"Effect":"Allow","Principal":"*","Action":[],"Resource":"*"}"#),
        statement(r#"{"Effect":"Allow","Principal":"*","Action":"sqs:*","Condition":{"StringEqualz":{"a":"b"}}}"#),
        statement(
            r#"{"Effect":"Allow","Principal":"*","Action":"sqs:*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0/8"}}}"#,
        ),
        statement(
            r#"{"Effect":"Allow","Principal":"*","Action":"sqs:*","Condition":{"DateLessThan":{"aws:CurrentTime":"soon"}}}"#,
        ),
        statement(
            r#"{"Effect":"Allow","Principal":"*","Action":"sqs:*","Condition":{"Bool":{"aws:SecureTransport":"yes"}}}"#,
        ),
        statement(r#"{"Effect":"Allow","Principal":"*","Action":"sqs:*","Extra":1}"#),
        format!(
            r#"{{"Statement":[{}]}}"#,
            vec![r#"{"Effect":"Allow","Principal":"*","Action":"sqs:*"}"#; 200].join(",")
        ),
    ];
    for text in &refused {
        assert!(Policy::parse(text, PolicyKind::Resource).is_err(), "accepted: {text}");
    }
    // An identity policy names no principal and always names its resources.
    assert!(Policy::parse(r#"{"Statement":{"Effect":"Allow","Action":"sqs:*","Resource":"*"}}"#, PolicyKind::Identity)
        .is_ok());
    assert!(Policy::parse(r#"{"Statement":{"Effect":"Allow","Action":"sqs:*"}}"#, PolicyKind::Identity).is_err());
    assert!(Policy::parse(
        r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"sqs:*","Resource":"*"}}"#,
        PolicyKind::Identity
    )
    .is_err());
}

/// Hostile documents are refused cheaply: the size limit comes before any parsing, nesting is
/// bounded by the JSON parser's depth limit, and a wildcard cannot blow up matching.
#[test]
fn hostile_documents_are_bounded() {
    let huge = format!(r#"{{"Statement":[],"Id":"{}"}}"#, "x".repeat(limits::MAX_POLICY_BYTES));
    assert!(Policy::parse(&huge, PolicyKind::Resource).unwrap_err().to_string().contains("limit"));
    let deep = format!("{}{}", "[".repeat(4_000), "]".repeat(4_000));
    assert!(Policy::parse(&deep, PolicyKind::Resource).is_err(), "8 KB of nesting is refused, not recursed into");
    let deep_condition = format!(
        r#"{{"Statement":{{"Effect":"Allow","Principal":"*","Action":"sqs:*","Condition":{{"StringEquals":{{"k":{}1{}}}}}}}}}"#,
        "[".repeat(3_000),
        "]".repeat(3_000)
    );
    assert!(Policy::parse(&deep_condition, PolicyKind::Resource).is_err());
    let stars = queue_policy(&format!(
        r#"{{"Effect":"Allow","Principal":"*","Action":"sqs:*","Resource":"{}"}}"#,
        "*a".repeat(3_000)
    ));
    let policy = Policy::parse(&stars, PolicyKind::Resource).unwrap();
    let me = root("111111111111");
    assert_eq!(policy.evaluate(&Access { action: "SendMessage", resource: QUEUE, facts: facts(&me) }), SILENT);
}

#[test]
fn current_time_formats_as_iso_8601() {
    assert_eq!(format_time(0), "1970-01-01T00:00:00Z");
    assert_eq!(format_time(1_796_594_400_999), "2026-12-06T22:00:00Z");
    for millis in [0, 951_782_400_000, 4_102_444_800_000, 1_709_164_800_000] {
        assert_eq!(condition::parse_time(&format_time(millis)), Some(millis));
    }
}

// ---- properties ----

/// Action names as policies write them: exact, wildcarded, any case.
fn action_pattern() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("*".to_owned()),
        Just("sqs:*".to_owned()),
        "(SendMessage|ReceiveMessage|DeleteMessage|PurgeQueue|GetQueueAttributes|Send\\*|\\*Message|\\?endMessage)"
            .prop_map(|a| format!("sqs:{a}")),
        "(SQS|sqs):(sendmessage|RECEIVEMESSAGE)".prop_map(|a| a),
    ]
}

const ACTIONS: &[&str] = &["SendMessage", "ReceiveMessage", "DeleteMessage", "PurgeQueue", "GetQueueAttributes"];

prop_compose! {
    fn statement()(
        deny in any::<bool>(),
        not_action in any::<bool>(),
        actions in prop::collection::vec(action_pattern(), 1..3),
        principal in prop_oneof![Just("\"*\"".to_owned()), Just(r#"{"AWS":"111111111111"}"#.to_owned()), Just(r#"{"AWS":"222222222222"}"#.to_owned())],
        resource in prop_oneof![Just("*"), Just(QUEUE), Just("arn:aws:sqs:*:*:leads")],
    ) -> (bool, bool, Vec<String>, String, &'static str) {
        (deny, not_action, actions, principal, resource)
    }
}

fn render(
    (deny, not_action, actions, principal, resource): &(bool, bool, Vec<String>, String, &'static str),
) -> String {
    format!(
        r#"{{"Effect":"{}","Principal":{principal},"{}":{},"Resource":"{resource}"}}"#,
        if *deny { "Deny" } else { "Allow" },
        if *not_action { "NotAction" } else { "Action" },
        serde_json::to_string(actions).unwrap(),
    )
}

proptest! {
    /// Whatever text arrives, parsing answers without panicking.
    #[test]
    fn parsing_never_panics(text in ".{0,400}") {
        let _ = Policy::parse(&text, PolicyKind::Resource);
        let _ = Policy::parse(&text, PolicyKind::Identity);
    }

    /// JSON-shaped garbage near real policies: still no panic.
    #[test]
    fn near_policies_never_panic(
        keys in prop::collection::vec("(Effect|Principal|Action|NotAction|Resource|Condition|Sid|AWS|StringLike|aws:SourceIp|IpAddress)", 1..6),
        values in prop::collection::vec("(\"\\*\"|\"Allow\"|\"Deny\"|\\[\\]|\\{\\}|1|true|null|\"10\\.0\\.0\\.0/8\"|\"sqs:\\*\")", 1..6),
    ) {
        let fields: Vec<String> = keys.iter().zip(values.iter().cycle()).map(|(k, v)| format!("\"{k}\":{v}")).collect();
        let text = format!(r#"{{"Statement":{{{}}}}}"#, fields.join(","));
        let _ = Policy::parse(&text, PolicyKind::Resource);
    }

    /// A generated policy's verdict is what its statements say, one by one: a policy allows when
    /// some statement that matches is an Allow, denies when some matching one is a Deny.
    #[test]
    fn verdicts_follow_the_statements(statements in prop::collection::vec(statement(), 1..5), action in 0..ACTIONS.len(), caller_is_owner in any::<bool>()) {
        let text = queue_policy(&statements.iter().map(render).collect::<Vec<_>>().join(","));
        let policy = Policy::parse(&text, PolicyKind::Resource).unwrap();
        let caller = root(if caller_is_owner { "111111111111" } else { "222222222222" });
        let action = ACTIONS[action];
        let got = policy.evaluate(&Access { action, resource: QUEUE, facts: facts(&caller) });
        let mut expected = Verdict::default();
        for one in &statements {
            let alone = Policy::parse(&queue_policy(&render(one)), PolicyKind::Resource).unwrap();
            let v = alone.evaluate(&Access { action, resource: QUEUE, facts: facts(&caller) });
            expected.allows |= v.allows;
            expected.denies |= v.denies;
            // And each statement agrees with a direct reading of it.
            let principal_ok = one.3 == "\"*\"" || one.3.contains(&caller.account_id);
            let action_ok = one.2.iter().any(|p| pattern::matches(p, &format!("sqs:{action}"), true)) != one.1;
            let resource_ok = one.4 != "arn:aws:sqs:*:*:leads";
            let applies = principal_ok && action_ok && resource_ok;
            prop_assert_eq!(v, Verdict { allows: applies && !one.0, denies: applies && one.0 });
        }
        prop_assert_eq!(got, expected);
    }
}
