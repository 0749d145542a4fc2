"""The wire itself, without an SDK: raw AWS JSON 1.0 and Query/XML requests built with urllib
(the API reference, common errors (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/CommonErrors.html), docs/compatibility.md, "Wire protocols", docs/compatibility.md, "Queue URLs and regions"), signed by the small SigV4 signer in holdfast_testlib (checked here against
the Signature Version 4 (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html) vectors first)."""

from __future__ import annotations

import urllib.parse

from holdfast_testlib import (
    ACCOUNT_ID,
    json_call,
    md5_hex,
    presign_url,
    query_get,
    query_post,
    sign_headers,
    unique_name,
)

JSON_CONTENT_TYPE = "application/x-amz-json-1.0"


# --- the signer, against Signature Version 4 ---------------------------------------------------------


def test_signer_matches_spec_header_vector():
    headers = sign_headers(
        "POST",
        "http://localhost:9324/",
        {"Content-Type": JSON_CONTENT_TYPE, "X-Amz-Target": "AmazonSQS.GetQueueUrl"},
        b'{"QueueName": "q1"}',
        amz_date="20240101T000000Z",
        access_key="AKIDEXAMPLE",
        secret_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    )
    assert headers["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/sqs/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date;x-amz-target, "
        "Signature=5a515afaba005c0ab34f2ffaa30967b6f96731d4077b586b7965ac107aa4177f"
    )


def test_signer_matches_spec_presigned_vector():
    url = presign_url(
        "GET",
        "http://localhost:9324/000000000000/q1",
        [("Action", "DeleteMessage"), ("ReceiptHandle", "rh 1+/=")],
        amz_date="20240101T000000Z",
        access_key="AKIDEXAMPLE",
        secret_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    )
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    assert query["X-Amz-Signature"] == "2bc8b1515d8ea8a43301b0ef9de668a42e872110a06ab4d98608cc654fd32f1e"


# --- helpers --------------------------------------------------------------------------------


def _create_queue(server, name=None) -> tuple[str, str]:
    name = name or unique_name("raw")
    resp = json_call(server.url, "CreateQueue", {"QueueName": name})
    assert resp.status == 200, resp.body
    return name, resp.json()["QueueUrl"]


def _xml_error(resp):
    root = resp.xml()
    assert root.tag == "ErrorResponse", resp.body
    error = root.find("Error")
    assert error is not None, resp.body
    return root, {child.tag: (child.text or "") for child in error}


# --- AWS JSON 1.0 ---------------------------------------------------------------------------


def test_json_error_shape_and_query_error_header(server):
    resp = json_call(server.url, "GetQueueUrl", {"QueueName": unique_name("missing")})
    assert resp.status == 400
    assert resp.headers.get("Content-Type", "").startswith(JSON_CONTENT_TYPE)
    body = resp.json()
    assert body["__type"] == "com.amazonaws.sqs#QueueDoesNotExist"
    assert isinstance(body.get("message"), str) and body["message"]
    assert resp.headers.get("x-amzn-query-error") == "AWS.SimpleQueueService.NonExistentQueue;Sender"
    assert resp.headers.get("x-amzn-RequestId")


def test_json_success_has_request_id(server):
    first = json_call(server.url, "ListQueues", {"QueueNamePrefix": unique_name("none")})
    second = json_call(server.url, "ListQueues", {"QueueNamePrefix": unique_name("none")})
    assert first.status == second.status == 200
    assert first.headers.get("Content-Type", "").startswith(JSON_CONTENT_TYPE)
    assert first.headers.get("x-amzn-RequestId") and second.headers.get("x-amzn-RequestId")
    assert first.headers["x-amzn-RequestId"] != second.headers["x-amzn-RequestId"]
    assert first.json().get("QueueUrls", []) == []


def test_json_modeled_errors_carry_their_codes(server):
    _, url = _create_queue(server)
    resp = json_call(server.url, "SendMessageBatch", {"QueueUrl": url, "Entries": []})
    assert resp.status == 400
    assert resp.json()["__type"] == "com.amazonaws.sqs#EmptyBatchRequest"
    assert resp.headers.get("x-amzn-query-error") == "AWS.SimpleQueueService.EmptyBatchRequest;Sender"

    resp = json_call(server.url, "DeleteMessage", {"QueueUrl": url, "ReceiptHandle": "garbage"})
    assert resp.status == 404
    assert resp.json()["__type"] == "com.amazonaws.sqs#ReceiptHandleIsInvalid"
    assert resp.headers.get("x-amzn-query-error") == "ReceiptHandleIsInvalid;Sender"


