"""FIFO queues: creation rules and attributes, deduplication, sequence numbers, per-group order,
the group lock and ReceiveRequestAttemptId (SetQueueAttributes, CreateQueue, FIFO queues), over both protocols."""

from __future__ import annotations

import hashlib
import time

import pytest

from holdfast_testlib import (
    INVALID_ATTRIBUTE_NAME,
    INVALID_ATTRIBUTE_VALUE,
    INVALID_PARAMETER_VALUE,
    MISSING_PARAMETER,
    expect_error,
    md5_hex,
    message_count,
    queue_attributes,
    receive_until,
    unique_name,
)

FIFO_DEFAULTS = {
    "FifoQueue": "true",
    "ContentBasedDeduplication": "false",
    "DeduplicationScope": "queue",
    "FifoThroughputLimit": "perQueue",
}


def _send(sqs, url, body, group="g", dedup=None, **kwargs):
    kwargs["MessageGroupId"] = group
    kwargs["MessageDeduplicationId"] = dedup if dedup is not None else f"dedup-{body}"
    return sqs.send_message(QueueUrl=url, MessageBody=body, **kwargs)


def _receive(sqs, url, max_messages=10, **kwargs):
    kwargs.setdefault("AttributeNames", ["All"])
    return sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=max_messages, **kwargs).get("Messages", [])


def _bodies(messages):
    return [m["Body"] for m in messages]


def _group(message):
    return message["Attributes"]["MessageGroupId"]


def _assert_sequence_number(value):
    assert isinstance(value, str) and len(value) == 20 and value.isdigit(), f"SequenceNumber {value!r} is not a 20-digit decimal"


# --- creating FIFO queues -------------------------------------------------------------------


def test_create_fifo_queue_has_fifo_defaults(sqs, make_queue):
    url = make_queue("fifo", fifo=True)
    assert url.endswith(".fifo")
    attrs = queue_attributes(sqs, url)
    for name, value in FIFO_DEFAULTS.items():
        assert attrs.get(name) == value, f"{name}: {attrs.get(name)!r}"
    assert attrs["QueueArn"].endswith(".fifo")
    assert queue_attributes(sqs, url, "FifoQueue", "DeduplicationScope") == {"FifoQueue": "true", "DeduplicationScope": "queue"}


def test_standard_queue_has_no_fifo_attributes(sqs, queue_url):
    attrs = queue_attributes(sqs, queue_url)
    for name in ("ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit"):
        assert name not in attrs
    assert attrs.get("FifoQueue", "false") == "false"


@pytest.mark.parametrize("attributes", [{}, {"FifoQueue": "false"}], ids=["no-attribute", "fifo-false"])
def test_fifo_name_needs_fifo_queue_attribute(sqs, attributes):
    expect_error(INVALID_PARAMETER_VALUE, sqs.create_queue, QueueName=unique_name("nofifo") + ".fifo", Attributes=attributes, status=400)


@pytest.mark.parametrize(
    "attributes,message",
    [
        ({"FifoQueue": "false"}, "Unknown Attribute FifoQueue."),
        ({"ContentBasedDeduplication": "false"}, "Unknown Attribute ContentBasedDeduplication."),
        ({"DeduplicationScope": "queue"}, "You can specify the DeduplicationScope only when FifoQueue is set to true."),
        ({"FifoThroughputLimit": "perQueue"}, "You can specify the FifoThroughputLimit only when FifoQueue is set to true."),
    ],
    ids=["FifoQueue-false", "ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit"],
)
def test_a_standard_queue_refuses_fifo_attributes_even_false(sqs, attributes, message):
    # As AWS answers: a standard queue has no FIFO attributes at all, not even FifoQueue=false.
    error = expect_error(INVALID_ATTRIBUTE_NAME, sqs.create_queue, QueueName=unique_name("plain"), Attributes=attributes, status=400)
    assert error.response["Error"]["Message"] == message


def test_fifo_queue_attribute_needs_fifo_name(sqs):
    expect_error(INVALID_PARAMETER_VALUE, sqs.create_queue, QueueName=unique_name("plain"), Attributes={"FifoQueue": "true"}, status=400)


