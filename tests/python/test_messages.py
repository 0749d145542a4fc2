"""Messages: send/receive/delete, MD5 digests, attributes, visibility, delay, long polling,
batches and limits (message attributes, ReceiveMessage, visibility timeout, fair queues, long polling, MD5 digests), over both protocols."""

from __future__ import annotations

import base64
import threading
import time

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError

from holdfast_testlib import (
    EMPTY_BATCH,
    IDS_NOT_DISTINCT,
    INVALID_BATCH_ENTRY_ID,
    INVALID_PARAMETER_VALUE,
    NON_EXISTENT_QUEUE,
    TOO_MANY_ENTRIES,
    expect_error,
    md5_hex,
    md5_of_attributes,
    protocol_of,
    queue_attributes,
    receive_one,
    receive_until,
    unique_name,
)

TRACE_HEADER = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
ONE_MIB = 1_048_576

ATTRIBUTES = {
    "a": {"DataType": "String", "StringValue": "hi"},
    "b": {"DataType": "Number", "StringValue": "42"},
    "c": {"DataType": "Binary.png", "BinaryValue": b"\x00\xff"},
}


# --- the digest helper itself, against MD5 digests vectors ----------------------------


def test_md5_helper_matches_spec_vectors():
    one = {"attribName1": {"DataType": "String", "StringValue": "attribValue 1"}}
    two = {"customNumberTypeAttrib": {"DataType": "Number.float", "StringValue": "4563442423554324324264524243.32543234"}}
    three = {"binaryAttribute": {"DataType": "Binary", "BinaryValue": b"Hello binary world!"}}
    assert md5_of_attributes(one) == "19e27d4e946b072f3f58da80d94fd778"
    assert md5_of_attributes(two) == "9fe1b90bbd9965bdf77bac517c7d2495"
    assert md5_of_attributes(three) == "31a92b15d92f8db860eda32aceb656c3"
    assert md5_of_attributes({**one, **two, **three}) == "c932db14a896c663f83c260297d594ff"
    assert md5_of_attributes(ATTRIBUTES) == "b536df4a44b21b4124ef7ed21374564e"
    assert md5_of_attributes({"AWSTraceHeader": {"DataType": "String", "StringValue": TRACE_HEADER}}) == "5ae4d5d7636402d80f4eb6d213245a88"
    assert md5_hex("hello") == "5d41402abc4b2a76b9719d911017c592"
    assert md5_hex("héllo ✓") == "21b1ae5bc147bb564254200a4731e337"


# --- basic round trip -----------------------------------------------------------------------


def test_send_receive_delete(sqs, queue_url):
    sent = sqs.send_message(QueueUrl=queue_url, MessageBody="hello")
    assert sent["MD5OfMessageBody"] == "5d41402abc4b2a76b9719d911017c592"
    assert sent["MessageId"]
    assert "MD5OfMessageAttributes" not in sent
    message = receive_one(sqs, queue_url)
    assert message["MessageId"] == sent["MessageId"]
    assert message["Body"] == "hello"
    assert message["MD5OfBody"] == "5d41402abc4b2a76b9719d911017c592"
    assert message["ReceiptHandle"]
    assert "MessageAttributes" not in message and "MD5OfMessageAttributes" not in message
    assert "Attributes" not in message or message["Attributes"] == {}, "no system attributes unless requested"
    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    assert sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages", []) == []
    counts = queue_attributes(sqs, queue_url, "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")
    assert counts == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}


def test_receive_from_empty_queue(sqs, queue_url):
    resp = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
    assert resp.get("Messages", []) == []


def test_receive_several_messages(sqs, queue_url):
    bodies = {f"body-{i}" for i in range(5)}
    ids = {sqs.send_message(QueueUrl=queue_url, MessageBody=b)["MessageId"] for b in bodies}
    assert len(ids) == 5, "message ids are unique"
    messages = receive_until(sqs, queue_url, 5)
    assert {m["Body"] for m in messages} == bodies
    assert {m["MessageId"] for m in messages} == ids
    assert len({m["ReceiptHandle"] for m in messages}) == 5


