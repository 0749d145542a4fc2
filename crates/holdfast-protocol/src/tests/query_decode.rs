//! Query-protocol decoding: every botocore 1.34.89 body captured in the Query protocol <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-making-api-requests-xml.html>, kombu's
//! deviations, the lenient forms, and the errors.

use holdfast_api::types::*;
use holdfast_api::{Action, ErrorCode, Request};

use super::json_decode::{
    expected_add_permission, expected_create_queue, expected_send_message, expected_send_message_batch,
    expected_tag_queue, expected_untag_queue,
};
use super::{decode_parts, encode_form, form_request, Q1};
use crate::Protocol;

/// Decodes a Query protocol body (URL-decoded there) after encoding it as botocore does.
fn captured(decoded_body: &str) -> Request {
    let body = encode_form(decoded_body);
    let decoded = form_request("/", &body);
    assert_eq!(decoded.protocol, Protocol::Query);
    decoded.request.unwrap_or_else(|err| panic!("{body}: {err}"))
}

fn query_err(path: &str, body: &str) -> (ErrorCode, String) {
    let error = form_request(path, body).request.expect_err(body);
    (error.code, error.message)
}

#[test]
fn captured_send_message_body_with_plus_and_escapes() {
    // the Query protocol, byte for byte: `+` is a space, `%2B` a plus, CR LF survive.
    let body = "Action=SendMessage&Version=2012-11-05&QueueUrl=http%3A%2F%2Flocalhost%3A9324%2F000000000000%2Fq1&MessageBody=a+b%2Bc%26%C3%A9%0D%0A";
    let decoded = form_request("/", body);
    assert_eq!(decoded.action, Some(Action::SendMessage));
    assert_eq!(
        decoded.request.unwrap(),
        Request::SendMessage(SendMessageRequest {
            queue_url: Q1.into(),
            message_body: "a b+c&\u{e9}\r\n".into(),
            ..Default::default()
        })
    );
}

#[test]
fn captured_create_queue() {
    let body = "Action=CreateQueue&Version=2012-11-05&QueueName=q1.fifo&Attribute.1.Name=FifoQueue&Attribute.1.Value=true&Attribute.2.Name=VisibilityTimeout&Attribute.2.Value=60&Tag.1.Key=env&Tag.1.Value=dev";
    assert_eq!(captured(body), expected_create_queue());
}

#[test]
fn captured_receive_message() {
    let body = "Action=ReceiveMessage&Version=2012-11-05&QueueUrl=…/q1&AttributeName.1=All&MessageAttributeName.1=All&MaxNumberOfMessages=10&WaitTimeSeconds=20";
    assert_eq!(
        captured(body),
        Request::ReceiveMessage(ReceiveMessageRequest {
            queue_url: Q1.into(),
            attribute_names: Some(vec!["All".into()]),
            message_attribute_names: Some(vec!["All".into()]),
            max_number_of_messages: Some(10),
            wait_time_seconds: Some(20),
            ..Default::default()
        })
    );
}

#[test]
fn captured_send_message() {
    let body = "Action=SendMessage&Version=2012-11-05&QueueUrl=…/q1&MessageBody=hello&DelaySeconds=0&MessageAttribute.1.Name=a&MessageAttribute.1.Value.DataType=String&MessageAttribute.1.Value.StringValue=hi&MessageAttribute.2.Name=b&MessageAttribute.2.Value.DataType=Binary&MessageAttribute.2.Value.BinaryValue=AP8=&MessageSystemAttribute.1.Name=AWSTraceHeader&MessageSystemAttribute.1.Value.DataType=String&MessageSystemAttribute.1.Value.StringValue=Root=1-5759e988-bd862e3fe1be46a994272793&MessageGroupId=g1&MessageDeduplicationId=d1";
    assert_eq!(captured(body), expected_send_message());
}

#[test]
fn captured_send_message_batch() {
    let body = "Action=SendMessageBatch&Version=2012-11-05&QueueUrl=…/q1&SendMessageBatchRequestEntry.1.Id=e1&SendMessageBatchRequestEntry.1.MessageBody=b1&SendMessageBatchRequestEntry.1.MessageAttribute.1.Name=n&SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.DataType=Number&SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.StringValue=1&SendMessageBatchRequestEntry.2.Id=e2&SendMessageBatchRequestEntry.2.MessageBody=b2&SendMessageBatchRequestEntry.2.DelaySeconds=5";
    assert_eq!(captured(body), expected_send_message_batch());
}

#[test]
fn captured_delete_message_batch() {
    let body = "Action=DeleteMessageBatch&Version=2012-11-05&QueueUrl=…/q1&DeleteMessageBatchRequestEntry.1.Id=x&DeleteMessageBatchRequestEntry.1.ReceiptHandle=rh1";
    assert_eq!(
        captured(body),
        Request::DeleteMessageBatch(DeleteMessageBatchRequest {
            queue_url: Q1.into(),
            entries: vec![DeleteMessageBatchRequestEntry { id: "x".into(), receipt_handle: "rh1".into() }],
        })
    );
}

