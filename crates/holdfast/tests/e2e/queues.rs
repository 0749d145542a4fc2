//! Queue lifecycle and attributes through aws-sdk-sqs, against the real binary.

use crate::common::{create_queue, unique, TestServer};
use aws_sdk_sqs::operation::create_queue::CreateQueueError;
use aws_sdk_sqs::operation::get_queue_url::GetQueueUrlError;
use aws_sdk_sqs::operation::purge_queue::PurgeQueueError;
use aws_sdk_sqs::types::QueueAttributeName;

#[tokio::test]
async fn create_get_list_delete() {
    let server = TestServer::start();
    let client = server.client();
    let name = unique("life");
    let url = create_queue(&client, &name).await;
    assert!(url.starts_with(&server.url), "{url} points back at {}", server.url);
    assert!(url.ends_with(&format!("/000000000000/{name}")));

    let got = client.get_queue_url().queue_name(&name).send().await.unwrap();
    assert_eq!(got.queue_url.as_deref(), Some(url.as_str()));

    let listed = client.list_queues().queue_name_prefix(&name).send().await.unwrap();
    assert_eq!(listed.queue_urls.unwrap_or_default(), vec![url.clone()]);
    assert!(listed.next_token.is_none());

    client.delete_queue().queue_url(&url).send().await.unwrap();
    let error = client.get_queue_url().queue_name(&name).send().await.unwrap_err();
    assert!(
        matches!(error.as_service_error(), Some(GetQueueUrlError::QueueDoesNotExist(_))),
        "typed QueueDoesNotExist needs the x-amzn-query-error header: {error:?}"
    );

    let error = client.create_queue().queue_name(&name).send().await.unwrap_err();
    let service_error = error.into_service_error();
    assert!(matches!(service_error, CreateQueueError::QueueDeletedRecently(_)), "{service_error:?}");
}

#[tokio::test]
async fn create_is_idempotent_only_with_matching_attributes() {
    let server = TestServer::start();
    let client = server.client();
    let name = unique("idem");
    let create = |timeout: &str| {
        client.create_queue().queue_name(&name).attributes(QueueAttributeName::VisibilityTimeout, timeout).send()
    };
    let first = create("45").await.unwrap().queue_url;
    assert_eq!(create("45").await.unwrap().queue_url, first);
    // Without attributes, the existing queue is returned.
    assert_eq!(client.create_queue().queue_name(&name).send().await.unwrap().queue_url, first);
    let error = create("46").await.unwrap_err().into_service_error();
    assert!(matches!(error, CreateQueueError::QueueNameExists(_)), "{error:?}");
}

#[tokio::test]
async fn list_queues_pages_with_max_results() {
    let server = TestServer::start();
    let client = server.client();
    let prefix = unique("page");
    let mut expected = Vec::new();
    for i in 0..5 {
        expected.push(create_queue(&client, &format!("{prefix}-{i}")).await);
    }
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page =
            client.list_queues().queue_name_prefix(&prefix).max_results(2).set_next_token(token).send().await.unwrap();
        let urls = page.queue_urls.unwrap_or_default();
        assert!(urls.len() <= 2);
        seen.extend(urls);
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen, expected);
    let error = client.list_queues().max_results(0).send().await.unwrap_err();
    assert_eq!(error.into_service_error().meta().code(), Some("InvalidParameterValue"));
}

#[tokio::test]
async fn attributes_defaults_set_and_validation() {
    let server = TestServer::start();
    let client = server.client();
    let name = unique("attrs");
    let url = create_queue(&client, &name).await;
    let all =
        client.get_queue_attributes().queue_url(&url).attribute_names(QueueAttributeName::All).send().await.unwrap();
    let attributes = all.attributes.unwrap();
    let get = |name: QueueAttributeName| attributes.get(&name).cloned().unwrap_or_default();
    assert_eq!(get(QueueAttributeName::VisibilityTimeout), "30");
    assert_eq!(get(QueueAttributeName::MaximumMessageSize), "1048576");
    assert_eq!(get(QueueAttributeName::MessageRetentionPeriod), "345600");
    assert_eq!(get(QueueAttributeName::DelaySeconds), "0");
    assert_eq!(get(QueueAttributeName::ReceiveMessageWaitTimeSeconds), "0");
    assert_eq!(get(QueueAttributeName::ApproximateNumberOfMessages), "0");
    assert_eq!(get(QueueAttributeName::QueueArn), format!("arn:aws:sqs:us-east-1:000000000000:{name}"));
    let created: i64 = get(QueueAttributeName::CreatedTimestamp).parse().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!((now - created).abs() < 60, "CreatedTimestamp is in epoch seconds");

    client
        .set_queue_attributes()
        .queue_url(&url)
        .attributes(QueueAttributeName::VisibilityTimeout, "5")
        .send()
        .await
        .unwrap();
    let one = client
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::VisibilityTimeout)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[&QueueAttributeName::VisibilityTimeout], "5");

    let error = client
        .set_queue_attributes()
        .queue_url(&url)
        .attributes(QueueAttributeName::VisibilityTimeout, "43201")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error.into_service_error().meta().code(), Some("InvalidAttributeValue"));
    let error = client
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::from("NoSuchAttribute"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error.into_service_error().meta().code(), Some("InvalidAttributeName"));
}

