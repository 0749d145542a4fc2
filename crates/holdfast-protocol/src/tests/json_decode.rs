//! AWS JSON 1.0 decoding: every botocore 1.44.5 example of the AWS JSON protocol <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-making-api-requests-json.html>, and the diagnosis of
//! requests that do not decode.

use holdfast_api::types::*;
use holdfast_api::{Action, Blob, ErrorCode, Request};

use super::{json_request, Q1};
use crate::Protocol;

fn ok(op: &str, body: &str) -> Request {
    let decoded = json_request(op, body);
    assert_eq!(decoded.protocol, Protocol::Json);
    assert_eq!(decoded.action, Action::from_name(op));
    decoded.request.unwrap_or_else(|err| panic!("{op} {body}: {err}"))
}

fn err(op: &str, body: &str) -> (ErrorCode, String) {
    let error = json_request(op, body).request.expect_err(body);
    (error.code, error.message)
}

fn string_attr(value: &str) -> MessageAttributeValue {
    MessageAttributeValue { data_type: "String".into(), string_value: Some(value.into()), ..Default::default() }
}

pub(crate) fn expected_send_message() -> Request {
    Request::SendMessage(SendMessageRequest {
        queue_url: Q1.into(),
        message_body: "hello".into(),
        delay_seconds: Some(0),
        message_attributes: Some(
            [
                ("a".to_owned(), string_attr("hi")),
                (
                    "b".to_owned(),
                    MessageAttributeValue {
                        data_type: "Binary".into(),
                        binary_value: Some(Blob(vec![0x00, 0xff])),
                        ..Default::default()
                    },
                ),
            ]
            .into(),
        ),
        message_system_attributes: Some(
            [("AWSTraceHeader".to_owned(), string_attr("Root=1-5759e988-bd862e3fe1be46a994272793"))].into(),
        ),
        message_deduplication_id: Some("d1".into()),
        message_group_id: Some("g1".into()),
    })
}

pub(crate) fn expected_create_queue() -> Request {
    Request::CreateQueue(CreateQueueRequest {
        queue_name: "q1.fifo".into(),
        attributes: Some(
            [("FifoQueue".to_owned(), "true".to_owned()), ("VisibilityTimeout".to_owned(), "60".to_owned())].into(),
        ),
        tags: Some([("env".to_owned(), "dev".to_owned())].into()),
    })
}

pub(crate) fn expected_send_message_batch() -> Request {
    Request::SendMessageBatch(SendMessageBatchRequest {
        queue_url: Q1.into(),
        entries: vec![
            SendMessageBatchRequestEntry {
                id: "e1".into(),
                message_body: "b1".into(),
                message_attributes: Some(
                    [(
                        "n".to_owned(),
                        MessageAttributeValue {
                            data_type: "Number".into(),
                            string_value: Some("1".into()),
                            ..Default::default()
                        },
                    )]
                    .into(),
                ),
                ..Default::default()
            },
            SendMessageBatchRequestEntry {
                id: "e2".into(),
                message_body: "b2".into(),
                delay_seconds: Some(5),
                ..Default::default()
            },
        ],
    })
}

pub(crate) fn expected_tag_queue() -> Request {
    Request::TagQueue(TagQueueRequest {
        queue_url: Q1.into(),
        tags: [("k1".to_owned(), "v1".to_owned()), ("k2".to_owned(), "v2".to_owned())].into(),
    })
}

pub(crate) fn expected_untag_queue() -> Request {
    Request::UntagQueue(UntagQueueRequest { queue_url: Q1.into(), tag_keys: vec!["k1".into(), "k2".into()] })
}

pub(crate) fn expected_add_permission() -> Request {
    Request::AddPermission(AddPermissionRequest {
        queue_url: Q1.into(),
        label: "L".into(),
        aws_account_ids: vec!["111122223333".into()],
        actions: vec!["SendMessage".into(), "ReceiveMessage".into()],
    })
}

#[test]
fn captured_send_message_request_with_escapes() {
    // the AWS JSON protocol: the exact body botocore 1.44.5 sent (Python json.dumps escapes).
    let body = r#"{"QueueUrl": "http://localhost:9324/000000000000/q1", "MessageBody": "a b+c&\u00e9\r\n"}"#;
    let Request::SendMessage(req) = ok("SendMessage", body) else { panic!("wrong variant") };
    assert_eq!(req.queue_url, Q1);
    assert_eq!(req.message_body, "a b+c&\u{e9}\r\n");
    assert_eq!(req.delay_seconds, None);
}

#[test]
fn surrogate_pairs_decode() {
    let body = r#"{"QueueUrl": "u", "MessageBody": "\ud83d\ude00"}"#;
    let Request::SendMessage(req) = ok("SendMessage", body) else { panic!("wrong variant") };
    assert_eq!(req.message_body, "\u{1F600}");
}

