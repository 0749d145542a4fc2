//! Response and error encoding: JSON (the AWS JSON protocol <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-making-api-requests-json.html>) and the recorded XML documents of
//! the Query protocol <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-making-api-requests-xml.html>, which botocore 1.34.89 parsed back to the intended values.

use holdfast_api::types::*;
use holdfast_api::{sqs_error, Blob, NoOutput, Response};

use crate::{encode_error, encode_response, Protocol};

const RID: &str = "00000000-0000-0000-0000-000000000000";

/// Drops the indentation between elements, so pretty-printed recorded documents compare with the
/// compact ones written here. Text content (e.g. the `&#xD;\n` of a body) is untouched.
fn compact(xml: &str) -> String {
    let mut out = String::with_capacity(xml.len());
    let mut pending = String::new();
    let mut after_tag = false;
    for c in xml.chars() {
        if after_tag && c.is_whitespace() {
            pending.push(c);
            continue;
        }
        if c != '<' {
            out.push_str(&pending);
        }
        pending.clear();
        out.push(c);
        after_tag = c == '>';
    }
    out
}

fn xml(response: &Response) -> String {
    let http = encode_response(Protocol::Query, response, RID);
    assert_eq!(http.status(), 200);
    assert_eq!(http.headers()["content-type"], "text/xml");
    assert_eq!(http.headers()["x-amzn-requestid"], RID);
    let body = String::from_utf8(http.body().to_vec()).unwrap();
    assert!(body.starts_with("<?xml version=\"1.0\"?>\n<"), "{body}");
    body
}

fn assert_xml(response: Response, expected: &str) {
    assert_eq!(compact(&xml(&response)), compact(expected));
}

