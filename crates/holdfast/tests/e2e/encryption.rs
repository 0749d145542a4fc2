//! Encryption at rest with `--master-key-file`: what reaches the data directory is ciphertext,
//! clients get their messages back exactly (bodies, attributes, digests), across restarts and a
//! master key rotation; a message whose master key is gone is not delivered, and nothing else is
//! disturbed.

use aws_sdk_sqs::types::MessageAttributeValue;

use crate::common::TestServer;

const SECRET_BODY: &str = "lead: Ada Lovelace, ada@example.com, +44 20 7946 0000";
const SECRET_ATTRIBUTE: &str = "campaign-winter-launch-7f3c";

/// A master key line, made as the docs say: `openssl rand -base64 32`.
fn new_key() -> String {
    let out = std::process::Command::new("openssl").args(["rand", "-base64", "32"]).output().expect("openssl");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Every byte in the data directory (database, WAL, anything else).
fn stored_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            all.extend(std::fs::read(&path).unwrap());
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

async fn send_secret(client: &aws_sdk_sqs::Client, url: &str) {
    let attribute =
        MessageAttributeValue::builder().data_type("String").string_value(SECRET_ATTRIBUTE).build().unwrap();
    let sent = client
        .send_message()
        .queue_url(url)
        .message_body(SECRET_BODY)
        .message_attributes("campaign", attribute)
        .send()
        .await
        .unwrap();
    assert_eq!(sent.md5_of_message_body(), Some(holdfast_core::digest::md5_hex(SECRET_BODY.as_bytes()).as_str()));
}

async fn receive_one(client: &aws_sdk_sqs::Client, url: &str) -> Option<aws_sdk_sqs::types::Message> {
    let received = client
        .receive_message()
        .queue_url(url)
        .message_attribute_names("All")
        .visibility_timeout(0)
        .send()
        .await
        .unwrap();
    received.messages.unwrap_or_default().into_iter().next()
}

#[tokio::test]
async fn stored_messages_are_ciphertext_and_come_back_whole() {
    let temp = tempfile::tempdir().unwrap();
    let (data, plain_data) = (temp.path().join("data"), temp.path().join("plain"));
    let key_file = temp.path().join("master.key");
    let old_key = new_key();
    std::fs::write(&key_file, format!("{old_key}\n")).unwrap();
    let key_arg = ["--master-key-file", key_file.to_str().unwrap()];

    // Control: without a master key the same message is readable in the files, so the search
    // below can find plaintext when it is there.
    let mut plain = TestServer::start_in(&plain_data, &[]);
    let plain_url = crate::common::create_queue(&plain.client(), "leads").await;
    send_secret(&plain.client(), &plain_url).await;
    plain.terminate();
    assert!(contains(&stored_bytes(&plain_data), SECRET_BODY), "the control finds plaintext");

    let mut server = TestServer::start_in(&data, &key_arg);
    let client = server.client();
    let url = crate::common::create_queue(&client, "leads").await;
    send_secret(&client, &url).await;
    let message = receive_one(&client, &url).await.expect("delivered");
    assert_eq!(message.body(), Some(SECRET_BODY));
    assert_eq!(message.md5_of_body(), Some(holdfast_core::digest::md5_hex(SECRET_BODY.as_bytes()).as_str()));
    let attributes = message.message_attributes.unwrap();
    assert_eq!(attributes["campaign"].string_value(), Some(SECRET_ATTRIBUTE));

    server.terminate();
    let stored = stored_bytes(&data);
    assert!(!contains(&stored, SECRET_BODY), "the body is not stored in the clear");
    assert!(!contains(&stored, SECRET_ATTRIBUTE), "the attribute is not stored in the clear");
    assert!(!contains(&stored, "Ada Lovelace"));

    // Rotation: a new current key, the old one kept to open what it sealed.
    let new = new_key();
    std::fs::write(&key_file, format!("# rotated\n{new}\n{old_key}\n")).unwrap();
    server.restart();
    let client = server.client();
    assert_eq!(receive_one(&client, &url).await.expect("still readable").body(), Some(SECRET_BODY));
    client.send_message().queue_url(&url).message_body("after rotation").send().await.unwrap();

    // The old key removed too early: its messages are not delivered (and stay stored), the
    // others are.
    server.terminate();
    std::fs::write(&key_file, format!("{new}\n")).unwrap();
    server.restart();
    let client = server.client();
    let mut bodies = Vec::new();
    for _ in 0..4 {
        // Ten at a time: the unopenable message is the oldest and comes first each time.
        let received = client.receive_message().queue_url(&url).max_number_of_messages(10).visibility_timeout(0);
        for message in received.send().await.unwrap().messages.unwrap_or_default() {
            bodies.push(message.body().unwrap().to_owned());
        }
    }
    assert!(bodies.iter().all(|b| b == "after rotation"), "{bodies:?}");
    assert!(!bodies.is_empty());
    server.terminate();
    let log = std::fs::read_to_string(data.with_extension("log")).unwrap();
    assert!(log.contains("cannot be opened"), "the log says why: {log}");
}

#[test]
fn a_bad_master_key_file_stops_the_server_with_the_reason() {
    let temp = tempfile::tempdir().unwrap();
    let key_file = temp.path().join("master.key");
    std::fs::write(&key_file, "too-short\n").unwrap();
    let exited = crate::common::try_start_in(
        &temp.path().join("data"),
        &["--master-key-file", key_file.to_str().unwrap()],
        std::time::Duration::from_secs(20),
    )
    .err()
    .expect("refused to start");
    assert!(exited.stderr.contains("openssl rand -base64 32"), "{}", exited.stderr);
}