#[test]
fn send_message_example() {
    let body = r#"{"QueueUrl":"http://localhost:9324/000000000000/q1","MessageBody":"hello","DelaySeconds":0,
 "MessageAttributes":{"a":{"DataType":"String","StringValue":"hi"},"b":{"DataType":"Binary","BinaryValue":"AP8="}},
 "MessageSystemAttributes":{"AWSTraceHeader":{"DataType":"String","StringValue":"Root=1-5759e988-bd862e3fe1be46a994272793"}},
 "MessageGroupId":"g1","MessageDeduplicationId":"d1"}"#;
    assert_eq!(ok("SendMessage", body), expected_send_message());
}

#[test]
fn receive_message_example() {
    let body = r#"{"QueueUrl":"http://localhost:9324/000000000000/q1","AttributeNames":["All"],"MessageSystemAttributeNames":["SentTimestamp","ApproximateReceiveCount"],
 "MessageAttributeNames":["All"],"MaxNumberOfMessages":10,"VisibilityTimeout":30,"WaitTimeSeconds":20,"ReceiveRequestAttemptId":"r1"}"#;
    assert_eq!(
        ok("ReceiveMessage", body),
        Request::ReceiveMessage(ReceiveMessageRequest {
            queue_url: Q1.into(),
            attribute_names: Some(vec!["All".into()]),
            message_system_attribute_names: Some(vec!["SentTimestamp".into(), "ApproximateReceiveCount".into()]),
            message_attribute_names: Some(vec!["All".into()]),
            max_number_of_messages: Some(10),
            visibility_timeout: Some(30),
            wait_time_seconds: Some(20),
            receive_request_attempt_id: Some("r1".into()),
        })
    );
}

#[test]
fn create_queue_example() {
    let body =
        r#"{"QueueName":"q1.fifo","Attributes":{"FifoQueue":"true","VisibilityTimeout":"60"},"tags":{"env":"dev"}}"#;
    assert_eq!(ok("CreateQueue", body), expected_create_queue());
}

#[test]
fn set_queue_attributes_example() {
    let body = r#"{"QueueUrl":"http://localhost:9324/000000000000/q1","Attributes":{"RedrivePolicy":"{\"deadLetterTargetArn\":\"arn:aws:sqs:us-east-1:000000000000:dlq\",\"maxReceiveCount\":\"3\"}"}}"#;
    assert_eq!(
        ok("SetQueueAttributes", body),
        Request::SetQueueAttributes(SetQueueAttributesRequest {
            queue_url: Q1.into(),
            attributes: [(
                "RedrivePolicy".to_owned(),
                r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq","maxReceiveCount":"3"}"#.to_owned()
            )]
            .into(),
        })
    );
}

#[test]
fn send_message_batch_example() {
    let body = r#"{"QueueUrl":"http://localhost:9324/000000000000/q1","Entries":[{"Id":"e1","MessageBody":"b1","MessageAttributes":{"n":{"DataType":"Number","StringValue":"1"}}},
 {"Id":"e2","MessageBody":"b2","DelaySeconds":5}]}"#;
    assert_eq!(ok("SendMessageBatch", body), expected_send_message_batch());
}

#[test]
fn change_message_visibility_batch_example() {
    let body = r#"{"QueueUrl":"http://localhost:9324/000000000000/q1","Entries":[{"Id":"x","ReceiptHandle":"rh1","VisibilityTimeout":10}]}"#;
    assert_eq!(
        ok("ChangeMessageVisibilityBatch", body),
        Request::ChangeMessageVisibilityBatch(ChangeMessageVisibilityBatchRequest {
            queue_url: Q1.into(),
            entries: vec![ChangeMessageVisibilityBatchRequestEntry {
                id: "x".into(),
                receipt_handle: "rh1".into(),
                visibility_timeout: Some(10),
            }],
        })
    );
}