BODIES = {
    "unicode": "héllo ✓ — 日本語 ёжик",
    "astral": "emoji 😀 and 𝄞 (outside the BMP)",
    "crlf": "line1\r\nline2\rline3\n",
    "xml-specials": "&<>\"' &amp; &lt;tag&gt; ]]> <![CDATA[x]]>",
    "url-specials": "a+b %20 c=d&e?f#g%zz",
    "whitespace": "  \t leading and trailing \t  ",
    "json-like": '{"key": "value", "n": [1, 2, 3], "esc": "\\u0041\\n"}',
    "private-use-and-fffd": "\ue000\ufffd\U0010fffd",
}


@pytest.mark.parametrize("body", list(BODIES.values()), ids=list(BODIES))
def test_body_round_trips_byte_exact(sqs, queue_url, body):
    sent = sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    assert sent["MD5OfMessageBody"] == md5_hex(body)
    message = receive_one(sqs, queue_url)
    assert message["Body"] == body
    assert message["MD5OfBody"] == md5_hex(body)


def test_body_of_exactly_one_mib_is_accepted(sqs, queue_url):
    body = "x" * ONE_MIB
    sent = sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    assert sent["MD5OfMessageBody"] == md5_hex(body)
    message = receive_one(sqs, queue_url)
    assert message["Body"] == body


def test_body_over_one_mib_is_rejected(sqs, queue_url):
    expect_error(INVALID_PARAMETER_VALUE, sqs.send_message, QueueUrl=queue_url, MessageBody="x" * (ONE_MIB + 1), status=400)
    # The limit is in UTF-8 bytes, not characters: 1,048,575 characters, 1,048,577 bytes.
    expect_error(INVALID_PARAMETER_VALUE, sqs.send_message, QueueUrl=queue_url, MessageBody="x" * (ONE_MIB - 1) + "é")


def test_message_attributes_count_toward_size(sqs, queue_url):
    attributes = {"a": {"DataType": "String", "StringValue": "0123456789"}}
    expect_error(INVALID_PARAMETER_VALUE, sqs.send_message, QueueUrl=queue_url, MessageBody="x" * (ONE_MIB - 10), MessageAttributes=attributes)