fn attribute_map(pairs: &[(&str, &str)]) -> AttributeMap {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn spec_list_queues() {
    assert_xml(
        Response::ListQueues(ListQueuesResponse {
            queue_urls: Some(vec![
                "http://localhost:9324/000000000000/q1".into(),
                "http://localhost:9324/000000000000/q2".into(),
            ]),
            next_token: Some("tok".into()),
        }),
        r#"<?xml version="1.0"?>
<ListQueuesResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/">
  <ListQueuesResult>
    <QueueUrl>http://localhost:9324/000000000000/q1</QueueUrl>
    <QueueUrl>http://localhost:9324/000000000000/q2</QueueUrl>
    <NextToken>tok</NextToken>
  </ListQueuesResult>
  <ResponseMetadata>
    <RequestId>00000000-0000-0000-0000-000000000000</RequestId>
  </ResponseMetadata>
</ListQueuesResponse>"#,
    );
}

#[test]
fn spec_get_queue_attributes() {
    // Map entries come out in key order (the api's maps are BTreeMaps); the recording lists
    // VisibilityTimeout first. Entry order carries no meaning: botocore builds a dict.
    assert_xml(
        Response::GetQueueAttributes(GetQueueAttributesResponse {
            attributes: Some(attribute_map(&[
                ("VisibilityTimeout", "30"),
                ("QueueArn", "arn:aws:sqs:us-east-1:000000000000:q1"),
            ])),
        }),
        r#"<?xml version="1.0"?>
<GetQueueAttributesResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/">
  <GetQueueAttributesResult>
    <Attribute>
      <Name>QueueArn</Name>
      <Value>arn:aws:sqs:us-east-1:000000000000:q1</Value>
    </Attribute>
    <Attribute>
      <Name>VisibilityTimeout</Name>
      <Value>30</Value>
    </Attribute>
  </GetQueueAttributesResult>
  <ResponseMetadata>
    <RequestId>00000000-0000-0000-0000-000000000000</RequestId>
  </ResponseMetadata>
</GetQueueAttributesResponse>"#,
    );
}

#[test]
fn spec_list_queue_tags() {
    assert_xml(
        Response::ListQueueTags(ListQueueTagsResponse { tags: Some(attribute_map(&[("env", "dev"), ("team", "x")])) }),
        r#"<?xml version="1.0"?>
<ListQueueTagsResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/">
  <ListQueueTagsResult>
    <Tag>
      <Key>env</Key>
      <Value>dev</Value>
    </Tag>
    <Tag>
      <Key>team</Key>
      <Value>x</Value>
    </Tag>
  </ListQueueTagsResult>
  <ResponseMetadata>
    <RequestId>00000000-0000-0000-0000-000000000000</RequestId>
  </ResponseMetadata>
</ListQueueTagsResponse>"#,
    );
}

#[test]
fn spec_send_message() {
    assert_xml(
        Response::SendMessage(SendMessageResponse {
            md5_of_message_body: Some("5d41402abc4b2a76b9719d911017c592".into()),
            md5_of_message_attributes: Some("b536df4a44b21b4124ef7ed21374564e".into()),
            md5_of_message_system_attributes: Some("5ae4d5d7636402d80f4eb6d213245a88".into()),
            message_id: Some("5fea7756-0ea4-451a-a703-a558b933e274".into()),
            sequence_number: Some("18849496460467696128".into()),
        }),
        r#"<?xml version="1.0"?>
<SendMessageResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/">
  <SendMessageResult>
    <MD5OfMessageBody>5d41402abc4b2a76b9719d911017c592</MD5OfMessageBody>
    <MD5OfMessageAttributes>b536df4a44b21b4124ef7ed21374564e</MD5OfMessageAttributes>
    <MD5OfMessageSystemAttributes>5ae4d5d7636402d80f4eb6d213245a88</MD5OfMessageSystemAttributes>
    <MessageId>5fea7756-0ea4-451a-a703-a558b933e274</MessageId>
    <SequenceNumber>18849496460467696128</SequenceNumber>
  </SendMessageResult>
  <ResponseMetadata>
    <RequestId>00000000-0000-0000-0000-000000000000</RequestId>
  </ResponseMetadata>
</SendMessageResponse>"#,
    );
}

#[test]
fn spec_send_message_batch() {
    assert_xml(
        Response::SendMessageBatch(SendMessageBatchResponse {
            successful: vec![SendMessageBatchResultEntry {
                id: "e1".into(),
                message_id: "m1".into(),
                md5_of_message_body: "5d41402abc4b2a76b9719d911017c592".into(),
                ..Default::default()
            }],
            failed: vec![BatchResultErrorEntry {
                id: "e2".into(),
                sender_fault: true,
                code: "InvalidParameterValue".into(),
                message: Some("bad".into()),
            }],
        }),
        r#"<?xml version="1.0"?>
<SendMessageBatchResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/">
  <SendMessageBatchResult>
    <SendMessageBatchResultEntry>
      <Id>e1</Id>
      <MessageId>m1</MessageId>
      <MD5OfMessageBody>5d41402abc4b2a76b9719d911017c592</MD5OfMessageBody>
    </SendMessageBatchResultEntry>
    <BatchResultErrorEntry>
      <Id>e2</Id>
      <SenderFault>true</SenderFault>
      <Code>InvalidParameterValue</Code>
      <Message>bad</Message>
    </BatchResultErrorEntry>
  </SendMessageBatchResult>
  <ResponseMetadata>
    <RequestId>00000000-0000-0000-0000-000000000000</RequestId>
  </ResponseMetadata>
</SendMessageBatchResponse>"#,
    );
}

fn spec_message() -> Message {
    Message {
        message_id: "m1".into(),
        receipt_handle: "rh1".into(),
        md5_of_body: "5d41402abc4b2a76b9719d911017c592".into(),
        body: "say \"hi\" & <bye>\r\n".into(),
        attributes: Some(attribute_map(&[("SentTimestamp", "1700000000000"), ("ApproximateReceiveCount", "1")])),
        md5_of_message_attributes: Some("b536df4a44b21b4124ef7ed21374564e".into()),
        message_attributes: Some(
            [
                (
                    "a".to_owned(),
                    MessageAttributeValue {
                        data_type: "String".into(),
                        string_value: Some("hi".into()),
                        ..Default::default()
                    },
                ),
                (
                    "c".to_owned(),
                    MessageAttributeValue {
                        data_type: "Binary.png".into(),
                        binary_value: Some(Blob(vec![0x00, 0xff])),
                        ..Default::default()
                    },
                ),
            ]
            .into(),
        ),
    }
}

#[test]
fn spec_receive_message_escapes_cr() {
    // As recorded, except the two system attributes, which come out in key order.
    let expected = r#"<?xml version="1.0"?>
<ReceiveMessageResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/">
  <ReceiveMessageResult>
    <Message>
      <MessageId>m1</MessageId>
      <ReceiptHandle>rh1</ReceiptHandle>
      <MD5OfBody>5d41402abc4b2a76b9719d911017c592</MD5OfBody>
      <Body>say &quot;hi&quot; &amp; &lt;bye&gt;&#xD;
</Body>
      <Attribute>
        <Name>ApproximateReceiveCount</Name>
        <Value>1</Value>
      </Attribute>
      <Attribute>
        <Name>SentTimestamp</Name>
        <Value>1700000000000</Value>
      </Attribute>
      <MD5OfMessageAttributes>b536df4a44b21b4124ef7ed21374564e</MD5OfMessageAttributes>
      <MessageAttribute>
        <Name>a</Name>
        <Value>
          <StringValue>hi</StringValue>
          <DataType>String</DataType>
        </Value>
      </MessageAttribute>
      <MessageAttribute>
        <Name>c</Name>
        <Value>
          <BinaryValue>AP8=</BinaryValue>
          <DataType>Binary.png</DataType>
        </Value>
      </MessageAttribute>
    </Message>
  </ReceiveMessageResult>
  <ResponseMetadata>
    <RequestId>00000000-0000-0000-0000-000000000000</RequestId>
  </ResponseMetadata>
</ReceiveMessageResponse>"#;
    let body = xml(&Response::ReceiveMessage(ReceiveMessageResponse { messages: Some(vec![spec_message()]) }));
    assert_eq!(compact(&body), compact(expected));
    // The raw CR never reaches the document: parsers would turn it into LF.
    assert!(!body.contains('\r'));
    assert!(body.contains("<Body>say &quot;hi&quot; &amp; &lt;bye&gt;&#xD;\n</Body>"));
}

#[test]
fn spec_empty_receive() {
    let body = xml(&Response::ReceiveMessage(ReceiveMessageResponse { messages: None }));
    assert_eq!(
        body,
        format!(
            "<?xml version=\"1.0\"?>\n<ReceiveMessageResponse xmlns=\"http://queue.amazonaws.com/doc/2012-11-05/\">\
             <ReceiveMessageResult/><ResponseMetadata><RequestId>{RID}</RequestId></ResponseMetadata>\
             </ReceiveMessageResponse>"
        )
    );
}

#[test]
fn spec_list_message_move_tasks() {
    assert_xml(
        Response::ListMessageMoveTasks(ListMessageMoveTasksResponse {
            results: Some(vec![ListMessageMoveTasksResultEntry {
                task_handle: Some("th1".into()),
                status: Some("RUNNING".into()),
                source_arn: Some("arn:aws:sqs:us-east-1:000000000000:dlq".into()),
                approximate_number_of_messages_moved: Some(1),
                approximate_number_of_messages_to_move: Some(10),
                started_timestamp: Some(1_700_000_000_000),
                ..Default::default()
            }]),
        }),
        r#"<?xml version="1.0"?>
<ListMessageMoveTasksResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/">
  <ListMessageMoveTasksResult>
    <ListMessageMoveTasksResultEntry>
      <TaskHandle>th1</TaskHandle>
      <Status>RUNNING</Status>
      <SourceArn>arn:aws:sqs:us-east-1:000000000000:dlq</SourceArn>
      <ApproximateNumberOfMessagesMoved>1</ApproximateNumberOfMessagesMoved>
      <ApproximateNumberOfMessagesToMove>10</ApproximateNumberOfMessagesToMove>
      <StartedTimestamp>1700000000000</StartedTimestamp>
    </ListMessageMoveTasksResultEntry>
  </ListMessageMoveTasksResult>
  <ResponseMetadata>
    <RequestId>00000000-0000-0000-0000-000000000000</RequestId>
  </ResponseMetadata>
</ListMessageMoveTasksResponse>"#,
    );
}

#[test]
fn spec_no_output_actions() {
    assert_xml(
        Response::DeleteMessage(NoOutput),
        r#"<?xml version="1.0"?>
<DeleteMessageResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/">
  <ResponseMetadata>
    <RequestId>00000000-0000-0000-0000-000000000000</RequestId>
  </ResponseMetadata>
</DeleteMessageResponse>"#,
    );
    let body = xml(&Response::TagQueue(NoOutput));
    assert!(body.contains("<TagQueueResponse ") && !body.contains("TagQueueResult"), "{body}");
}

#[test]
fn other_outputs_follow_the_model() {
    let entries = |n: usize| (1..=n).map(|i| BatchResultEntry { id: format!("i{i}") }).collect::<Vec<_>>();
    let failed = vec![BatchResultErrorEntry {
        id: "f".into(),
        sender_fault: false,
        code: "InternalError".into(),
        message: None,
    }];
    let body = xml(&Response::DeleteMessageBatch(DeleteMessageBatchResponse {
        successful: entries(2),
        failed: failed.clone(),
    }));
    assert!(body.contains(
        "<DeleteMessageBatchResult><DeleteMessageBatchResultEntry><Id>i1</Id></DeleteMessageBatchResultEntry>\
         <DeleteMessageBatchResultEntry><Id>i2</Id></DeleteMessageBatchResultEntry>\
         <BatchResultErrorEntry><Id>f</Id><SenderFault>false</SenderFault><Code>InternalError</Code></BatchResultErrorEntry>\
         </DeleteMessageBatchResult>"
    ), "{body}");
    let body = xml(&Response::ChangeMessageVisibilityBatch(ChangeMessageVisibilityBatchResponse {
        successful: entries(1),
        failed: vec![],
    }));
    assert!(
        body.contains(
            "<ChangeMessageVisibilityBatchResult><ChangeMessageVisibilityBatchResultEntry><Id>i1</Id>\
         </ChangeMessageVisibilityBatchResultEntry></ChangeMessageVisibilityBatchResult>"
        ),
        "{body}"
    );
    let body = xml(&Response::ListDeadLetterSourceQueues(ListDeadLetterSourceQueuesResponse {
        queue_urls: vec!["u1".into(), "u2".into()],
        next_token: Some("n".into()),
    }));
    assert!(
        body.contains(
            "<ListDeadLetterSourceQueuesResult><QueueUrl>u1</QueueUrl><QueueUrl>u2</QueueUrl><NextToken>n</NextToken>\
         </ListDeadLetterSourceQueuesResult>"
        ),
        "{body}"
    );
    let body = xml(&Response::CreateQueue(CreateQueueResponse { queue_url: Some("http://h/1/a&b".into()) }));
    assert!(body.contains("<CreateQueueResult><QueueUrl>http://h/1/a&amp;b</QueueUrl></CreateQueueResult>"), "{body}");
    let body = xml(&Response::GetQueueUrl(GetQueueUrlResponse { queue_url: Some("u".into()) }));
    assert!(body.contains("<GetQueueUrlResult><QueueUrl>u</QueueUrl></GetQueueUrlResult>"), "{body}");
    let body = xml(&Response::StartMessageMoveTask(StartMessageMoveTaskResponse { task_handle: Some("t".into()) }));
    assert!(
        body.contains("<StartMessageMoveTaskResult><TaskHandle>t</TaskHandle></StartMessageMoveTaskResult>"),
        "{body}"
    );
    let body = xml(&Response::CancelMessageMoveTask(CancelMessageMoveTaskResponse {
        approximate_number_of_messages_moved: Some(7),
    }));
    assert!(
        body.contains(
            "<CancelMessageMoveTaskResult><ApproximateNumberOfMessagesMoved>7</ApproximateNumberOfMessagesMoved>\
         </CancelMessageMoveTaskResult>"
        ),
        "{body}"
    );
    // Every member of the fullest structures has a model element (a miss would panic in debug).
    let full = Response::ListMessageMoveTasks(ListMessageMoveTasksResponse {
        results: Some(vec![ListMessageMoveTasksResultEntry {
            task_handle: Some("t".into()),
            status: Some("FAILED".into()),
            source_arn: Some("s".into()),
            destination_arn: Some("d".into()),
            max_number_of_messages_per_second: Some(5),
            approximate_number_of_messages_moved: Some(1),
            approximate_number_of_messages_to_move: Some(2),
            failure_reason: Some("r".into()),
            started_timestamp: Some(3),
        }]),
    });
    assert!(xml(&full)
        .contains("<MaxNumberOfMessagesPerSecond>5</MaxNumberOfMessagesPerSecond><ApproximateNumberOfMessagesMoved>1"));
    let batch = Response::SendMessageBatch(SendMessageBatchResponse {
        successful: vec![SendMessageBatchResultEntry {
            id: "i".into(),
            message_id: "m".into(),
            md5_of_message_body: "b".into(),
            md5_of_message_attributes: Some("a".into()),
            md5_of_message_system_attributes: Some("s".into()),
            sequence_number: Some("1".into()),
        }],
        failed: vec![],
    });
    assert!(xml(&batch)
        .contains("<MD5OfMessageSystemAttributes>s</MD5OfMessageSystemAttributes><SequenceNumber>1</SequenceNumber>"));
}

#[test]
fn spec_xml_error() {
    let error = sqs_error!(QueueDoesNotExist, "The specified queue does not exist.");
    let http = encode_error(Protocol::Query, &error, "42d59b56-7407-4c4a-be0f-4c88daeea257");
    assert_eq!(http.status(), 400);
    assert_eq!(http.headers()["content-type"], "text/xml");
    let expected = r#"<?xml version="1.0"?>
<ErrorResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/">
  <Error>
    <Type>Sender</Type>
    <Code>AWS.SimpleQueueService.NonExistentQueue</Code>
    <Message>The specified queue does not exist for this wsdl version.</Message>
    <Detail/>
  </Error>
  <RequestId>42d59b56-7407-4c4a-be0f-4c88daeea257</RequestId>
</ErrorResponse>"#;
    assert_eq!(compact(std::str::from_utf8(http.body()).unwrap()), compact(expected));

    let error = sqs_error!(InternalFailure, "a < b & \"c\"\r");
    let http = encode_error(Protocol::Query, &error, RID);
    assert_eq!(http.status(), 500);
    let body = std::str::from_utf8(http.body()).unwrap();
    assert!(
        body.contains(
            "<Type>Receiver</Type><Code>InternalFailure</Code><Message>a &lt; b &amp; &quot;c&quot;&#xD;</Message>"
        ),
        "{body}"
    );
    let http = encode_error(Protocol::Query, &sqs_error!(ReceiptHandleIsInvalid, "x"), RID);
    assert_eq!(http.status(), 404);
}

#[test]
fn json_responses() {
    let http = encode_response(
        Protocol::Json,
        &Response::SendMessage(SendMessageResponse {
            md5_of_message_body: Some("5d41402abc4b2a76b9719d911017c592".into()),
            message_id: Some("5fea7756-0ea4-451a-a703-a558b933e274".into()),
            ..Default::default()
        }),
        "req-1",
    );
    assert_eq!(http.status(), 200);
    assert_eq!(http.headers()["x-amzn-requestid"], "req-1");
    assert_eq!(http.headers()["content-type"], "application/x-amz-json-1.0");
    assert_eq!(
        http.body().as_ref(),
        br#"{"MD5OfMessageBody":"5d41402abc4b2a76b9719d911017c592","MessageId":"5fea7756-0ea4-451a-a703-a558b933e274"}"#
    );
    let http = encode_response(Protocol::Json, &Response::PurgeQueue(NoOutput), "r");
    assert_eq!(http.body().as_ref(), b"{}");
    let http = encode_response(Protocol::Json, &Response::ReceiveMessage(ReceiveMessageResponse::default()), "r");
    assert_eq!(http.body().as_ref(), b"{}");
    let http = encode_response(
        Protocol::Json,
        &Response::ReceiveMessage(ReceiveMessageResponse { messages: Some(vec![spec_message()]) }),
        "r",
    );
    let value: serde_json::Value = serde_json::from_slice(http.body()).unwrap();
    assert_eq!(value["Messages"][0]["Body"], "say \"hi\" & <bye>\r\n");
    assert_eq!(value["Messages"][0]["MessageAttributes"]["c"]["BinaryValue"], "AP8=");
    let http = encode_response(
        Protocol::Json,
        &Response::ListDeadLetterSourceQueues(ListDeadLetterSourceQueuesResponse::default()),
        "r",
    );
    assert_eq!(http.body().as_ref(), br#"{"queueUrls":[]}"#);
}

#[test]
fn json_errors_carry_the_query_error_header() {
    let error = sqs_error!(QueueDoesNotExist, "The specified queue does not exist.");
    let http = encode_error(Protocol::Json, &error, "req-2");
    assert_eq!(http.status(), 400);
    assert_eq!(http.headers()["x-amzn-query-error"], "AWS.SimpleQueueService.NonExistentQueue;Sender");
    assert_eq!(http.headers()["x-amzn-requestid"], "req-2");
    assert_eq!(http.headers()["content-type"], "application/x-amz-json-1.0");
    assert_eq!(
        http.body().as_ref(),
        br#"{"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"The specified queue does not exist."}"#
    );
    let http = encode_error(Protocol::Json, &sqs_error!(InternalFailure, "boom \"x\""), "r");
    assert_eq!(http.status(), 500);
    assert_eq!(http.headers()["x-amzn-query-error"], "InternalFailure;Receiver");
    assert_eq!(
        http.body().as_ref(),
        br#"{"__type":"com.amazon.coral.service#InternalFailure","message":"boom \"x\""}"#
    );
    let http = encode_error(Protocol::Json, &sqs_error!(PurgeQueueInProgress, "p"), "r");
    assert_eq!(
        (http.status().as_u16(), &http.headers()["x-amzn-query-error"]),
        (403, &"AWS.SimpleQueueService.PurgeQueueInProgress;Sender".parse::<http::HeaderValue>().unwrap())
    );
}

#[test]
fn escaping() {
    let mut out = String::new();
    crate::xml::escape_into(&mut out, "a&b<c>d\"e'f\r\ng\u{e9}");
    assert_eq!(out, "a&amp;b&lt;c&gt;d&quot;e'f&#xD;\ng\u{e9}");
}
