//! Accounts and policies, end to end, with the examples of docs/security.md as written there: the
//! producer-only and consumer-only keys, a queue shared with another account, explicit denies.

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry};

use crate::common::{error_code, signed_client, TestServer};

const OPERATOR: (&str, &str) = ("AKIAOPERATOR00000001", "operator-secret-change-me");
const PRODUCER: (&str, &str) = ("AKIAPRODUCER0000001", "producer-secret-change-me");
const WORKER: (&str, &str) = ("AKIAWORKER000000001", "worker-secret-change-me");
const PARTNER: (&str, &str) = ("AKIAPARTNER00000001", "partner-secret-change-me");

/// The fenced block that follows `<!-- example: NAME -->` in docs/security.md.
fn example(name: &str) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/security.md");
    let text = std::fs::read_to_string(path).expect("docs/security.md");
    let marker = format!("<!-- example: {name} -->");
    let after = &text[text.find(&marker).unwrap_or_else(|| panic!("no example {name}")) + marker.len()..];
    let fence = after.find("```").expect("a fenced block");
    let body = &after[fence..];
    let body = &body[body.find('\n').expect("fence line") + 1..];
    body[..body.find("```").expect("closing fence")].to_owned()
}

/// A server with the docs' credentials file.
fn server() -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("credentials.toml");
    std::fs::write(&path, example("credentials.toml")).unwrap();
    (TestServer::start_with(&["--credentials", path.to_str().unwrap()]), dir)
}

fn as_key(server: &TestServer, (key, secret): (&str, &str)) -> aws_sdk_sqs::Client {
    signed_client(&server.url, key, secret)
}

async fn set_policy(client: &aws_sdk_sqs::Client, url: &str, policy: &str) {
    client.set_queue_attributes().queue_url(url).attributes(QueueAttributeName::Policy, policy).send().await.unwrap();
}

macro_rules! denied {
    ($call:expr) => {
        assert_eq!(error_code($call.await.expect_err("refused")).as_deref(), Some("AccessDenied"))
    };
}

#[tokio::test]
async fn a_producer_only_sends_and_a_worker_only_consumes() {
    let (server, _dir) = server();
    let operator = as_key(&server, OPERATOR);
    let leads = operator.create_queue().queue_name("leads").send().await.unwrap().queue_url.unwrap();
    let other = operator.create_queue().queue_name("payroll").send().await.unwrap().queue_url.unwrap();

    let producer = as_key(&server, PRODUCER);
    let found = producer.get_queue_url().queue_name("leads").send().await.unwrap().queue_url.unwrap();
    assert_eq!(found, leads);
    producer.send_message().queue_url(&leads).message_body("lead 1").send().await.unwrap();
    let entry = SendMessageBatchRequestEntry::builder().id("a").message_body("lead 2").build().unwrap();
    let batch = producer.send_message_batch().queue_url(&leads).entries(entry).send().await.unwrap();
    assert_eq!(batch.successful.len(), 1, "a batch is authorized as its single form");
    denied!(producer.receive_message().queue_url(&leads).send());
    denied!(producer.send_message().queue_url(&other).message_body("x").send());
    denied!(producer.list_queues().send());
    denied!(producer.purge_queue().queue_url(&leads).send());
    denied!(producer.create_queue().queue_name("leads-2").send());
    denied!(producer.delete_queue().queue_url(&leads).send());

    let worker = as_key(&server, WORKER);
    denied!(worker.send_message().queue_url(&leads).message_body("x").send());
    let received = worker
        .receive_message()
        .queue_url(&leads)
        .max_number_of_messages(10)
        .message_system_attribute_names(MessageSystemAttributeName::SenderId)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap();
    assert_eq!(received.len(), 2, "the refused requests changed nothing");
    for message in &received {
        assert_eq!(message.attributes.as_ref().unwrap()[&MessageSystemAttributeName::SenderId], "web");
        worker
            .delete_message()
            .queue_url(&leads)
            .receipt_handle(message.receipt_handle().unwrap())
            .send()
            .await
            .unwrap();
    }
    denied!(worker.receive_message().queue_url(&other).send());
}