def test_queue_maximum_message_size(sqs):
    url = sqs.create_queue(QueueName=unique_name("small"), Attributes={"MaximumMessageSize": "1024"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="y" * 1024)
    expect_error(INVALID_PARAMETER_VALUE, sqs.send_message, QueueUrl=url, MessageBody="y" * 1025)


@pytest.mark.parametrize("bad", ["\u0000", "\u0008", "\u001f", "\ufffe", "\uffff"], ids=["nul", "bs", "us", "fffe", "ffff"])
def test_invalid_characters_are_rejected(sqs, queue_url, bad):
    expect_error(
        "InvalidMessageContents",
        sqs.send_message,
        QueueUrl=queue_url,
        MessageBody=f"before{bad}after",
        exception="InvalidMessageContents",
        status=400,
    )


# --- message attributes ---------------------------------------------------------------------


def test_message_attributes_round_trip_with_md5(sqs, queue_url):
    attributes = {
        **ATTRIBUTES,
        "str.custom": {"DataType": "String.custom-label", "StringValue": "héllo ✓ \r\n &<>"},
        "num.float": {"DataType": "Number.float", "StringValue": "3.14"},
        "neg": {"DataType": "Number", "StringValue": "-17"},
        "bin.all": {"DataType": "Binary", "BinaryValue": bytes(range(256))},
    }
    sent = sqs.send_message(QueueUrl=queue_url, MessageBody="with attributes", MessageAttributes=attributes)
    assert sent["MD5OfMessageBody"] == md5_hex("with attributes")
    assert sent["MD5OfMessageAttributes"] == md5_of_attributes(attributes)
    message = receive_one(sqs, queue_url, MessageAttributeNames=["All"])
    assert message["MessageAttributes"] == attributes
    assert message["MD5OfMessageAttributes"] == md5_of_attributes(attributes)


def test_spec_worked_example_digest(sqs, queue_url):
    sent = sqs.send_message(QueueUrl=queue_url, MessageBody="hello", MessageAttributes=ATTRIBUTES)
    assert sent["MD5OfMessageAttributes"] == "b536df4a44b21b4124ef7ed21374564e"
    message = receive_one(sqs, queue_url, MessageAttributeNames=["All"])
    assert message["MD5OfMessageAttributes"] == "b536df4a44b21b4124ef7ed21374564e"


FILTER_ATTRIBUTES = {
    "alpha.one": {"DataType": "String", "StringValue": "1"},
    "alpha.two": {"DataType": "Number", "StringValue": "2"},
    "alph": {"DataType": "String", "StringValue": "abc"},
    "beta": {"DataType": "Binary", "BinaryValue": b"\x01\x02"},
    "gamma": {"DataType": "String", "StringValue": "g"},
}


@pytest.mark.parametrize(
    "names,expected",
    [
        (["All"], set(FILTER_ATTRIBUTES)),
        ([".*"], set(FILTER_ATTRIBUTES)),
        (["*"], set(FILTER_ATTRIBUTES)),
        (["alpha.*"], {"alpha.one", "alpha.two"}),
        # The prefix is the text before ".*": "alph.*" selects "alph" and both "alpha." names.
        (["alph.*"], {"alph", "alpha.one", "alpha.two"}),
        (["beta"], {"beta"}),
        (["beta", "gamma", "missing"], {"beta", "gamma"}),
        (["alpha.*", "gamma"], {"alpha.one", "alpha.two", "gamma"}),
        (["missing"], set()),
        (None, set()),
    ],
    ids=["All", "dot-star", "star", "prefix", "prefix-not-at-a-dot", "exact", "exact-several", "prefix-and-exact", "no-match", "not-requested"],
)
def test_message_attribute_name_filters(sqs, queue_url, names, expected):
    sqs.send_message(QueueUrl=queue_url, MessageBody="filtered", MessageAttributes=FILTER_ATTRIBUTES)
    kwargs = {"MessageAttributeNames": names} if names is not None else {}
    message = receive_one(sqs, queue_url, **kwargs)
    returned = message.get("MessageAttributes", {})
    assert set(returned) == expected
    for name in expected:
        assert returned[name] == FILTER_ATTRIBUTES[name]
    if expected:
        # The digest covers exactly the returned subset (MD5 digests).
        assert message["MD5OfMessageAttributes"] == md5_of_attributes({n: FILTER_ATTRIBUTES[n] for n in expected})
    else:
        assert "MD5OfMessageAttributes" not in message


def test_too_many_message_attributes(sqs, queue_url):
    attributes = {f"attr{i}": {"DataType": "String", "StringValue": str(i)} for i in range(11)}
    expect_error(INVALID_PARAMETER_VALUE, sqs.send_message, QueueUrl=queue_url, MessageBody="x", MessageAttributes=attributes)
    ten = dict(list(attributes.items())[:10])
    sent = sqs.send_message(QueueUrl=queue_url, MessageBody="x", MessageAttributes=ten)
    assert sent["MD5OfMessageAttributes"] == md5_of_attributes(ten)


@pytest.mark.parametrize(
    "attributes",
    [
        {"AWS.reserved": {"DataType": "String", "StringValue": "x"}},
        {"amazon.reserved": {"DataType": "String", "StringValue": "x"}},
        {".leading": {"DataType": "String", "StringValue": "x"}},
        {"double..dot": {"DataType": "String", "StringValue": "x"}},
        {"bad name": {"DataType": "String", "StringValue": "x"}},
        {"t": {"DataType": "Integer", "StringValue": "1"}},
        {"n": {"DataType": "Number", "StringValue": "not-a-number"}},
        {"s": {"DataType": "String", "StringValue": ""}},
    ],
    ids=["aws-prefix", "amazon-prefix", "leading-dot", "double-dot", "space", "bad-type", "bad-number", "empty-string"],
)
def test_invalid_message_attributes(sqs, queue_url, attributes):
    expect_error(INVALID_PARAMETER_VALUE, sqs.send_message, QueueUrl=queue_url, MessageBody="x", MessageAttributes=attributes)


# --- system attributes ----------------------------------------------------------------------


def _check_system_attributes(attrs, sent_at_ms, received_at_ms):
    slack = 120_000
    sent = int(attrs["SentTimestamp"])
    first = int(attrs["ApproximateFirstReceiveTimestamp"])
    assert abs(sent - sent_at_ms) < slack, "SentTimestamp is epoch milliseconds"
    assert sent <= first and abs(first - received_at_ms) < slack
    assert attrs["ApproximateReceiveCount"] == "1"
    assert attrs["SenderId"]


def test_system_attributes_via_attribute_names(sqs, queue_url):
    sent_at = int(time.time() * 1000)
    sqs.send_message(QueueUrl=queue_url, MessageBody="sys")
    message = receive_one(sqs, queue_url, AttributeNames=["All"], VisibilityTimeout=0)
    _check_system_attributes(message["Attributes"], sent_at, int(time.time() * 1000))
    assert "MessageGroupId" not in message["Attributes"]
    assert "AWSTraceHeader" not in message["Attributes"]
    # Only what was asked for comes back.
    message = receive_one(sqs, queue_url, AttributeNames=["SentTimestamp", "ApproximateReceiveCount"], VisibilityTimeout=0)
    assert set(message["Attributes"]) == {"SentTimestamp", "ApproximateReceiveCount"}
    assert message["Attributes"]["ApproximateReceiveCount"] == "2"


def test_system_attributes_via_message_system_attribute_names(json_client):
    sqs = json_client
    url = sqs.create_queue(QueueName=unique_name("msan"))["QueueUrl"]
    sent_at = int(time.time() * 1000)
    sqs.send_message(QueueUrl=url, MessageBody="sys")
    message = receive_one(sqs, url, MessageSystemAttributeNames=["All"], VisibilityTimeout=0)
    _check_system_attributes(message["Attributes"], sent_at, int(time.time() * 1000))
    message = receive_one(sqs, url, MessageSystemAttributeNames=["SenderId", "ApproximateFirstReceiveTimestamp"], VisibilityTimeout=0)
    assert set(message["Attributes"]) == {"SenderId", "ApproximateFirstReceiveTimestamp"}
    # AttributeNames and MessageSystemAttributeNames are unioned (ReceiveMessage).
    message = receive_one(sqs, url, AttributeNames=["SentTimestamp"], MessageSystemAttributeNames=["ApproximateReceiveCount"])
    assert set(message["Attributes"]) == {"SentTimestamp", "ApproximateReceiveCount"}
    assert message["Attributes"]["ApproximateReceiveCount"] == "3"


def test_aws_trace_header(sqs, queue_url):
    system = {"AWSTraceHeader": {"DataType": "String", "StringValue": TRACE_HEADER}}
    sent = sqs.send_message(QueueUrl=queue_url, MessageBody="traced", MessageSystemAttributes=system)
    assert sent["MD5OfMessageSystemAttributes"] == "5ae4d5d7636402d80f4eb6d213245a88"
    assert "MD5OfMessageAttributes" not in sent
    message = receive_one(sqs, queue_url, AttributeNames=["AWSTraceHeader"])
    assert message["Attributes"] == {"AWSTraceHeader": TRACE_HEADER}
    assert "MessageAttributes" not in message, "system attributes are not message attributes"


def test_untraced_message_has_no_system_digest(sqs, queue_url):
    assert "MD5OfMessageSystemAttributes" not in sqs.send_message(QueueUrl=queue_url, MessageBody="plain")


def test_message_group_id_on_standard_queue(sqs, queue_url):
    # Fair queues (fair queues): accepted on a standard queue and returned as a system attribute.
    sent = sqs.send_message(QueueUrl=queue_url, MessageBody="tenant message", MessageGroupId="tenant-a")
    assert "SequenceNumber" not in sent
    sqs.send_message(QueueUrl=queue_url, MessageBody="no tenant")
    messages = receive_until(sqs, queue_url, 2, AttributeNames=["All"])
    by_body = {m["Body"]: m for m in messages}
    assert set(by_body) == {"tenant message", "no tenant"}
    assert by_body["tenant message"]["Attributes"]["MessageGroupId"] == "tenant-a"
    assert "MessageGroupId" not in by_body["no tenant"]["Attributes"]
    for m in messages:
        sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
    message = receive_until(sqs, queue_url, 2, AttributeNames=["MessageGroupId"])
    grouped = [m for m in message if m["Body"] == "tenant message"]
    assert grouped and grouped[0]["Attributes"] == {"MessageGroupId": "tenant-a"}


def test_message_group_id_in_batch_on_standard_queue(sqs, queue_url):
    resp = sqs.send_message_batch(
        QueueUrl=queue_url,
        Entries=[{"Id": "g1", "MessageBody": "one", "MessageGroupId": "tenant-b"}, {"Id": "g2", "MessageBody": "two"}],
    )
    assert sorted(e["Id"] for e in resp["Successful"]) == ["g1", "g2"]
    messages = {m["Body"]: m for m in receive_until(sqs, queue_url, 2, AttributeNames=["MessageGroupId"])}
    assert messages["one"]["Attributes"] == {"MessageGroupId": "tenant-b"}
    assert "MessageGroupId" not in messages["two"].get("Attributes", {})


# --- visibility -----------------------------------------------------------------------------


def test_visibility_timeout_redelivers_with_new_receipt_handle(sqs, queue_url):
    sqs.send_message(QueueUrl=queue_url, MessageBody="redeliver")
    first = receive_one(sqs, queue_url, VisibilityTimeout=1, AttributeNames=["ApproximateReceiveCount"])
    assert first["Attributes"]["ApproximateReceiveCount"] == "1"
    # Hidden right after the receive.
    assert sqs.receive_message(QueueUrl=queue_url).get("Messages", []) == []
    second = receive_one(sqs, queue_url, timeout=15, VisibilityTimeout=60, AttributeNames=["ApproximateReceiveCount"])
    assert second["MessageId"] == first["MessageId"]
    assert second["Attributes"]["ApproximateReceiveCount"] == "2"
    assert second["ReceiptHandle"] != first["ReceiptHandle"]

    # The stale handle's delete succeeds but must not delete the redelivered message (visibility timeout).
    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=first["ReceiptHandle"])
    assert queue_attributes(sqs, queue_url, "ApproximateNumberOfMessagesNotVisible") == {"ApproximateNumberOfMessagesNotVisible": "1"}
    # The current handle still works.
    sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=second["ReceiptHandle"], VisibilityTimeout=0)
    third = receive_one(sqs, queue_url, AttributeNames=["ApproximateReceiveCount"])
    assert third["MessageId"] == first["MessageId"]
    assert third["Attributes"]["ApproximateReceiveCount"] == "3"
    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=third["ReceiptHandle"])
    counts = queue_attributes(sqs, queue_url, "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")
    assert counts == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}