def test_fifo_queue_cannot_be_set_later(sqs, queue_url, make_queue):
    expect_error(INVALID_ATTRIBUTE_NAME, sqs.set_queue_attributes, QueueUrl=queue_url, Attributes={"FifoQueue": "true"}, status=400)
    fifo = make_queue("fifo", fifo=True)
    # As AWS answers: FifoQueue=true on a FIFO queue changes nothing and is accepted; false is a
    # change of type, refused.
    sqs.set_queue_attributes(QueueUrl=fifo, Attributes={"FifoQueue": "true"})
    error = expect_error(INVALID_ATTRIBUTE_VALUE, sqs.set_queue_attributes, QueueUrl=fifo, Attributes={"FifoQueue": "false"})
    assert error.response["Error"]["Message"] == "Invalid value for the parameter FifoQueue. Reason: Modifying queue type is not supported."
    assert queue_attributes(sqs, queue_url).get("FifoQueue", "false") == "false"
    assert queue_attributes(sqs, fifo, "FifoQueue") == {"FifoQueue": "true"}


FIFO_ONLY = {
    "ContentBasedDeduplication": "true",
    "DeduplicationScope": "queue",
    "FifoThroughputLimit": "perQueue",
}


@pytest.mark.parametrize("name", list(FIFO_ONLY))
def test_fifo_attributes_on_standard_queue(sqs, queue_url, name):
    attributes = {name: FIFO_ONLY[name]}
    expect_error(INVALID_ATTRIBUTE_NAME, sqs.create_queue, QueueName=unique_name("std"), Attributes=attributes, status=400)
    expect_error(INVALID_ATTRIBUTE_NAME, sqs.set_queue_attributes, QueueUrl=queue_url, Attributes=attributes, status=400)


def test_fifo_attributes_can_be_set_at_creation_and_later(sqs, make_queue):
    high_throughput = {
        "ContentBasedDeduplication": "true",
        "DeduplicationScope": "messageGroup",
        "FifoThroughputLimit": "perMessageGroupId",
    }
    url = make_queue("ht", high_throughput, fifo=True)
    attrs = queue_attributes(sqs, url, *high_throughput)
    assert attrs == high_throughput
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"FifoThroughputLimit": "perQueue"})
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"ContentBasedDeduplication": "false", "DeduplicationScope": "queue"})
    assert queue_attributes(sqs, url, *high_throughput) == {
        "ContentBasedDeduplication": "false",
        "DeduplicationScope": "queue",
        "FifoThroughputLimit": "perQueue",
    }


def test_per_message_group_id_throughput_needs_message_group_scope(sqs, make_queue):
    name = unique_name("ht") + ".fifo"
    expect_error(
        INVALID_ATTRIBUTE_VALUE,
        sqs.create_queue,
        QueueName=name,
        Attributes={"FifoQueue": "true", "FifoThroughputLimit": "perMessageGroupId"},
        status=400,
    )
    expect_error(
        INVALID_ATTRIBUTE_VALUE,
        sqs.create_queue,
        QueueName=name,
        Attributes={"FifoQueue": "true", "FifoThroughputLimit": "perMessageGroupId", "DeduplicationScope": "queue"},
    )
    url = make_queue("ht", fifo=True)
    expect_error(INVALID_ATTRIBUTE_VALUE, sqs.set_queue_attributes, QueueUrl=url, Attributes={"FifoThroughputLimit": "perMessageGroupId"})
    assert queue_attributes(sqs, url, "FifoThroughputLimit") == {"FifoThroughputLimit": "perQueue"}
    # Both at once is fine; then the scope cannot go back to `queue` alone.
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"DeduplicationScope": "messageGroup", "FifoThroughputLimit": "perMessageGroupId"})
    expect_error(INVALID_ATTRIBUTE_VALUE, sqs.set_queue_attributes, QueueUrl=url, Attributes={"DeduplicationScope": "queue"})
    assert queue_attributes(sqs, url, "DeduplicationScope", "FifoThroughputLimit") == {
        "DeduplicationScope": "messageGroup",
        "FifoThroughputLimit": "perMessageGroupId",
    }


def test_create_existing_fifo_queue(sqs, make_queue):
    url = make_queue("again", {"ContentBasedDeduplication": "false"}, fifo=True)
    name = url.rsplit("/", 1)[1]
    assert sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "true"})["QueueUrl"] == url
    same = {"FifoQueue": "true", "DeduplicationScope": "queue", "FifoThroughputLimit": "perQueue"}
    assert sqs.create_queue(QueueName=name, Attributes=same)["QueueUrl"] == url
    expect_error(
        "QueueAlreadyExists",
        sqs.create_queue,
        QueueName=name,
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
        status=400,
    )