def test_json_unmodeled_error_uses_query_code_header(server):
    _, url = _create_queue(server)
    resp = json_call(server.url, "ReceiveMessage", {"QueueUrl": url, "MaxNumberOfMessages": 11})
    assert resp.status == 400
    assert resp.headers.get("x-amzn-query-error") == "InvalidParameterValue;Sender"
    assert "#" in resp.json()["__type"]


def test_json_unknown_operation(server):
    resp = json_call(server.url, "NoSuchOperation", {})
    assert resp.status == 400
    assert resp.headers.get("x-amzn-query-error", "").startswith("InvalidAction;")
    assert "__type" in resp.json()


def test_json_round_trip_and_empty_receive(server):
    _, url = _create_queue(server)
    resp = json_call(server.url, "ReceiveMessage", {"QueueUrl": url})
    assert resp.status == 200
    assert "Messages" not in resp.json(), "an empty receive has no Messages key"

    body = "a b+c&\u00e9\r\n😀"
    resp = json_call(server.url, "SendMessage", {"QueueUrl": url, "MessageBody": body})
    assert resp.status == 200
    assert resp.json()["MD5OfMessageBody"] == md5_hex(body)

    resp = json_call(server.url, "ReceiveMessage", {"QueueUrl": url, "MessageSystemAttributeNames": ["ApproximateReceiveCount"]})
    [message] = resp.json()["Messages"]
    assert message["Body"] == body
    assert message["Attributes"] == {"ApproximateReceiveCount": "1"}

    # No-output operations answer 200 with an empty body or {}.
    resp = json_call(server.url, "DeleteMessage", {"QueueUrl": url, "ReceiptHandle": message["ReceiptHandle"]})
    assert resp.status == 200
    assert resp.json() == {}


def test_json_batch_results_leave_empty_lists_out(server):
    # AWS's JSON answers omit an empty Failed (or Successful) list; the SDKs read it as empty.
    _, url = _create_queue(server)
    resp = json_call(server.url, "SendMessageBatch", {"QueueUrl": url, "Entries": [{"Id": "a", "MessageBody": "x"}]})
    assert resp.status == 200
    body = resp.json()
    assert [e["Id"] for e in body["Successful"]] == ["a"]
    assert "Failed" not in body
    resp = json_call(server.url, "DeleteMessageBatch", {"QueueUrl": url, "Entries": [{"Id": "b", "ReceiptHandle": "nope"}]})
    body = resp.json()
    assert [e["Id"] for e in body["Failed"]] == ["b"]
    assert "Successful" not in body


def test_queue_url_host_is_ignored(server):
    # Only the last two path segments of QueueUrl name the queue (docs/compatibility.md, "Queue URLs and regions").
    name, _ = _create_queue(server)
    elsewhere = f"http://localhost:1/{ACCOUNT_ID}/{name}"
    resp = json_call(server.url, "SendMessage", {"QueueUrl": elsewhere, "MessageBody": "via another host"})
    assert resp.status == 200, resp.body
    resp = json_call(server.url, "GetQueueUrl", {"QueueName": name})
    # The URL handed out leads back to this server.
    assert resp.json()["QueueUrl"] == server.queue_url(name)


# --- Query / XML ----------------------------------------------------------------------------