#[tokio::test]
async fn another_account_gets_in_only_through_the_queue_policy() {
    let (server, _dir) = server();
    let operator = as_key(&server, OPERATOR);
    let partner = as_key(&server, PARTNER);
    let leads = operator.create_queue().queue_name("leads").send().await.unwrap().queue_url.unwrap();
    assert!(leads.ends_with("/000000000000/leads"), "{leads}");

    // The partner's own account has its own names and listing.
    let theirs = partner.create_queue().queue_name("leads").send().await.unwrap().queue_url.unwrap();
    assert!(theirs.ends_with("/444455556666/leads"), "{theirs}");
    assert_eq!(partner.list_queues().send().await.unwrap().queue_urls.unwrap(), std::slice::from_ref(&theirs));
    assert_eq!(operator.list_queues().send().await.unwrap().queue_urls.unwrap(), std::slice::from_ref(&leads));
    partner.send_message().queue_url(&theirs).message_body("to myself").send().await.unwrap();
    let ours = operator.get_queue_attributes().queue_url(&leads).attribute_names(QueueAttributeName::All);
    let ours = ours.send().await.unwrap().attributes.unwrap();
    assert_eq!(ours[&QueueAttributeName::ApproximateNumberOfMessages], "0", "queues of one name stay apart");

    // Without a grant: nothing, not even whether a queue exists.
    denied!(partner.send_message().queue_url(&leads).message_body("x").send());
    denied!(partner.get_queue_url().queue_name("leads").queue_owner_aws_account_id("000000000000").send());
    denied!(partner.get_queue_url().queue_name("no-such-queue").queue_owner_aws_account_id("000000000000").send());
    denied!(operator.send_message().queue_url(&theirs).message_body("x").send());

    // The docs' policy lets the partner send, and only send.
    let policy = example("partner-policy.json");
    set_policy(&operator, &leads, &policy).await;
    partner.send_message().queue_url(&leads).message_body("from the partner").send().await.unwrap();
    denied!(partner.receive_message().queue_url(&leads).send());
    denied!(partner.get_queue_url().queue_name("leads").queue_owner_aws_account_id("000000000000").send());
    let received = operator
        .receive_message()
        .queue_url(&leads)
        .message_system_attribute_names(MessageSystemAttributeName::SenderId)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap();
    assert_eq!(received[0].body(), Some("from the partner"));
    assert_eq!(received[0].attributes.as_ref().unwrap()[&MessageSystemAttributeName::SenderId], "444455556666");

    // AddPermission and RemovePermission edit the same document.
    operator
        .add_permission()
        .queue_url(&leads)
        .label("partner-reads")
        .aws_account_ids("444455556666")
        .actions("ReceiveMessage")
        .send()
        .await
        .unwrap();
    partner.receive_message().queue_url(&leads).send().await.unwrap();
    operator.remove_permission().queue_url(&leads).label("partner-reads").send().await.unwrap();
    denied!(partner.receive_message().queue_url(&leads).send());
    partner.send_message().queue_url(&leads).message_body("still allowed").send().await.unwrap();
}

#[tokio::test]
async fn an_explicit_deny_wins_even_over_the_root_key() {
    let (server, _dir) = server();
    let operator = as_key(&server, OPERATOR);
    let leads = operator.create_queue().queue_name("leads").send().await.unwrap().queue_url.unwrap();
    operator.send_message().queue_url(&leads).message_body("before").send().await.unwrap();

    let policy = example("tls-only-policy.json");
    set_policy(&operator, &leads, &policy).await;
    // This connection is plain HTTP: message traffic is refused, management is not.
    denied!(operator.send_message().queue_url(&leads).message_body("x").send());
    denied!(operator.receive_message().queue_url(&leads).send());
    let attributes = operator.get_queue_attributes().queue_url(&leads).attribute_names(QueueAttributeName::All);
    let attributes = attributes.send().await.unwrap().attributes.unwrap();
    assert_eq!(attributes[&QueueAttributeName::ApproximateNumberOfMessages], "1");
    set_policy(&operator, &leads, "").await;
    operator.send_message().queue_url(&leads).message_body("after").send().await.unwrap();
}

#[tokio::test]
async fn policies_that_do_not_parse_are_refused() {
    let (server, _dir) = server();
    let operator = as_key(&server, OPERATOR);
    let leads = operator.create_queue().queue_name("leads").send().await.unwrap().queue_url.unwrap();
    for bad in [
        "{",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sqs:*","Resource":"*"}]}"#,
        r#"{"Statement":[{"Effect":"Permit","Principal":"*","Action":"sqs:*"}]}"#,
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"sqs:*","Condition":{"IpAddres":{"aws:SourceIp":"10.0.0.0/8"}}}]}"#,
    ] {
        let error = operator
            .set_queue_attributes()
            .queue_url(&leads)
            .attributes(QueueAttributeName::Policy, bad)
            .send()
            .await
            .expect_err(bad);
        assert_eq!(error_code(error).as_deref(), Some("InvalidAttributeValue"), "{bad}");
    }
}

#[test]
fn a_key_whose_policy_does_not_parse_stops_the_server_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("credentials.toml");
    std::fs::write(
        &path,
        "[[key]]\naccess_key_id = \"AKIA1\"\nsecret_access_key = \"s\"\npolicy = '{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"sqs:*\"}}'\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let exited = crate::common::try_start_in(
        &data,
        &["--credentials", path.to_str().unwrap()],
        std::time::Duration::from_secs(20),
    )
    .err()
    .expect("refused to start");
    assert!(exited.stderr.contains("Resource"), "{}", exited.stderr);
}