def test_queue_delay_applies_to_fifo_messages(sqs, make_queue):
    url = make_queue("delay", {"DelaySeconds": "2"}, fifo=True)
    start = time.monotonic()
    _send(sqs, url, "later")
    assert _receive(sqs, url) == []
    assert queue_attributes(sqs, url, "ApproximateNumberOfMessagesDelayed") == {"ApproximateNumberOfMessagesDelayed": "1"}
    messages = receive_until(sqs, url, 1, timeout=10)
    assert _bodies(messages) == ["later"]
    assert time.monotonic() - start >= 1.5, "a delayed FIFO message must not be delivered early"


@pytest.mark.parametrize(
    "attributes",
    [
        {"DeduplicationScope": "group"},
        {"FifoThroughputLimit": "perGroup"},
        {"ContentBasedDeduplication": "maybe"},
    ],
    ids=["scope", "throughput", "content-based"],
)
def test_invalid_fifo_attribute_values(sqs, attributes):
    expect_error(
        INVALID_ATTRIBUTE_VALUE,
        sqs.create_queue,
        QueueName=unique_name("bad") + ".fifo",
        Attributes={"FifoQueue": "true", **attributes},
        status=400,
    )


# --- sending --------------------------------------------------------------------------------


def test_send_requires_message_group_id(sqs, make_queue):
    url = make_queue("fifo", fifo=True)
    expect_error(MISSING_PARAMETER, sqs.send_message, QueueUrl=url, MessageBody="x", MessageDeduplicationId="d", status=400)
    cbd = make_queue("cbd", {"ContentBasedDeduplication": "true"}, fifo=True)
    expect_error(MISSING_PARAMETER, sqs.send_message, QueueUrl=cbd, MessageBody="x", status=400)
    assert message_count(sqs, url) == 0 and message_count(sqs, cbd) == 0


def test_send_requires_deduplication_id_without_content_based_deduplication(sqs, make_queue):
    url = make_queue("fifo", fifo=True)
    expect_error(INVALID_PARAMETER_VALUE, sqs.send_message, QueueUrl=url, MessageBody="x", MessageGroupId="g", status=400)
    assert message_count(sqs, url) == 0


def test_per_message_delay_is_rejected(sqs, make_queue):
    url = make_queue("fifo", fifo=True)
    expect_error(INVALID_PARAMETER_VALUE, _send, sqs, url, "delayed", DelaySeconds=5, status=400)
    # Zero is the absence of a delay and is accepted.
    _send(sqs, url, "now", DelaySeconds=0)
    assert _bodies(_receive(sqs, url)) == ["now"]


@pytest.mark.parametrize("member", ["MessageGroupId", "MessageDeduplicationId"])
def test_fifo_ids_over_128_characters_are_rejected(sqs, make_queue, member):
    url = make_queue("fifo", fifo=True)
    kwargs = {"MessageGroupId": "g", "MessageDeduplicationId": "d", member: "x" * 129}
    expect_error(INVALID_PARAMETER_VALUE, sqs.send_message, QueueUrl=url, MessageBody="x", **kwargs)
    kwargs[member] = "!#$%&()*+,-./:;<=>?@[]^_`{|}~" + "y" * 99  # 128 characters: punctuation is allowed
    sqs.send_message(QueueUrl=url, MessageBody="x", **kwargs)


@pytest.mark.parametrize(
    "missing,message",
    [
        ("MessageGroupId", "The request must contain the parameter MessageGroupId."),
        (
            "MessageDeduplicationId",
            "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly",
        ),
    ],
)
def test_a_batch_entry_without_its_fifo_ids_fails_the_whole_batch(sqs, make_queue, missing, message):
    # As AWS answers: the request fails, not just the entry, and nothing is enqueued.
    url = make_queue("fifo", fifo=True)
    bad = {"Id": "bad", "MessageBody": "bad", "MessageGroupId": "g", "MessageDeduplicationId": "d2"}
    del bad[missing]
    entries = [{"Id": "ok", "MessageBody": "fine", "MessageGroupId": "g", "MessageDeduplicationId": "d1"}, bad]
    error = expect_error(INVALID_PARAMETER_VALUE, sqs.send_message_batch, QueueUrl=url, Entries=entries, status=400)
    assert error.response["Error"]["Message"] == message
    assert _receive(sqs, url) == []