def test_queue_visibility_timeout_hides_message(sqs, queue_url):
    sqs.send_message(QueueUrl=queue_url, MessageBody="hidden")
    receive_one(sqs, queue_url)  # queue default: 30 s
    time.sleep(1.5)
    assert sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages", []) == []
    assert queue_attributes(sqs, queue_url, "ApproximateNumberOfMessagesNotVisible")["ApproximateNumberOfMessagesNotVisible"] == "1"


def test_change_visibility_to_zero_makes_message_visible(sqs, queue_url):
    sqs.send_message(QueueUrl=queue_url, MessageBody="make visible")
    first = receive_one(sqs, queue_url, VisibilityTimeout=600)
    sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=0)
    again = receive_one(sqs, queue_url, timeout=5, AttributeNames=["ApproximateReceiveCount"])
    assert again["MessageId"] == first["MessageId"]
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"


def test_change_visibility_extends_timeout(sqs, queue_url):
    sqs.send_message(QueueUrl=queue_url, MessageBody="extend")
    first = receive_one(sqs, queue_url, VisibilityTimeout=1)
    sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=600)
    time.sleep(2)
    assert sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages", []) == []


def test_invalid_receipt_handle(sqs, queue_url):
    expect_error(
        "ReceiptHandleIsInvalid",
        sqs.delete_message,
        QueueUrl=queue_url,
        ReceiptHandle="not-a-receipt-handle",
        exception="ReceiptHandleIsInvalid",
        status=404,
    )
    expect_error(
        "ReceiptHandleIsInvalid",
        sqs.change_message_visibility,
        QueueUrl=queue_url,
        ReceiptHandle="not-a-receipt-handle",
        VisibilityTimeout=10,
        exception="ReceiptHandleIsInvalid",
    )