#[test]
fn captured_tag_untag_and_permission() {
    let tag =
        "Action=TagQueue&Version=2012-11-05&QueueUrl=…/q1&Tag.1.Key=k1&Tag.1.Value=v1&Tag.2.Key=k2&Tag.2.Value=v2";
    assert_eq!(captured(tag), expected_tag_queue());
    let untag = "Action=UntagQueue&Version=2012-11-05&QueueUrl=…/q1&TagKey.1=k1&TagKey.2=k2";
    assert_eq!(captured(untag), expected_untag_queue());
    let add = "Action=AddPermission&Version=2012-11-05&QueueUrl=…/q1&Label=L&AWSAccountId.1=111122223333&ActionName.1=SendMessage&ActionName.2=ReceiveMessage";
    assert_eq!(captured(add), expected_add_permission());
}

#[test]
fn change_message_visibility_batch_and_scalars() {
    let body = "Action=ChangeMessageVisibilityBatch&QueueUrl=…/q1&ChangeMessageVisibilityBatchRequestEntry.1.Id=x&ChangeMessageVisibilityBatchRequestEntry.1.ReceiptHandle=rh1&ChangeMessageVisibilityBatchRequestEntry.1.VisibilityTimeout=10";
    assert_eq!(
        captured(body),
        Request::ChangeMessageVisibilityBatch(ChangeMessageVisibilityBatchRequest {
            queue_url: Q1.into(),
            entries: vec![ChangeMessageVisibilityBatchRequestEntry {
                id: "x".into(),
                receipt_handle: "rh1".into(),
                visibility_timeout: Some(10),
            }],
        })
    );
    assert_eq!(
        captured("Action=ListQueues&QueueNamePrefix=q&MaxResults=5&NextToken=t"),
        Request::ListQueues(ListQueuesRequest {
            queue_name_prefix: Some("q".into()),
            next_token: Some("t".into()),
            max_results: Some(5),
        })
    );
    assert_eq!(
        captured("Action=GetQueueUrl&QueueName=q1&QueueOwnerAWSAccountId=123"),
        Request::GetQueueUrl(GetQueueUrlRequest {
            queue_name: "q1".into(),
            queue_owner_aws_account_id: Some("123".into()),
        })
    );
}

#[test]
fn indices_may_be_sparse_and_unordered() {
    let body = "Action=GetQueueAttributes&QueueUrl=u&AttributeName.10=C&AttributeName.2=B&AttributeName.1=A";
    let Request::GetQueueAttributes(req) = captured(body) else { panic!("wrong variant") };
    assert_eq!(req.attribute_names, Some(vec!["A".into(), "B".into(), "C".into()]));

    let body = "Action=DeleteMessageBatch&QueueUrl=u&DeleteMessageBatchRequestEntry.3.Id=b&DeleteMessageBatchRequestEntry.3.ReceiptHandle=rb&DeleteMessageBatchRequestEntry.1.Id=a&DeleteMessageBatchRequestEntry.1.ReceiptHandle=ra";
    let Request::DeleteMessageBatch(req) = captured(body) else { panic!("wrong variant") };
    let ids: Vec<&str> = req.entries.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
}

#[test]
fn bare_empty_list_keys_are_empty_lists() {
    // botocore sends an empty list as the bare member name with an empty value.
    let Request::GetQueueAttributes(req) = captured("Action=GetQueueAttributes&QueueUrl=u&AttributeNames=") else {
        panic!("wrong variant")
    };
    assert_eq!(req.attribute_names, Some(vec![]));
    // An empty batch decodes, so the service can answer EmptyBatchRequest.
    let Request::SendMessageBatch(req) = captured("Action=SendMessageBatch&QueueUrl=u&Entries=") else {
        panic!("wrong variant")
    };
    assert!(req.entries.is_empty());
    // Absent entirely is a missing parameter.
    assert_eq!(
        query_err("/", "Action=SendMessageBatch&QueueUrl=u"),
        (ErrorCode::MissingParameter, "The request must contain the parameter Entries.".into())
    );
}

#[test]
fn kombu_receive_message_aliases_on_the_queue_path() {
    // kombu's async client: GET to the queue URL, presigned, no Version, plural/alias names.
    let uri = "/000000000000/q1?Action=ReceiveMessage&MessageSystemAttributeName.1=ApproximateReceiveCount&MessageAttributeNames.1=All&WaitTimeSeconds=20&MaxNumberOfMessages=10&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20240101%2Fus-east-1%2Fsqs%2Faws4_request&X-Amz-Date=20240101T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=00";
    let decoded = decode_parts("GET", uri, &[("host", "localhost:9324")], b"");
    assert_eq!(decoded.protocol, Protocol::Query);
    assert_eq!(
        decoded.request.unwrap(),
        Request::ReceiveMessage(ReceiveMessageRequest {
            queue_url: "/000000000000/q1".into(),
            message_system_attribute_names: Some(vec!["ApproximateReceiveCount".into()]),
            message_attribute_names: Some(vec!["All".into()]),
            max_number_of_messages: Some(10),
            wait_time_seconds: Some(20),
            ..Default::default()
        })
    );
    let credentials = decoded.credentials.expect("presigned credentials");
    assert!(credentials.presigned);
    assert_eq!(credentials.expires, Some(3600));
}