# --- deduplication --------------------------------------------------------------------------


def test_duplicate_is_accepted_with_the_first_message_id(sqs, make_queue):
    url = make_queue("dedup", fifo=True)
    first = _send(sqs, url, "first", dedup="same")
    second = _send(sqs, url, "second", dedup="same")
    assert second["MessageId"] == first["MessageId"]
    assert second["MD5OfMessageBody"] == md5_hex("second"), "the digest is of the body sent"
    other = _send(sqs, url, "other", dedup="different")
    assert other["MessageId"] != first["MessageId"]
    messages = _receive(sqs, url)
    assert _bodies(messages) == ["first", "other"]
    assert messages[0]["MessageId"] == first["MessageId"]
    assert _receive(sqs, url) == []


def test_deduplication_id_is_remembered_after_delete(sqs, make_queue):
    url = make_queue("dedup", fifo=True)
    first = _send(sqs, url, "once", dedup="kept")
    [message] = _receive(sqs, url)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    again = _send(sqs, url, "once", dedup="kept")
    assert again["MessageId"] == first["MessageId"]
    counts = queue_attributes(sqs, url, "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")
    assert counts == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}
    assert _receive(sqs, url) == []


def test_duplicates_within_one_batch(sqs, make_queue):
    url = make_queue("dedup", fifo=True)
    resp = sqs.send_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "a", "MessageBody": "a", "MessageGroupId": "g", "MessageDeduplicationId": "same"},
            {"Id": "b", "MessageBody": "b", "MessageGroupId": "g", "MessageDeduplicationId": "same"},
            {"Id": "c", "MessageBody": "c", "MessageGroupId": "g", "MessageDeduplicationId": "other"},
        ],
    )
    assert resp.get("Failed", []) == []
    ids = {e["Id"]: e["MessageId"] for e in resp["Successful"]}
    assert ids["b"] == ids["a"]
    assert ids["c"] != ids["a"]
    assert _bodies(_receive(sqs, url)) == ["a", "c"]


def test_content_based_deduplication(sqs, make_queue):
    url = make_queue("cbd", {"ContentBasedDeduplication": "true"}, fifo=True)
    first = sqs.send_message(QueueUrl=url, MessageBody="same body", MessageGroupId="g")
    # Only the body counts: other attributes do not make a different message.
    attrs = {"a": {"DataType": "String", "StringValue": "1"}}
    again = sqs.send_message(QueueUrl=url, MessageBody="same body", MessageGroupId="g", MessageAttributes=attrs)
    assert again["MessageId"] == first["MessageId"]
    other = sqs.send_message(QueueUrl=url, MessageBody="other body", MessageGroupId="g")
    assert other["MessageId"] != first["MessageId"]
    # An explicit id overrides the content hash.
    explicit = sqs.send_message(QueueUrl=url, MessageBody="same body", MessageGroupId="g", MessageDeduplicationId="explicit")
    assert explicit["MessageId"] not in {first["MessageId"], other["MessageId"]}
    messages = _receive(sqs, url)
    assert _bodies(messages) == ["same body", "other body", "same body"]
    assert messages[0]["Attributes"]["MessageDeduplicationId"] == hashlib.sha256(b"same body").hexdigest()
    assert messages[2]["Attributes"]["MessageDeduplicationId"] == "explicit"


def test_deduplication_scope_queue_spans_groups(sqs, make_queue):
    url = make_queue("scope", fifo=True)
    first = _send(sqs, url, "in a", group="a", dedup="shared")
    second = _send(sqs, url, "in b", group="b", dedup="shared")
    assert second["MessageId"] == first["MessageId"]
    assert _bodies(receive_until(sqs, url, 2, timeout=2)) == ["in a"]


def test_deduplication_scope_message_group(sqs, make_queue):
    url = make_queue("scope", {"DeduplicationScope": "messageGroup"}, fifo=True)
    in_a = _send(sqs, url, "in a", group="a", dedup="shared")
    in_b = _send(sqs, url, "in b", group="b", dedup="shared")
    assert in_b["MessageId"] != in_a["MessageId"], "the same id in another group is another message"
    again_a = _send(sqs, url, "again in a", group="a", dedup="shared")
    assert again_a["MessageId"] == in_a["MessageId"], "within a group it is a duplicate"
    messages = receive_until(sqs, url, 3, timeout=3, AttributeNames=["All"])
    assert sorted(_bodies(messages)) == ["in a", "in b"]


