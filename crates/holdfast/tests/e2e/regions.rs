//! Regions: a queue lives in an (account, region) namespace, and a request acts in the region
//! it is signed for, as on AWS.

use aws_sdk_sqs::types::QueueAttributeName;

use crate::common::{client_in_region, unique, TestServer};

async fn arn(client: &aws_sdk_sqs::Client, url: &str) -> String {
    let attributes = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    attributes[&QueueAttributeName::QueueArn].clone()
}

#[tokio::test]
async fn one_name_in_two_regions_is_two_queues() {
    let server = TestServer::start();
    let home = client_in_region(&server.url, "us-east-1");
    let away = client_in_region(&server.url, "eu-central-1");
    let name = unique("orders");
    let home_url = home.create_queue().queue_name(&name).send().await.unwrap().queue_url.unwrap();
    let away_url = away.create_queue().queue_name(&name).send().await.unwrap().queue_url.unwrap();
    // The server's own region keeps the URL form from before regions; others name theirs.
    assert_eq!(home_url, format!("{}/000000000000/{name}", server.url));
    assert_eq!(away_url, format!("{}/eu-central-1/000000000000/{name}", server.url));
    assert_eq!(arn(&away, &away_url).await, format!("arn:aws:sqs:eu-central-1:000000000000:{name}"));

    // Each region lists and finds only its own.
    for (client, url, other) in [(&home, &home_url, &away_url), (&away, &away_url, &home_url)] {
        let listed = client.list_queues().queue_name_prefix(&name).send().await.unwrap().queue_urls.unwrap();
        assert_eq!(listed, std::slice::from_ref(url));
        assert!(!listed.contains(other));
        let found = client.get_queue_url().queue_name(&name).send().await.unwrap().queue_url.unwrap();
        assert_eq!(&found, url);
    }
    assert!(client_in_region(&server.url, "ap-south-1").get_queue_url().queue_name(&name).send().await.is_err());

    // A URL names its queue whatever region the client signs for; messages stay apart.
    home.send_message().queue_url(&away_url).message_body("to eu").send().await.unwrap();
    let received = home.receive_message().queue_url(&home_url).send().await.unwrap();
    assert!(received.messages.unwrap_or_default().is_empty());
    let received = away.receive_message().queue_url(&away_url).send().await.unwrap().messages.unwrap();
    assert_eq!(received[0].body.as_deref(), Some("to eu"));

    // A bare name is a queue of the caller's account in the caller's region.
    away.send_message().queue_url(&name).message_body("by name").send().await.unwrap();
    let received = away.receive_message().queue_url(&away_url).send().await.unwrap().messages.unwrap();
    assert_eq!(received[0].body.as_deref(), Some("by name"));
}

#[tokio::test]
async fn a_dead_letter_queue_must_be_in_the_source_region() {
    let server = TestServer::start();
    let home = client_in_region(&server.url, "us-east-1");
    let away = client_in_region(&server.url, "eu-west-1");
    let dlq = away.create_queue().queue_name(unique("dlq")).send().await.unwrap().queue_url.unwrap();
    let dlq_arn = arn(&away, &dlq).await;
    let policy = format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"3"}}"#);
    let refused = home
        .create_queue()
        .queue_name(unique("source"))
        .attributes(QueueAttributeName::RedrivePolicy, &policy)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(refused.meta().code(), Some("InvalidParameterValue"));
    away.create_queue()
        .queue_name(unique("source"))
        .attributes(QueueAttributeName::RedrivePolicy, &policy)
        .send()
        .await
        .expect("a source in the target's region");
}

#[tokio::test]
async fn host_style_urls_name_the_region_in_the_host() {
    let server = TestServer::start_with(&["--queue-url-style", "host", "--public-url", "http://queues.example"]);
    let away = client_in_region(&server.url, "eu-west-1");
    let name = unique("hosted");
    let url = away.create_queue().queue_name(&name).send().await.unwrap().queue_url.unwrap();
    assert_eq!(url, format!("http://sqs.eu-west-1.queues.example/000000000000/{name}"));
    // Clients send URLs back as QueueUrl: the host's region is read from them.
    let home = client_in_region(&server.url, "us-east-1");
    home.send_message().queue_url(&url).message_body("m").send().await.unwrap();
    let received = away.receive_message().queue_url(&name).send().await.unwrap().messages.unwrap();
    assert_eq!(received[0].body.as_deref(), Some("m"));
}

#[tokio::test]
async fn single_region_keeps_one_namespace_for_every_client() {
    // For deployments whose clients were configured for assorted regions before regions existed.
    let server = TestServer::start_with(&["--single-region", "true", "--region", "eu-west-1"]);
    let east = client_in_region(&server.url, "us-east-1");
    let west = client_in_region(&server.url, "us-west-2");
    let name = unique("shared");
    let url = east.create_queue().queue_name(&name).send().await.unwrap().queue_url.unwrap();
    assert_eq!(url, format!("{}/000000000000/{name}", server.url), "the server's own region");
    assert_eq!(west.get_queue_url().queue_name(&name).send().await.unwrap().queue_url.unwrap(), url);
    assert_eq!(arn(&west, &url).await, format!("arn:aws:sqs:eu-west-1:000000000000:{name}"));
}
