//! Routing (docs/compatibility.md, "Wire protocols"), queue-from-path (docs/compatibility.md, "Queue URLs and regions") and where credentials are found.

use holdfast_api::types::*;
use holdfast_api::{Action, ErrorCode, Request};

use super::{decode_parts, form_request, json_request};
use crate::Protocol;

#[test]
fn x_amz_target_selects_json() {
    let decoded = json_request("ListQueues", "{}");
    assert_eq!(decoded.protocol, Protocol::Json);
    assert_eq!(decoded.action, Some(Action::ListQueues));
    assert_eq!(decoded.request.unwrap(), Request::ListQueues(ListQueuesRequest::default()));
    // `application/json` works too, and a form body is not consulted when the target is set.
    let decoded = decode_parts(
        "POST",
        "/?Action=DeleteQueue",
        &[("content-type", "application/json"), ("x-amz-target", "AmazonSQS.GetQueueUrl")],
        br#"{"QueueName":"q1"}"#,
    );
    assert_eq!(decoded.protocol, Protocol::Json);
    assert_eq!(
        decoded.request.unwrap(),
        Request::GetQueueUrl(GetQueueUrlRequest { queue_name: "q1".into(), queue_owner_aws_account_id: None })
    );
}

#[test]
fn bad_targets_are_invalid_action_in_json() {
    for target in ["AmazonSQS.Nope", "AmazonSNS.ListQueues", "ListQueues", "AmazonSQS.listqueues"] {
        let decoded = decode_parts("POST", "/", &[("x-amz-target", target)], b"{}");
        assert_eq!(decoded.protocol, Protocol::Json, "{target}");
        assert_eq!(decoded.action, None, "{target}");
        assert_eq!(decoded.request.unwrap_err().code, ErrorCode::InvalidAction, "{target}");
    }
}

#[test]
fn action_parameter_selects_query() {
    let decoded = decode_parts("GET", "/?Action=ListQueues&Version=2012-11-05", &[], b"");
    assert_eq!(decoded.protocol, Protocol::Query);
    assert_eq!(decoded.request.unwrap(), Request::ListQueues(ListQueuesRequest::default()));
    // A form POST without content-type is still read (hand-built clients).
    let decoded = decode_parts("POST", "/", &[], b"Action=ListQueues&QueueNamePrefix=a");
    assert_eq!(decoded.action, Some(Action::ListQueues));
}

#[test]
fn unknown_or_missing_action() {
    let decoded = form_request("/", "Action=Frobnicate&Version=2012-11-05");
    assert_eq!((decoded.protocol, decoded.action), (Protocol::Query, None));
    assert_eq!(decoded.request.unwrap_err().code, ErrorCode::InvalidAction);

    for (uri, body) in [("/", ""), ("/", "Version=2012-11-05"), ("/?Action=", "")] {
        let decoded = form_request(uri, body);
        assert_eq!((decoded.protocol, decoded.action), (Protocol::Query, None));
        assert_eq!(decoded.request.unwrap_err().code, ErrorCode::MissingAction, "{uri} {body}");
    }
    // A JSON body without a target is not JSON.
    let decoded = decode_parts("POST", "/", &[("content-type", "application/x-amz-json-1.0")], b"{}");
    assert_eq!(decoded.protocol, Protocol::Query);
    assert_eq!(decoded.request.unwrap_err().code, ErrorCode::MissingAction);
}

#[test]
fn queue_paths_may_name_a_region() {
    assert_eq!(crate::queue_url_from_path("/eu-west-1/000000000000/q1/"), Some("/eu-west-1/000000000000/q1"));
    assert_eq!(crate::queue_url_from_path("/000000000000/q1"), Some("/000000000000/q1"));
    assert_eq!(crate::queue_url_from_path("/a/b/c/d"), None);
    assert_eq!(crate::queue_url_from_path("/a//c"), None);
    assert_eq!(crate::queue_url_from_path("/"), None);
}

#[test]
fn queue_url_from_path_in_both_protocols() {
    let decoded = form_request("/000000000000/q1", "Action=DeleteMessage&ReceiptHandle=rh");
    assert_eq!(
        decoded.request.unwrap(),
        Request::DeleteMessage(DeleteMessageRequest {
            queue_url: "/000000000000/q1".into(),
            receipt_handle: "rh".into()
        })
    );

    let target = [("x-amz-target", "AmazonSQS.DeleteMessage")];
    let decoded = decode_parts("POST", "/000000000000/q1/", &target, br#"{"ReceiptHandle":"rh"}"#);
    assert_eq!(
        decoded.request.unwrap(),
        Request::DeleteMessage(DeleteMessageRequest {
            queue_url: "/000000000000/q1".into(),
            receipt_handle: "rh".into()
        })
    );
    // A QueueUrl in the body wins over the path; null counts as absent.
    let decoded =
        decode_parts("POST", "/000000000000/q1", &target, br#"{"QueueUrl":"http://h/1/q","ReceiptHandle":"rh"}"#);
    let Request::DeleteMessage(req) = decoded.request.unwrap() else { panic!("wrong variant") };
    assert_eq!(req.queue_url, "http://h/1/q");
    let decoded = decode_parts("POST", "/000000000000/q1", &target, br#"{"QueueUrl":null,"ReceiptHandle":"rh"}"#);
    let Request::DeleteMessage(req) = decoded.request.unwrap() else { panic!("wrong variant") };
    assert_eq!(req.queue_url, "/000000000000/q1");
    // Actions without a QueueUrl member are unaffected by the path.
    let decoded = decode_parts("POST", "/000000000000/q1", &[("x-amz-target", "AmazonSQS.ListQueues")], b"");
    assert_eq!(decoded.request.unwrap(), Request::ListQueues(ListQueuesRequest::default()));
}

#[test]
fn authorization_header_is_parsed_and_malformed_is_ignored() {
    let auth = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261121/us-east-1/sqs/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target;x-amzn-query-mode, Signature=ABCDEF01";
    let decoded = decode_parts(
        "POST",
        "/",
        &[("x-amz-target", "AmazonSQS.ListQueues"), ("x-amz-date", "20261121T083732Z"), ("authorization", auth)],
        b"{}",
    );
    let credential = decoded.credentials.expect("credential");
    assert_eq!(credential.access_key_id, "AKIDEXAMPLE");
    assert_eq!(credential.date, "20261121");
    assert_eq!(credential.region, "us-east-1");
    assert_eq!(credential.service, "sqs");
    assert_eq!(credential.signed_headers, ["content-type", "host", "x-amz-date", "x-amz-target", "x-amzn-query-mode"]);
    assert_eq!(credential.signature, "abcdef01");
    assert_eq!(credential.amz_date.as_deref(), Some("20261121T083732Z"));
    assert!(!credential.presigned);
    assert_eq!(credential.expires, None);

    let decoded = decode_parts(
        "POST",
        "/",
        &[("x-amz-target", "AmazonSQS.ListQueues"), ("authorization", "AWS4-HMAC-SHA256 Credential=AKID/20261121")],
        b"{}",
    );
    assert_eq!(decoded.credentials, None);
    assert!(decoded.request.is_ok());
    assert_eq!(json_request("ListQueues", "{}").credentials, None);
}