def test_query_post_create_and_attributes(server):
    name = unique_name("qpost")
    resp = query_post(
        server.url + "/",
        [
            ("Action", "CreateQueue"),
            ("Version", "2012-11-05"),
            ("QueueName", name),
            ("Attribute.1.Name", "VisibilityTimeout"),
            ("Attribute.1.Value", "45"),
            ("Tag.1.Key", "env"),
            ("Tag.1.Value", "dev"),
        ],
    )
    assert resp.status == 200, resp.body
    assert resp.headers.get("Content-Type", "").startswith("text/xml")
    root = resp.xml()
    assert root.tag == "CreateQueueResponse"
    assert root.findtext("CreateQueueResult/QueueUrl") == server.queue_url(name)
    assert root.findtext("ResponseMetadata/RequestId")

    resp = query_post(
        server.url + "/",
        [
            ("Action", "GetQueueAttributes"),
            ("Version", "2012-11-05"),
            ("QueueUrl", server.queue_url(name)),
            ("AttributeName.1", "VisibilityTimeout"),
            ("AttributeName.2", "QueueArn"),
        ],
    )
    assert resp.status == 200, resp.body
    attributes = {a.findtext("Name"): a.findtext("Value") for a in resp.xml().findall("GetQueueAttributesResult/Attribute")}
    assert attributes == {"VisibilityTimeout": "45", "QueueArn": f"arn:aws:sqs:us-east-1:{ACCOUNT_ID}:{name}"}

    resp = query_post(server.url + "/", [("Action", "ListQueueTags"), ("QueueUrl", server.queue_url(name))])
    tags = {t.findtext("Key"): t.findtext("Value") for t in resp.xml().findall("ListQueueTagsResult/Tag")}
    assert tags == {"env": "dev"}


def test_query_get_on_queue_path(server):
    # kombu's style: GET to the queue URL, parameters in the query string, no QueueUrl, no
    # Version, presigned SigV4.
    name, url = _create_queue(server)
    body = "hello world & more+plus"
    resp = query_get(url, [("Action", "SendMessage"), ("MessageBody", body)])
    assert resp.status == 200, resp.body
    root = resp.xml()
    assert root.tag == "SendMessageResponse"
    assert root.findtext("SendMessageResult/MD5OfMessageBody") == md5_hex(body)
    message_id = root.findtext("SendMessageResult/MessageId")
    assert message_id
    assert root.findtext("ResponseMetadata/RequestId")

    # kombu's ReceiveMessage parameters: MessageSystemAttributeName.N and MessageAttributeNames.N.
    resp = query_get(
        url,
        [
            ("Action", "ReceiveMessage"),
            ("MessageSystemAttributeName.1", "ApproximateReceiveCount"),
            ("MessageAttributeNames.1", "All"),
            ("MaxNumberOfMessages", "10"),
            ("WaitTimeSeconds", "2"),
        ],
    )
    assert resp.status == 200, resp.body
    messages = resp.xml().findall("ReceiveMessageResult/Message")
    assert len(messages) == 1
    message = messages[0]
    assert message.findtext("MessageId") == message_id
    assert message.findtext("Body") == body
    assert message.findtext("MD5OfBody") == md5_hex(body)
    attributes = {a.findtext("Name"): a.findtext("Value") for a in message.findall("Attribute")}
    assert attributes == {"ApproximateReceiveCount": "1"}

    resp = query_get(url, [("Action", "DeleteMessage"), ("ReceiptHandle", message.findtext("ReceiptHandle"))])
    assert resp.status == 200, resp.body
    assert resp.xml().tag == "DeleteMessageResponse"

    resp = json_call(server.url, "GetQueueAttributes", {"QueueUrl": url, "AttributeNames": ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]})
    assert resp.json()["Attributes"] == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}


def test_query_form_plus_is_space_and_cr_survives_xml(server):
    _, url = _create_queue(server)
    # urlencode turns spaces into '+' and '+' into %2B: the server must decode both.
    body = "a b+c&\u00e9\r\nline2\r"
    resp = query_post(server.url + "/", [("Action", "SendMessage"), ("Version", "2012-11-05"), ("QueueUrl", url), ("MessageBody", body)])
    assert resp.status == 200, resp.body
    assert resp.xml().findtext("SendMessageResult/MD5OfMessageBody") == md5_hex(body)

    resp = query_post(server.url + "/", [("Action", "ReceiveMessage"), ("Version", "2012-11-05"), ("QueueUrl", url), ("WaitTimeSeconds", "2")])
    assert resp.status == 200, resp.body
    # An XML parser turns a literal CR into LF; the server must escape it (&#xD;) (the Query protocol (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-making-api-requests-xml.html)).
    assert resp.xml().findtext("ReceiveMessageResult/Message/Body") == body