def test_receipt_handle_of_another_queue_does_not_delete(sqs, queue_url):
    other = sqs.create_queue(QueueName=unique_name("other"))["QueueUrl"]
    sqs.send_message(QueueUrl=other, MessageBody="elsewhere")
    message = receive_one(sqs, other, VisibilityTimeout=600)
    try:
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    except ClientError as err:
        assert err.response["Error"]["Code"] == "ReceiptHandleIsInvalid"
    counts = queue_attributes(sqs, other, "ApproximateNumberOfMessagesNotVisible")
    assert counts == {"ApproximateNumberOfMessagesNotVisible": "1"}


@pytest.mark.parametrize("kwargs", [{"VisibilityTimeout": 43201}, {"VisibilityTimeout": -1}], ids=["over-12h", "negative"])
def test_visibility_timeout_out_of_range(sqs, queue_url, kwargs):
    sqs.send_message(QueueUrl=queue_url, MessageBody="vt")
    expect_error(INVALID_PARAMETER_VALUE, sqs.receive_message, QueueUrl=queue_url, **kwargs)
    message = receive_one(sqs, queue_url)
    expect_error(INVALID_PARAMETER_VALUE, sqs.change_message_visibility, QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], **kwargs)


# --- delay ----------------------------------------------------------------------------------