#[test]
fn kombu_unindexed_attribute() {
    // kombu's set_queue_attribute: `Attribute.Name` / `Attribute.Value` without an index.
    let decoded = form_request(
        "/000000000000/q1/",
        "Action=SetQueueAttributes&Attribute.Name=VisibilityTimeout&Attribute.Value=60",
    );
    assert_eq!(
        decoded.request.unwrap(),
        Request::SetQueueAttributes(SetQueueAttributesRequest {
            queue_url: "/000000000000/q1".into(),
            attributes: [("VisibilityTimeout".to_owned(), "60".to_owned())].into(),
        })
    );
}

#[test]
fn non_flattened_forms_are_accepted() {
    let body = "Action=CreateQueue&QueueName=q&Attributes.entry.1.key=DelaySeconds&Attributes.entry.1.value=5&AttributeNames.member.1=x";
    let Request::CreateQueue(req) = captured(body) else { panic!("wrong variant") };
    assert_eq!(req.attributes, Some([("DelaySeconds".to_owned(), "5".to_owned())].into()));
    let body = "Action=UntagQueue&QueueUrl=u&TagKeys.member.1=a&TagKeys.member.2=b";
    let Request::UntagQueue(req) = captured(body) else { panic!("wrong variant") };
    assert_eq!(req.tag_keys, ["a", "b"]);
}

#[test]
fn url_query_and_form_body_merge_and_plumbing_is_ignored() {
    let decoded = decode_parts(
        "POST",
        "/?Action=DeleteMessage&Version=2012-11-05",
        &[("content-type", "application/x-www-form-urlencoded")],
        b"QueueUrl=u&ReceiptHandle=r+h&AWSAccessKeyId=AK&SignatureVersion=2&SignatureMethod=HmacSHA256&Signature=x&Timestamp=t&Expires=e",
    );
    assert_eq!(
        decoded.request.unwrap(),
        Request::DeleteMessage(DeleteMessageRequest { queue_url: "u".into(), receipt_handle: "r h".into() })
    );
}

#[test]
fn queue_url_parameter_beats_the_path() {
    let decoded = form_request("/000000000000/other", "Action=PurgeQueue&QueueUrl=http%3A%2F%2Fh%2F1%2Fq");
    assert_eq!(decoded.request.unwrap(), Request::PurgeQueue(PurgeQueueRequest { queue_url: "http://h/1/q".into() }));
    // Only `/<account>/<name>` and `/<region>/<account>/<name>` paths name a queue.
    assert_eq!(
        query_err("/a/b/c/d", "Action=PurgeQueue"),
        (ErrorCode::MissingParameter, "The request must contain the parameter QueueUrl.".into())
    );
}

#[test]
fn parameter_errors_name_the_wire_key() {
    assert_eq!(
        query_err("/", "Action=SendMessage&QueueUrl=u&MessageBody=b&DelaySeconds=abc"),
        (
            ErrorCode::InvalidParameterValue,
            "Value abc for parameter DelaySeconds is invalid. Reason: must be an integer.".into()
        )
    );
    assert_eq!(
        query_err("/", "Action=SendMessageBatch&QueueUrl=u&SendMessageBatchRequestEntry.1.Id=e1"),
        (
            ErrorCode::MissingParameter,
            "The request must contain the parameter SendMessageBatchRequestEntry.1.MessageBody.".into()
        )
    );
    assert_eq!(
        query_err("/", "Action=SendMessage&QueueUrl=u&MessageBody=b&MessageAttribute.1.Name=a&MessageAttribute.1.Value.StringValue=x"),
        (ErrorCode::MissingParameter, "The request must contain the parameter MessageAttribute.1.Value.DataType.".into())
    );
    assert_eq!(query_err("/", "Action=TagQueue&QueueUrl=u&Tag.1.Value=v").0, ErrorCode::MissingParameter);
    let (code, message) = query_err(
        "/",
        "Action=SendMessage&QueueUrl=u&MessageBody=b&MessageAttribute.1.Name=a&MessageAttribute.1.Value.DataType=Binary&MessageAttribute.1.Value.BinaryValue=%21%21",
    );
    assert_eq!(code, ErrorCode::InvalidParameterValue);
    assert!(message.contains("MessageAttribute.1.Value.BinaryValue"), "{message}");
    assert_eq!(
        query_err("/", "Action=ChangeMessageVisibility&QueueUrl=u&ReceiptHandle=r"),
        (ErrorCode::MissingParameter, "The request must contain the parameter VisibilityTimeout.".into())
    );
}