def test_query_message_attributes_in_xml(server):
    _, url = _create_queue(server)
    params = [
        ("Action", "SendMessage"),
        ("QueueUrl", url),
        ("MessageBody", "hello"),
        ("MessageAttribute.1.Name", "b"),
        ("MessageAttribute.1.Value.DataType", "Number"),
        ("MessageAttribute.1.Value.StringValue", "42"),
        ("MessageAttribute.2.Name", "a"),
        ("MessageAttribute.2.Value.DataType", "String"),
        ("MessageAttribute.2.Value.StringValue", "hi"),
        ("MessageAttribute.3.Name", "c"),
        ("MessageAttribute.3.Value.DataType", "Binary.png"),
        ("MessageAttribute.3.Value.BinaryValue", "AP8="),
    ]
    resp = query_post(server.url + "/", params)
    assert resp.status == 200, resp.body
    assert resp.xml().findtext("SendMessageResult/MD5OfMessageAttributes") == "b536df4a44b21b4124ef7ed21374564e"

    resp = query_post(server.url + "/", [("Action", "ReceiveMessage"), ("QueueUrl", url), ("MessageAttributeName.1", "All"), ("WaitTimeSeconds", "2")])
    message = resp.xml().find("ReceiveMessageResult/Message")
    assert message is not None, resp.body
    assert message.findtext("MD5OfMessageAttributes") == "b536df4a44b21b4124ef7ed21374564e"
    attrs = {
        a.findtext("Name"): {child.tag: child.text for child in a.find("Value")}
        for a in message.findall("MessageAttribute")
    }
    assert attrs == {
        "a": {"StringValue": "hi", "DataType": "String"},
        "b": {"StringValue": "42", "DataType": "Number"},
        "c": {"BinaryValue": "AP8=", "DataType": "Binary.png"},
    }


def test_query_empty_receive(server):
    _, url = _create_queue(server)
    resp = query_post(server.url + "/", [("Action", "ReceiveMessage"), ("Version", "2012-11-05"), ("QueueUrl", url)])
    assert resp.status == 200, resp.body
    root = resp.xml()
    assert root.tag == "ReceiveMessageResponse"
    result = root.find("ReceiveMessageResult")
    assert result is not None and result.findall("Message") == []


def test_query_batch_result_entries(server):
    _, url = _create_queue(server)
    resp = query_post(
        server.url + "/",
        [
            ("Action", "DeleteMessageBatch"),
            ("QueueUrl", url),
            ("DeleteMessageBatchRequestEntry.1.Id", "x"),
            ("DeleteMessageBatchRequestEntry.1.ReceiptHandle", "garbage"),
        ],
    )
    assert resp.status == 200, resp.body
    [failed] = resp.xml().findall("DeleteMessageBatchResult/BatchResultErrorEntry")
    assert failed.findtext("Id") == "x"
    assert failed.findtext("Code") == "ReceiptHandleIsInvalid"
    assert failed.findtext("SenderFault") == "true"


def test_xml_error_shape(server):
    resp = query_post(server.url + "/", [("Action", "GetQueueUrl"), ("Version", "2012-11-05"), ("QueueName", unique_name("missing"))])
    assert resp.status == 400
    assert resp.headers.get("Content-Type", "").startswith("text/xml")
    root, error = _xml_error(resp)
    assert error["Type"] == "Sender"
    assert error["Code"] == "AWS.SimpleQueueService.NonExistentQueue"
    assert error.get("Message")
    assert root.findtext("RequestId")


def test_xml_error_on_queue_path_get(server):
    url = server.queue_url(unique_name("missing"))
    resp = query_get(url, [("Action", "GetQueueAttributes"), ("AttributeName.1", "All")])
    assert resp.status == 400
    _, error = _xml_error(resp)
    assert error["Code"] == "AWS.SimpleQueueService.NonExistentQueue"


def test_missing_action(server):
    resp = query_post(server.url + "/", [("Version", "2012-11-05"), ("QueueName", "x")])
    assert resp.status == 400
    _, error = _xml_error(resp)
    assert error["Code"] == "MissingAction"


def test_unknown_query_action(server):
    resp = query_post(server.url + "/", [("Action", "NoSuchAction"), ("Version", "2012-11-05")])
    assert resp.status == 400
    _, error = _xml_error(resp)
    assert error["Code"] == "InvalidAction"
    assert error["Type"] == "Sender"


def test_xml_request_ids_differ(server):
    params = [("Action", "ListQueues"), ("QueueNamePrefix", unique_name("none"))]
    ids = {query_post(server.url + "/", params).xml().findtext("ResponseMetadata/RequestId") for _ in range(2)}
    assert len(ids) == 2 and all(ids)