def test_message_delay(sqs, queue_url):
    start = time.monotonic()
    sqs.send_message(QueueUrl=queue_url, MessageBody="later", DelaySeconds=2)
    assert sqs.receive_message(QueueUrl=queue_url).get("Messages", []) == []
    assert queue_attributes(sqs, queue_url, "ApproximateNumberOfMessagesDelayed") == {"ApproximateNumberOfMessagesDelayed": "1"}
    message = receive_one(sqs, queue_url, timeout=15)
    assert message["Body"] == "later"
    assert time.monotonic() - start >= 1.0, "a delayed message must not be delivered early"


def test_queue_delay_applies_to_messages(sqs):
    url = sqs.create_queue(QueueName=unique_name("qdelay"), Attributes={"DelaySeconds": "2"})["QueueUrl"]
    start = time.monotonic()
    sqs.send_message(QueueUrl=url, MessageBody="queue-delayed")
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []
    message = receive_one(sqs, url, timeout=15)
    assert message["Body"] == "queue-delayed"
    assert time.monotonic() - start >= 1.0
    # A per-message DelaySeconds of 0 overrides the queue's delay.
    sqs.send_message(QueueUrl=url, MessageBody="now", DelaySeconds=0)
    assert receive_one(sqs, url, timeout=5)["Body"] == "now"


def test_delay_out_of_range(sqs, queue_url):
    expect_error(INVALID_PARAMETER_VALUE, sqs.send_message, QueueUrl=queue_url, MessageBody="x", DelaySeconds=901)


# --- long polling ---------------------------------------------------------------------------


def _second_client(sqs, query_data_path):
    """A separate client (own connection pool) speaking the same protocol, for another thread."""
    core = botocore.session.Session()
    if protocol_of(sqs) == "query":
        core.get_component("data_loader").search_paths.insert(0, str(query_data_path))
    client = boto3.session.Session(botocore_session=core).client(
        "sqs",
        endpoint_url=sqs.meta.endpoint_url,
        region_name=sqs.meta.region_name,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    assert protocol_of(client) == protocol_of(sqs)
    return client


def test_long_poll_returns_when_a_message_arrives(sqs, queue_url, query_data_path):
    sender = _second_client(sqs, query_data_path)
    errors = []

    def send_later():
        try:
            time.sleep(1)
            sender.send_message(QueueUrl=queue_url, MessageBody="wake up")
        except Exception as err:  # reported by the main thread
            errors.append(err)

    thread = threading.Thread(target=send_later)
    start = time.monotonic()
    thread.start()
    resp = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=5)
    elapsed = time.monotonic() - start
    thread.join()
    assert not errors, errors
    assert [m["Body"] for m in resp.get("Messages", [])] == ["wake up"]
    assert elapsed < 4.5, f"long poll returned after {elapsed:.1f}s instead of when the message arrived"


def test_long_poll_times_out_empty(sqs, queue_url):
    start = time.monotonic()
    resp = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=2)
    elapsed = time.monotonic() - start
    assert resp.get("Messages", []) == []
    assert elapsed >= 1.5, f"long poll returned after {elapsed:.2f}s, before WaitTimeSeconds"


