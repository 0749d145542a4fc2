//! SigV4 against the two vectors of Signature Version 4 <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html> (botocore with a frozen clock), each
//! intermediate string checked.

use http::{Method, Uri};

use super::{decode_parts, header_map};
use crate::sigv4::{self, Credential};
use crate::HttpRequest;

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

#[test]
fn header_vector() {
    let method = Method::POST;
    let uri: Uri = "/".parse().unwrap();
    let auth = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/sqs/aws4_request, \
                SignedHeaders=content-type;host;x-amz-date;x-amz-target, \
                Signature=5a515afaba005c0ab34f2ffaa30967b6f96731d4077b586b7965ac107aa4177f";
    let headers = header_map(&[
        ("content-type", "application/x-amz-json-1.0"),
        ("host", "localhost:9324"),
        ("x-amz-date", "20240101T000000Z"),
        ("x-amz-target", "AmazonSQS.GetQueueUrl"),
        ("user-agent", "not  signed"),
        ("authorization", auth),
    ]);
    let body = br#"{"QueueName": "q1"}"#;
    let req = HttpRequest { method: &method, uri: &uri, headers: &headers, body };

    let cred = sigv4::parse(&req).expect("credential");
    assert_eq!(
        cred,
        Credential {
            access_key_id: "AKIDEXAMPLE".into(),
            date: "20240101".into(),
            region: "us-east-1".into(),
            service: "sqs".into(),
            signed_headers: vec!["content-type".into(), "host".into(), "x-amz-date".into(), "x-amz-target".into()],
            signature: "5a515afaba005c0ab34f2ffaa30967b6f96731d4077b586b7965ac107aa4177f".into(),
            amz_date: Some("20240101T000000Z".into()),
            presigned: false,
            expires: None,
        }
    );
    assert_eq!(cred.scope(), "20240101/us-east-1/sqs/aws4_request");

    let canonical = sigv4::canonical_request(&req, &cred.signed_headers);
    assert_eq!(
        canonical,
        "POST\n/\n\ncontent-type:application/x-amz-json-1.0\nhost:localhost:9324\nx-amz-date:20240101T000000Z\n\
         x-amz-target:AmazonSQS.GetQueueUrl\n\ncontent-type;host;x-amz-date;x-amz-target\n\
         10c9bc2a02e4525744731a3484b97fa01afa02ffbeb3cc79400d2b530b71a764"
    );
    let to_sign = sigv4::string_to_sign("20240101T000000Z", &cred.scope(), &canonical);
    assert_eq!(
        to_sign,
        "AWS4-HMAC-SHA256\n20240101T000000Z\n20240101/us-east-1/sqs/aws4_request\n\
         de1fc7dc4df21d212800202cfb8b59f5b98d881d5b5760d1f1b1a1ae47bff327"
    );
    let key = sigv4::signing_key(SECRET, "20240101", "us-east-1", "sqs");
    assert_eq!(hex::encode(key), "6e9a7792b58224219512402d1ace012e0d8d249118d08a7004e985425a8a7192");
    assert_eq!(sigv4::signature(&key, &to_sign), "5a515afaba005c0ab34f2ffaa30967b6f96731d4077b586b7965ac107aa4177f");
    assert!(sigv4::verify(&req, &cred, SECRET));

    // Any change breaks it: the secret, the body, a signed header, the signature itself.
    assert!(!sigv4::verify(&req, &cred, "wrong"));
    let tampered = HttpRequest { body: br#"{"QueueName": "q2"}"#, ..req };
    assert!(!sigv4::verify(&tampered, &cred, SECRET));
    let mut other_headers = headers.clone();
    other_headers.insert("x-amz-target", "AmazonSQS.DeleteQueue".parse().unwrap());
    assert!(!sigv4::verify(&HttpRequest { headers: &other_headers, ..req }, &cred, SECRET));
    let bad_signature = Credential { signature: "0".repeat(64), ..cred.clone() };
    assert!(!sigv4::verify(&req, &bad_signature, SECRET));
    assert!(!sigv4::verify(&req, &Credential { amz_date: None, ..cred }, SECRET));
}

const PRESIGNED: &str = "http://localhost:9324/000000000000/q1?Action=DeleteMessage&ReceiptHandle=rh%201%2B%2F%3D&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20240101%2Fus-east-1%2Fsqs%2Faws4_request&X-Amz-Date=20240101T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=2bc8b1515d8ea8a43301b0ef9de668a42e872110a06ab4d98608cc654fd32f1e";

#[test]
fn presigned_vector() {
    let method = Method::GET;
    let full: Uri = PRESIGNED.parse().unwrap();
    // A server sees the origin form plus a Host header.
    let uri: Uri = full.path_and_query().unwrap().as_str().parse().unwrap();
    let headers = header_map(&[("host", "localhost:9324")]);
    let req = HttpRequest { method: &method, uri: &uri, headers: &headers, body: b"" };

    let cred = sigv4::parse(&req).expect("presigned credential");
    assert!(cred.presigned);
    assert_eq!(cred.expires, Some(3600));
    assert_eq!(cred.amz_date.as_deref(), Some("20240101T000000Z"));
    assert_eq!(cred.access_key_id, "AKIDEXAMPLE");
    assert_eq!(cred.signed_headers, ["host"]);

    let canonical = sigv4::canonical_request(&req, &cred.signed_headers);
    assert_eq!(
        canonical,
        "GET\n/000000000000/q1\nAction=DeleteMessage&ReceiptHandle=rh%201%2B%2F%3D&X-Amz-Algorithm=AWS4-HMAC-SHA256&\
         X-Amz-Credential=AKIDEXAMPLE%2F20240101%2Fus-east-1%2Fsqs%2Faws4_request&X-Amz-Date=20240101T000000Z&\
         X-Amz-Expires=3600&X-Amz-SignedHeaders=host\nhost:localhost:9324\n\nhost\n\
         e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    let to_sign = sigv4::string_to_sign(cred.amz_date.as_deref().unwrap(), &cred.scope(), &canonical);
    assert_eq!(
        to_sign,
        "AWS4-HMAC-SHA256\n20240101T000000Z\n20240101/us-east-1/sqs/aws4_request\n\
         4ff9fb83465699b7077879cc75e1b26cc894bab606749757fd991a40b3053d95"
    );
    let key = sigv4::signing_key(SECRET, &cred.date, &cred.region, &cred.service);
    assert_eq!(sigv4::signature(&key, &to_sign), "2bc8b1515d8ea8a43301b0ef9de668a42e872110a06ab4d98608cc654fd32f1e");
    assert!(sigv4::verify(&req, &cred, SECRET));
    // The absolute-form URI (HTTP/2 :authority, proxies) signs the same without a Host header.
    let bare = http::HeaderMap::new();
    assert!(sigv4::verify(&HttpRequest { uri: &full, headers: &bare, ..req }, &cred, SECRET));
    let other: Uri = PRESIGNED.replace("rh%201", "rh%202").parse().unwrap();
    assert!(!sigv4::verify(&HttpRequest { uri: &other, ..req }, &cred, SECRET));

    // And the whole request decodes, the queue taken from the path.
    let decoded = decode_parts("GET", uri.to_string().as_str(), &[("host", "localhost:9324")], b"");
    assert_eq!(decoded.credentials, Some(cred));
    assert_eq!(
        decoded.request.unwrap(),
        holdfast_api::Request::DeleteMessage(holdfast_api::types::DeleteMessageRequest {
            queue_url: "/000000000000/q1".into(),
            receipt_handle: "rh 1+/=".into(),
        })
    );
}

#[test]
fn canonical_pieces() {
    assert_eq!(sigv4::canonical_uri(""), "/");
    assert_eq!(sigv4::canonical_uri("/"), "/");
    assert_eq!(sigv4::canonical_uri("/a/./b/../c//d/"), "/a/c/d/");
    assert_eq!(sigv4::canonical_uri("/000000000000/q1"), "/000000000000/q1");
    // Non-S3 double encoding: the received `%20` is encoded again.
    assert_eq!(sigv4::canonical_uri("/a%20b/~x"), "/a%2520b/~x");
    assert_eq!(sigv4::canonical_query_string(None), "");
    assert_eq!(
        sigv4::canonical_query_string(Some("b=2&a=%7e&a=1&c&X-Amz-Signature=s&d=a+b")),
        "a=1&a=~&b=2&c=&d=a%2Bb"
    );
    let headers = header_map(&[("x-a", "  one   two  "), ("x-a", "three"), ("host", "h")]);
    assert_eq!(
        sigv4::canonical_headers(&headers, &"/".parse().unwrap(), &["host", "x-a"]),
        "host:h\nx-a:one two,three\n"
    );
    assert_eq!(
        sigv4::payload_hash(&header_map(&[("x-amz-content-sha256", "UNSIGNED-PAYLOAD")]), b"x"),
        "UNSIGNED-PAYLOAD"
    );
    assert_eq!(sigv4::payload_hash(&header_map(&[]), b""), sigv4::EMPTY_SHA256);
}

#[test]
fn malformed_authorization_headers() {
    for header in [
        "AWS4-HMAC-SHA256",
        "AWS4-HMAC-SHA256Credential=A/20240101/r/sqs/aws4_request, SignedHeaders=host, Signature=ab",
        "AWS4-HMAC-SHA1 Credential=A/20240101/r/sqs/aws4_request, SignedHeaders=host, Signature=ab",
        "AWS4-HMAC-SHA256 Credential=A/20240101/r/sqs, SignedHeaders=host, Signature=ab",
        "AWS4-HMAC-SHA256 Credential=A/20240101/r/sqs/aws4_request/x, SignedHeaders=host, Signature=ab",
        "AWS4-HMAC-SHA256 Credential=A/20240101/r/sqs/aws4_request, Signature=ab",
        "AWS4-HMAC-SHA256 Credential=A/20240101/r/sqs/aws4_request, SignedHeaders=host",
        "AWS4-HMAC-SHA256 Credential=/20240101/r/sqs/aws4_request, SignedHeaders=host, Signature=ab",
        "AWS4-HMAC-SHA256 Credential=A/20240101/r/sqs/aws4_request, SignedHeaders=host, garbage",
        "AWS AKID:signature",
    ] {
        assert_eq!(sigv4::parse_authorization(header, Some("20240101T000000Z")), None, "{header}");
    }
    let ok = sigv4::parse_authorization(
        "AWS4-HMAC-SHA256 Credential=A/20240101/r/sqs/aws4_request,SignedHeaders=host,Signature=AB",
        None,
    )
    .unwrap();
    assert_eq!((ok.signature.as_str(), ok.amz_date), ("ab", None));
    assert_eq!(sigv4::parse_presigned("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=A%2F1%2Fr%2Fsqs%2Faws4_request&X-Amz-SignedHeaders=host&X-Amz-Signature=ab&X-Amz-Expires=soon"), None);
    assert_eq!(sigv4::parse_presigned("Action=ListQueues"), None);
}

#[test]
fn amz_dates_both_ways() {
    use std::time::{Duration, UNIX_EPOCH};
    for (secs, text) in
        [(0, "19700101T000000Z"), (1_709_251_199, "20240229T235959Z"), (951_782_400, "20000229T000000Z")]
    {
        assert_eq!(sigv4::format_amz_date(UNIX_EPOCH + Duration::from_secs(secs)), text);
        assert_eq!(sigv4::parse_amz_date(text), Some(secs as i64));
    }
    for bad in ["2024-02-29T23:59:59Z", "20241301T000000Z", "20240229T240000Z", "20240229T2359", "+0240229T000000Z", ""]
    {
        assert_eq!(sigv4::parse_amz_date(bad), None, "{bad}");
    }
}