#[test]
fn tag_untag_and_permission_examples() {
    let q = r#""QueueUrl":"http://localhost:9324/000000000000/q1""#;
    assert_eq!(ok("TagQueue", &format!(r#"{{{q},"Tags":{{"k1":"v1","k2":"v2"}}}}"#)), expected_tag_queue());
    assert_eq!(ok("UntagQueue", &format!(r#"{{{q},"TagKeys":["k1","k2"]}}"#)), expected_untag_queue());
    assert_eq!(
        ok(
            "AddPermission",
            &format!(
                r#"{{{q},"Label":"L","AWSAccountIds":["111122223333"],"Actions":["SendMessage","ReceiveMessage"]}}"#
            )
        ),
        expected_add_permission()
    );
}

#[test]
fn message_move_task_examples() {
    assert_eq!(
        ok(
            "StartMessageMoveTask",
            r#"{"SourceArn":"arn:aws:sqs:us-east-1:000000000000:dlq","DestinationArn":"arn:aws:sqs:us-east-1:000000000000:q1","MaxNumberOfMessagesPerSecond":50}"#
        ),
        Request::StartMessageMoveTask(StartMessageMoveTaskRequest {
            source_arn: "arn:aws:sqs:us-east-1:000000000000:dlq".into(),
            destination_arn: Some("arn:aws:sqs:us-east-1:000000000000:q1".into()),
            max_number_of_messages_per_second: Some(50),
        })
    );
    assert_eq!(
        ok("ListMessageMoveTasks", r#"{"SourceArn":"arn:aws:sqs:us-east-1:000000000000:dlq","MaxResults":10}"#),
        Request::ListMessageMoveTasks(ListMessageMoveTasksRequest {
            source_arn: "arn:aws:sqs:us-east-1:000000000000:dlq".into(),
            max_results: Some(10),
        })
    );
    assert_eq!(
        ok("CancelMessageMoveTask", r#"{"TaskHandle":"th"}"#),
        Request::CancelMessageMoveTask(CancelMessageMoveTaskRequest { task_handle: "th".into() })
    );
}

#[test]
fn empty_body_is_an_empty_object_and_nulls_are_absent() {
    assert_eq!(ok("ListQueues", ""), Request::ListQueues(ListQueuesRequest::default()));
    assert_eq!(ok("ListQueues", "  \n"), Request::ListQueues(ListQueuesRequest::default()));
    assert_eq!(
        ok("ListQueues", r#"{"QueueNamePrefix":null,"MaxResults":null,"Unknown":[1,{"x":null}]}"#),
        Request::ListQueues(ListQueuesRequest::default())
    );
}

#[test]
fn missing_required_members() {
    assert_eq!(
        err("SendMessage", r#"{"MessageBody":"x"}"#),
        (ErrorCode::MissingParameter, "The request must contain the parameter QueueUrl.".into())
    );
    // Explicit null is absent; members are checked in model order.
    assert_eq!(
        err("SendMessage", r#"{"QueueUrl":"u","MessageBody":null}"#),
        (ErrorCode::MissingParameter, "The request must contain the parameter MessageBody.".into())
    );
    assert_eq!(
        err("DeleteMessageBatch", r#"{"QueueUrl":"u"}"#),
        (ErrorCode::MissingParameter, "The request must contain the parameter Entries.".into())
    );
    assert_eq!(
        err("SendMessageBatch", r#"{"QueueUrl":"u","Entries":[{"Id":"a","MessageBody":"b"},{"MessageBody":"c"}]}"#),
        (ErrorCode::MissingParameter, "The request must contain the parameter Entries.2.Id.".into())
    );
    assert_eq!(
        err("SendMessage", r#"{"QueueUrl":"u","MessageBody":"b","MessageAttributes":{"a":{"StringValue":"x"}}}"#),
        (ErrorCode::MissingParameter, "The request must contain the parameter MessageAttributes.a.DataType.".into())
    );
    assert_eq!(
        err("ChangeMessageVisibility", r#"{"QueueUrl":"u","ReceiptHandle":"r"}"#).0,
        ErrorCode::MissingParameter
    );
}

#[test]
fn empty_entries_decode_for_the_service_to_reject() {
    let Request::DeleteMessageBatch(req) = ok("DeleteMessageBatch", r#"{"QueueUrl":"u","Entries":[]}"#) else {
        panic!("wrong variant")
    };
    assert!(req.entries.is_empty());
}

#[test]
fn wrong_types_are_invalid_parameter_values() {
    assert_eq!(
        err("SendMessage", r#"{"QueueUrl":"u","MessageBody":"b","DelaySeconds":"5"}"#),
        (
            ErrorCode::InvalidParameterValue,
            "Value 5 for parameter DelaySeconds is invalid. Reason: must be an integer.".into()
        )
    );
    assert_eq!(err("SendMessage", r#"{"QueueUrl":7,"MessageBody":"b"}"#).0, ErrorCode::InvalidParameterValue);
    assert_eq!(
        err("SendMessage", r#"{"QueueUrl":"u","MessageBody":"b","DelaySeconds":1.5}"#).0,
        ErrorCode::InvalidParameterValue
    );
    assert_eq!(
        err("GetQueueAttributes", r#"{"QueueUrl":"u","AttributeNames":"All"}"#),
        (
            ErrorCode::InvalidParameterValue,
            "Value All for parameter AttributeNames is invalid. Reason: must be a list.".into()
        )
    );
    assert_eq!(
        err("GetQueueAttributes", r#"{"QueueUrl":"u","AttributeNames":[null]}"#).1,
        "Value null for parameter AttributeNames.1 is invalid. Reason: list elements must not be null."
    );
    let (code, message) = err(
        "SendMessage",
        r#"{"QueueUrl":"u","MessageBody":"b","MessageAttributes":{"a":{"DataType":"Binary","BinaryValue":"not base64!"}}}"#,
    );
    assert_eq!(code, ErrorCode::InvalidParameterValue);
    assert!(message.contains("MessageAttributes.a.BinaryValue"), "{message}");
}

#[test]
fn malformed_json_is_a_serialization_exception() {
    for body in [r#"{"QueueUrl":"#, "[]", "\"x\"", "null", r#"{"QueueUrl":"u"} trailing"#] {
        assert_eq!(err("DeleteQueue", body).0, ErrorCode::SerializationException, "{body}");
    }
}