def test_queue_receive_wait_time_is_the_default_wait(sqs):
    url = sqs.create_queue(QueueName=unique_name("lp"), Attributes={"ReceiveMessageWaitTimeSeconds": "4"})["QueueUrl"]
    start = time.monotonic()
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []
    assert time.monotonic() - start >= 3.0
    # An explicit WaitTimeSeconds=0 overrides it: short poll.
    start = time.monotonic()
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages", []) == []
    assert time.monotonic() - start < 3.0


@pytest.mark.parametrize(
    "kwargs",
    [{"MaxNumberOfMessages": 11}, {"MaxNumberOfMessages": 0}, {"WaitTimeSeconds": 21}, {"WaitTimeSeconds": -1}],
    ids=["max-11", "max-0", "wait-21", "wait-negative"],
)
def test_receive_parameters_out_of_range(sqs, queue_url, kwargs):
    expect_error(INVALID_PARAMETER_VALUE, sqs.receive_message, QueueUrl=queue_url, status=400, **kwargs)


# --- batches --------------------------------------------------------------------------------


def test_send_message_batch(sqs, queue_url):
    attributes = {"n": {"DataType": "Number", "StringValue": "1"}}
    system = {"AWSTraceHeader": {"DataType": "String", "StringValue": TRACE_HEADER}}
    entries = [
        {"Id": "e1", "MessageBody": "b1", "MessageAttributes": attributes},
        {"Id": "e2", "MessageBody": "b2 ✓\r\n"},
        {"Id": "e-3_x", "MessageBody": "b3", "MessageSystemAttributes": system},
        {"Id": "delayed", "MessageBody": "b4", "DelaySeconds": 600},
    ]
    resp = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
    assert resp.get("Failed", []) == []
    results = {e["Id"]: e for e in resp["Successful"]}
    assert set(results) == {"e1", "e2", "e-3_x", "delayed"}
    assert len({e["MessageId"] for e in results.values()}) == 4
    for entry in entries:
        assert results[entry["Id"]]["MD5OfMessageBody"] == md5_hex(entry["MessageBody"])
    assert results["e1"]["MD5OfMessageAttributes"] == md5_of_attributes(attributes)
    assert "MD5OfMessageAttributes" not in results["e2"]
    assert results["e-3_x"]["MD5OfMessageSystemAttributes"] == "5ae4d5d7636402d80f4eb6d213245a88"

    messages = {m["Body"]: m for m in receive_until(sqs, queue_url, 3, MessageAttributeNames=["All"], AttributeNames=["AWSTraceHeader"])}
    assert set(messages) == {"b1", "b2 ✓\r\n", "b3"}, "the delayed entry stays delayed"
    assert messages["b1"]["MessageId"] == results["e1"]["MessageId"]
    assert messages["b1"]["MessageAttributes"] == attributes
    assert messages["b3"]["Attributes"] == {"AWSTraceHeader": TRACE_HEADER}
    assert queue_attributes(sqs, queue_url, "ApproximateNumberOfMessagesDelayed") == {"ApproximateNumberOfMessagesDelayed": "1"}


def test_send_message_batch_partial_failure(sqs, queue_url):
    resp = sqs.send_message_batch(
        QueueUrl=queue_url,
        Entries=[
            {"Id": "good", "MessageBody": "fine"},
            {"Id": "bad", "MessageBody": "bad\u0000body"},
        ],
    )
    assert [e["Id"] for e in resp["Successful"]] == ["good"]
    assert len(resp["Failed"]) == 1
    failed = resp["Failed"][0]
    assert failed["Id"] == "bad"
    assert failed["SenderFault"] is True
    assert failed["Code"] in {"InvalidMessageContents", "InvalidParameterValue"}
    assert [m["Body"] for m in receive_until(sqs, queue_url, 1)] == ["fine"]


def test_delete_message_batch(sqs, queue_url):
    for i in range(3):
        sqs.send_message(QueueUrl=queue_url, MessageBody=f"del-{i}")
    messages = receive_until(sqs, queue_url, 3, VisibilityTimeout=600)
    assert len(messages) == 3
    entries = [{"Id": f"d{i}", "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
    entries.append({"Id": "bogus", "ReceiptHandle": "not-a-receipt-handle"})
    resp = sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)
    assert sorted(e["Id"] for e in resp["Successful"]) == ["d0", "d1", "d2"]
    assert len(resp["Failed"]) == 1
    failed = resp["Failed"][0]
    assert failed["Id"] == "bogus"
    assert failed["Code"] == "ReceiptHandleIsInvalid"
    assert failed["SenderFault"] is True
    counts = queue_attributes(sqs, queue_url, "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")
    assert counts == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}