#[tokio::test]
async fn purge_removes_everything_once_a_minute() {
    let server = TestServer::start();
    let client = server.client();
    let url = create_queue(&client, &unique("purge")).await;
    for i in 0..3 {
        client.send_message().queue_url(&url).message_body(format!("m{i}")).send().await.unwrap();
    }
    client.receive_message().queue_url(&url).send().await.unwrap();
    client.purge_queue().queue_url(&url).send().await.unwrap();
    let attributes =
        client.get_queue_attributes().queue_url(&url).attribute_names(QueueAttributeName::All).send().await.unwrap();
    let attributes = attributes.attributes.unwrap();
    assert_eq!(attributes[&QueueAttributeName::ApproximateNumberOfMessages], "0");
    assert_eq!(attributes[&QueueAttributeName::ApproximateNumberOfMessagesNotVisible], "0");
    let error = client.purge_queue().queue_url(&url).send().await.unwrap_err().into_service_error();
    assert!(matches!(error, PurgeQueueError::PurgeQueueInProgress(_)), "{error:?}");
}

#[tokio::test]
async fn tags() {
    let server = TestServer::start();
    let client = server.client();
    let name = unique("tags");
    let url = client.create_queue().queue_name(&name).tags("team", "web").send().await.unwrap().queue_url.unwrap();
    client.tag_queue().queue_url(&url).tags("env", "dev").tags("team", "data").send().await.unwrap();
    let tags = client.list_queue_tags().queue_url(&url).send().await.unwrap().tags.unwrap();
    assert_eq!(tags.len(), 2);
    assert_eq!(tags["team"], "data");
    client.untag_queue().queue_url(&url).tag_keys("team").send().await.unwrap();
    let tags = client.list_queue_tags().queue_url(&url).send().await.unwrap().tags.unwrap();
    assert_eq!(tags.keys().collect::<Vec<_>>(), vec!["env"]);
}

#[tokio::test]
async fn permissions_maintain_a_policy_document() {
    let server = TestServer::start();
    let client = server.client();
    let name = unique("perm");
    let url = create_queue(&client, &name).await;
    client
        .add_permission()
        .queue_url(&url)
        .label("senders")
        .aws_account_ids("111122223333")
        .actions("SendMessage")
        .send()
        .await
        .unwrap();
    client
        .add_permission()
        .queue_url(&url)
        .label("readers")
        .aws_account_ids("111122223333")
        .aws_account_ids("444455556666")
        .actions("ReceiveMessage")
        .actions("DeleteMessage")
        .send()
        .await
        .unwrap();
    let policy_of = |attributes: Option<std::collections::HashMap<QueueAttributeName, String>>| {
        attributes.and_then(|a| a.get(&QueueAttributeName::Policy).cloned())
    };
    let text = policy_of(
        client
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::Policy)
            .send()
            .await
            .unwrap()
            .attributes,
    )
    .expect("a policy");
    let policy: serde_json::Value = serde_json::from_str(&text).unwrap();
    let statements = policy["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 2);
    assert_eq!(statements[0]["Sid"], "senders");
    assert_eq!(statements[0]["Effect"], "Allow");
    assert_eq!(statements[0]["Principal"]["AWS"], "arn:aws:iam::111122223333:root");
    assert_eq!(statements[0]["Action"], "SQS:SendMessage");
    assert_eq!(statements[0]["Resource"], format!("arn:aws:sqs:us-east-1:000000000000:{name}"));
    assert_eq!(statements[1]["Action"], serde_json::json!(["SQS:ReceiveMessage", "SQS:DeleteMessage"]));

    let duplicate = client
        .add_permission()
        .queue_url(&url)
        .label("senders")
        .aws_account_ids("1")
        .actions("SendMessage")
        .send()
        .await;
    assert_eq!(duplicate.unwrap_err().into_service_error().meta().code(), Some("InvalidParameterValue"));

    client.remove_permission().queue_url(&url).label("senders").send().await.unwrap();
    client.remove_permission().queue_url(&url).label("readers").send().await.unwrap();
    let attributes = client
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::Policy)
        .send()
        .await
        .unwrap()
        .attributes;
    assert_eq!(policy_of(attributes), None, "no statements left, no policy");
    let missing = client.remove_permission().queue_url(&url).label("readers").send().await;
    assert_eq!(missing.unwrap_err().into_service_error().meta().code(), Some("InvalidParameterValue"));
}

#[tokio::test]
async fn cooldowns_off_lets_a_test_suite_recreate_and_purge_at_once() {
    let server = TestServer::start_with(&["--cooldowns", "off"]);
    let client = server.client();
    let name = unique("again");
    let url = create_queue(&client, &name).await;
    client.purge_queue().queue_url(&url).send().await.unwrap();
    client.purge_queue().queue_url(&url).send().await.expect("no 60-second wait between purges");
    client.delete_queue().queue_url(&url).send().await.unwrap();
    let again = client.create_queue().queue_name(&name).send().await.expect("the name is free at once");
    assert_eq!(again.queue_url.as_deref(), Some(url.as_str()));

    // The default is AWS's.
    let strict = TestServer::start();
    let client = strict.client();
    let url = create_queue(&client, &name).await;
    client.delete_queue().queue_url(&url).send().await.unwrap();
    let error = client.create_queue().queue_name(&name).send().await.unwrap_err().into_service_error();
    assert_eq!(error.meta().code(), Some("AWS.SimpleQueueService.QueueDeletedRecently"));
}