# --- sequence numbers and system attributes -------------------------------------------------


def test_sequence_numbers_on_send_and_receive(sqs, make_queue):
    url = make_queue("seq", fifo=True)
    sent = [_send(sqs, url, f"m{i}") for i in range(3)]
    numbers = [s["SequenceNumber"] for s in sent]
    for number in numbers:
        _assert_sequence_number(number)
    assert [int(n) for n in numbers] == sorted(int(n) for n in numbers) and len(set(numbers)) == 3, numbers
    batch = sqs.send_message_batch(
        QueueUrl=url,
        Entries=[{"Id": f"b{i}", "MessageBody": f"b{i}", "MessageGroupId": "g", "MessageDeduplicationId": f"b{i}"} for i in range(3)],
    )
    assert batch.get("Failed", []) == []
    by_id = {e["Id"]: e for e in batch["Successful"]}
    batch_numbers = [by_id[f"b{i}"]["SequenceNumber"] for i in range(3)]
    for number in batch_numbers:
        _assert_sequence_number(number)
    all_numbers = [int(n) for n in numbers + batch_numbers]
    assert all_numbers == sorted(all_numbers) and len(set(all_numbers)) == 6, "sequence numbers increase within a group"

    messages = _receive(sqs, url)
    assert _bodies(messages) == ["m0", "m1", "m2", "b0", "b1", "b2"]
    for message, number in zip(messages, numbers + batch_numbers):
        attrs = message["Attributes"]
        assert attrs["SequenceNumber"] == number
        assert attrs["MessageGroupId"] == "g"
        assert attrs["MessageDeduplicationId"] == ("dedup-" + message["Body"] if message["Body"].startswith("m") else message["Body"])


def test_fifo_system_attributes_only_when_requested(sqs, make_queue):
    url = make_queue("seq", fifo=True)
    _send(sqs, url, "x", group="grp-1", dedup="dd-1")
    [message] = _receive(sqs, url, AttributeNames=["SequenceNumber", "MessageGroupId"], VisibilityTimeout=0)
    assert set(message["Attributes"]) == {"SequenceNumber", "MessageGroupId"}
    assert message["Attributes"]["MessageGroupId"] == "grp-1"
    [message] = _receive(sqs, url, AttributeNames=[])
    assert "Attributes" not in message or message["Attributes"] == {}


# --- order and the group lock ---------------------------------------------------------------


def test_strict_order_within_a_group(sqs, make_queue):
    url = make_queue("order", fifo=True)
    bodies = [f"m{i:02d}" for i in range(15)]
    for body in bodies:
        _send(sqs, url, body)
    received = []
    deadline = time.monotonic() + 15
    while len(received) < len(bodies) and time.monotonic() < deadline:
        messages = _receive(sqs, url)
        received.extend(_bodies(messages))
        if messages:
            sqs.delete_message_batch(
                QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
            )
    assert received == bodies


def test_receive_returns_as_many_of_one_group_as_it_can(sqs, make_queue):
    url = make_queue("batch", fifo=True)
    for i in range(5):
        _send(sqs, url, f"a{i}", group="a")
    messages = _receive(sqs, url, max_messages=10)
    assert _bodies(messages) == [f"a{i}" for i in range(5)]
    # All five are now in flight: the group is locked.
    assert _receive(sqs, url) == []


def test_receive_fills_from_one_group_first(sqs, make_queue):
    url = make_queue("groups", fifo=True)
    for body in ("a1", "b1", "a2", "b2", "a3", "b3"):
        _send(sqs, url, body, group=body[0].upper())
    first = _receive(sqs, url, max_messages=2, VisibilityTimeout=0)
    assert _bodies(first) == ["a1", "a2"], "two messages of the first group, not one of each"
    # A became available again after B had been waiting, so B is served next (as AWS does).
    three = _receive(sqs, url, max_messages=3, VisibilityTimeout=0)
    assert _bodies(three) == ["b1", "b2", "b3"]
    three = _receive(sqs, url, max_messages=3, VisibilityTimeout=0)
    assert _bodies(three) == ["a1", "a2", "a3"]
    everything = _receive(sqs, url, max_messages=10)
    assert sorted(_bodies(everything)) == ["a1", "a2", "a3", "b1", "b2", "b3"]
    for group in ("A", "B"):
        in_group = [m["Body"] for m in everything if _group(m) == group]
        assert in_group == [f"{group.lower()}{i}" for i in (1, 2, 3)], "order within each group"