def test_change_message_visibility_batch(sqs, queue_url):
    for i in range(2):
        sqs.send_message(QueueUrl=queue_url, MessageBody=f"cv-{i}")
    messages = receive_until(sqs, queue_url, 2, VisibilityTimeout=600)
    assert len(messages) == 2
    entries = [{"Id": f"c{i}", "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0} for i, m in enumerate(messages)]
    entries.append({"Id": "bogus", "ReceiptHandle": "not-a-receipt-handle", "VisibilityTimeout": 0})
    resp = sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)
    assert sorted(e["Id"] for e in resp["Successful"]) == ["c0", "c1"]
    assert [(e["Id"], e["Code"], e["SenderFault"]) for e in resp["Failed"]] == [("bogus", "ReceiptHandleIsInvalid", True)]
    again = receive_until(sqs, queue_url, 2, timeout=5, AttributeNames=["ApproximateReceiveCount"])
    assert {m["MessageId"] for m in again} == {m["MessageId"] for m in messages}
    assert all(m["Attributes"]["ApproximateReceiveCount"] == "2" for m in again)


def _batch_call(sqs, operation, queue_url, entries):
    if operation == "send":
        return sqs.send_message_batch(QueueUrl=queue_url, Entries=[{"Id": e, "MessageBody": "x"} for e in entries])
    if operation == "delete":
        return sqs.delete_message_batch(QueueUrl=queue_url, Entries=[{"Id": e, "ReceiptHandle": "rh"} for e in entries])
    return sqs.change_message_visibility_batch(
        QueueUrl=queue_url, Entries=[{"Id": e, "ReceiptHandle": "rh", "VisibilityTimeout": 0} for e in entries]
    )


BATCH_ERRORS = {
    "empty": ([], EMPTY_BATCH, "EmptyBatchRequest"),
    "too-many": ([f"id{i}" for i in range(11)], TOO_MANY_ENTRIES, "TooManyEntriesInBatchRequest"),
    "not-distinct": (["same", "same"], IDS_NOT_DISTINCT, "BatchEntryIdsNotDistinct"),
    "invalid-id": (["bad id!"], INVALID_BATCH_ENTRY_ID, "InvalidBatchEntryId"),
    "id-too-long": (["x" * 81], INVALID_BATCH_ENTRY_ID, "InvalidBatchEntryId"),
}


@pytest.mark.parametrize("operation", ["send", "delete", "change-visibility"])
@pytest.mark.parametrize("case", list(BATCH_ERRORS))
def test_batch_request_errors(sqs, queue_url, operation, case):
    ids, code, exception = BATCH_ERRORS[case]
    expect_error(code, _batch_call, sqs, operation, queue_url, ids, exception=exception, status=400)
    if operation == "send":
        assert queue_attributes(sqs, queue_url, "ApproximateNumberOfMessages") == {"ApproximateNumberOfMessages": "0"}


def test_batch_of_ten_is_accepted(sqs, queue_url):
    resp = sqs.send_message_batch(QueueUrl=queue_url, Entries=[{"Id": f"id{i}", "MessageBody": f"m{i}"} for i in range(10)])
    assert len(resp["Successful"]) == 10
    assert resp.get("Failed", []) == []


def test_batch_to_missing_queue(sqs, server):
    url = server.queue_url(unique_name("missing"))
    expect_error(NON_EXISTENT_QUEUE, sqs.send_message_batch, QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "x"}], exception="QueueDoesNotExist")


def test_binary_attribute_is_base64_on_the_wire_not_double_encoded(sqs, queue_url):
    raw = base64.b64decode("AP8=")
    attributes = {"b": {"DataType": "Binary", "BinaryValue": raw}}
    sqs.send_message(QueueUrl=queue_url, MessageBody="bin", MessageAttributes=attributes)
    message = receive_one(sqs, queue_url, MessageAttributeNames=["b"])
    assert message["MessageAttributes"]["b"]["BinaryValue"] == b"\x00\xff"