def test_group_lock_holds_back_the_group_and_lets_others_flow(sqs, make_queue):
    url = make_queue("lock", fifo=True)
    for body in ("a1", "a2"):
        _send(sqs, url, body, group="A")
    for body in ("b1", "b2"):
        _send(sqs, url, body, group="B")
    [head] = _receive(sqs, url, max_messages=1, VisibilityTimeout=600)
    assert head["Body"] in {"a1", "b1"}, "a receive starts with the head of a group"
    locked = _group(head)
    other = "B" if locked == "A" else "A"
    rest = _receive(sqs, url, VisibilityTimeout=600)
    assert _bodies(rest) == [f"{other.lower()}1", f"{other.lower()}2"], "the other group flows, in order"
    assert _receive(sqs, url) == [], "both groups are locked while messages are in flight"
    # Deleting the head releases its group; the next message of that group comes next.
    sqs.delete_message(QueueUrl=url, ReceiptHandle=head["ReceiptHandle"])
    assert _bodies(_receive(sqs, url)) == [f"{locked.lower()}2"]


def test_group_lock_released_by_visibility_expiry(sqs, make_queue):
    url = make_queue("lock", fifo=True)
    for body in ("a1", "a2", "a3"):
        _send(sqs, url, body)
    [first] = _receive(sqs, url, max_messages=1, VisibilityTimeout=1)
    assert first["Body"] == "a1"
    assert _receive(sqs, url) == [], "a2 waits while a1 is in flight"
    time.sleep(1.5)
    again = _receive(sqs, url, VisibilityTimeout=600)
    assert _bodies(again) == ["a1", "a2", "a3"], "a1 comes back first, the rest follow in order"
    assert again[0]["MessageId"] == first["MessageId"]
    assert again[0]["Attributes"]["ApproximateReceiveCount"] == "2"


def test_group_lock_released_by_visibility_change_of_the_head(sqs, make_queue):
    url = make_queue("lock", fifo=True)
    for body in ("a1", "a2"):
        _send(sqs, url, body)
    [first] = _receive(sqs, url, max_messages=1, VisibilityTimeout=600)
    assert first["Body"] == "a1"
    assert _receive(sqs, url) == []
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=0)
    assert _bodies(_receive(sqs, url)) == ["a1", "a2"]


def test_long_poll_wakes_when_the_group_is_released(sqs, make_queue):
    url = make_queue("lock", fifo=True)
    for body in ("a1", "a2"):
        _send(sqs, url, body)
    [first] = _receive(sqs, url, max_messages=1, VisibilityTimeout=2)
    start = time.monotonic()
    messages = _receive(sqs, url, WaitTimeSeconds=10)
    elapsed = time.monotonic() - start
    assert _bodies(messages) == ["a1", "a2"]
    assert 1.0 <= elapsed < 8, f"long poll returned after {elapsed:.1f}s"
    assert messages[0]["MessageId"] == first["MessageId"]


# --- ReceiveRequestAttemptId ----------------------------------------------------------------


def test_receive_request_attempt_id_retry_returns_the_same_messages(sqs, make_queue):
    url = make_queue("attempt", fifo=True)
    for body in ("m1", "m2", "m3"):
        _send(sqs, url, body)
    first = _receive(sqs, url, max_messages=2, VisibilityTimeout=600, ReceiveRequestAttemptId="attempt-1")
    assert _bodies(first) == ["m1", "m2"]
    retry = _receive(sqs, url, max_messages=2, VisibilityTimeout=600, ReceiveRequestAttemptId="attempt-1")
    assert [m["MessageId"] for m in retry] == [m["MessageId"] for m in first]
    assert [m["ReceiptHandle"] for m in retry] == [m["ReceiptHandle"] for m in first]
    # Another attempt id is a new receive: the group is locked by m1/m2.
    assert _receive(sqs, url, ReceiveRequestAttemptId="attempt-2") == []
    # The handles work.
    resp = sqs.delete_message_batch(
        QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(retry)]
    )
    assert len(resp["Successful"]) == 2 and resp.get("Failed", []) == []
    assert _bodies(_receive(sqs, url)) == ["m3"]
