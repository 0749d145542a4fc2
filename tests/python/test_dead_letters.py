"""Dead-letter queues: RedrivePolicy and RedriveAllowPolicy validation, moving exhausted messages
on receive and in the background, what a dead-lettered message keeps, and
ListDeadLetterSourceQueues (SetQueueAttributes, FIFO queues, dead-letter queues), over both protocols."""

from __future__ import annotations

import json
import time

import pytest

from holdfast_testlib import (
    INVALID_PARAMETER_VALUE,
    NON_EXISTENT_QUEUE,
    expect_error,
    md5_of_attributes,
    message_count,
    queue_arn_of,
    queue_attributes,
    receive_until,
    redrive_policy,
    unique_name,
)

ATTRIBUTES = {
    "kind": {"DataType": "String", "StringValue": "poison"},
    "n": {"DataType": "Number", "StringValue": "7"},
    "raw": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xfe"},
}


def _stored_policy(sqs, url):
    return json.loads(queue_attributes(sqs, url, "RedrivePolicy")["RedrivePolicy"])


def _receive(sqs, url, visibility=0, wait=0, max_messages=10, **kwargs):
    return sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=max_messages,
        VisibilityTimeout=visibility,
        WaitTimeSeconds=wait,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
        **kwargs,
    ).get("Messages", [])


def _source_and_dlq(sqs, make_queue, max_receive_count=2, fifo=False, source_attributes=None):
    dlq = make_queue("dlq", fifo=fifo)
    dlq_arn = queue_arn_of(sqs, dlq)
    attributes = {"RedrivePolicy": redrive_policy(dlq_arn, max_receive_count), **(source_attributes or {})}
    source = make_queue("src", attributes, fifo=fifo)
    return source, dlq, dlq_arn


# --- RedrivePolicy --------------------------------------------------------------------------


@pytest.mark.parametrize("count", [3, "3"], ids=["number", "string"])
def test_redrive_policy_is_returned_normalised(sqs, make_queue, count):
    dlq = make_queue("dlq")
    dlq_arn = queue_arn_of(sqs, dlq)
    source = make_queue("src", {"RedrivePolicy": redrive_policy(dlq_arn, count)})
    assert _stored_policy(sqs, source) == {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3}
    assert isinstance(_stored_policy(sqs, source)["maxReceiveCount"], int)
    sqs.set_queue_attributes(QueueUrl=source, Attributes={"RedrivePolicy": redrive_policy(dlq_arn, "10" if isinstance(count, str) else 10)})
    assert _stored_policy(sqs, source) == {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 10}
    assert queue_attributes(sqs, source)["RedrivePolicy"] == queue_attributes(sqs, source, "RedrivePolicy")["RedrivePolicy"]


def test_redrive_policy_can_be_removed(sqs, make_queue):
    source, _, _ = _source_and_dlq(sqs, make_queue)
    assert "RedrivePolicy" in queue_attributes(sqs, source)
    sqs.set_queue_attributes(QueueUrl=source, Attributes={"RedrivePolicy": ""})
    assert "RedrivePolicy" not in queue_attributes(sqs, source)


def test_redrive_target_must_exist(sqs, queue_url, server):
    missing = server.queue_arn(unique_name("missing"))
    expect_error(INVALID_PARAMETER_VALUE, sqs.set_queue_attributes, QueueUrl=queue_url, Attributes={"RedrivePolicy": redrive_policy(missing, 3)}, status=400)
    expect_error(INVALID_PARAMETER_VALUE, sqs.create_queue, QueueName=unique_name("src"), Attributes={"RedrivePolicy": redrive_policy(missing, 3)})
    assert "RedrivePolicy" not in queue_attributes(sqs, queue_url)


def test_redrive_target_must_be_the_same_queue_type(sqs, make_queue):
    standard = make_queue("std")
    fifo = make_queue("fifo", fifo=True)
    standard_arn, fifo_arn = queue_arn_of(sqs, standard), queue_arn_of(sqs, fifo)
    expect_error(INVALID_PARAMETER_VALUE, sqs.set_queue_attributes, QueueUrl=standard, Attributes={"RedrivePolicy": redrive_policy(fifo_arn, 3)})
    expect_error(INVALID_PARAMETER_VALUE, sqs.set_queue_attributes, QueueUrl=fifo, Attributes={"RedrivePolicy": redrive_policy(standard_arn, 3)})
    expect_error(
        INVALID_PARAMETER_VALUE,
        sqs.create_queue,
        QueueName=unique_name("fsrc") + ".fifo",
        Attributes={"FifoQueue": "true", "RedrivePolicy": redrive_policy(standard_arn, 3)},
    )
    # Same type on both sides is fine.
    fifo_dlq_arn = queue_arn_of(sqs, make_queue("fdlq", fifo=True))
    sqs.set_queue_attributes(QueueUrl=fifo, Attributes={"RedrivePolicy": redrive_policy(fifo_dlq_arn, 3)})
    assert _stored_policy(sqs, fifo) == {"deadLetterTargetArn": fifo_dlq_arn, "maxReceiveCount": 3}


@pytest.mark.parametrize("count", [0, 1001, -1, "abc", 2.5], ids=["zero", "1001", "negative", "text", "fraction"])
def test_max_receive_count_out_of_range(sqs, make_queue, count):
    dlq_arn = queue_arn_of(sqs, make_queue("dlq"))
    source = make_queue("src")
    expect_error(INVALID_PARAMETER_VALUE, sqs.set_queue_attributes, QueueUrl=source, Attributes={"RedrivePolicy": redrive_policy(dlq_arn, count)}, status=400)
    assert "RedrivePolicy" not in queue_attributes(sqs, source)


@pytest.mark.parametrize("count", [1, 1000])
def test_max_receive_count_bounds_are_accepted(sqs, make_queue, count):
    dlq_arn = queue_arn_of(sqs, make_queue("dlq"))
    source = make_queue("src", {"RedrivePolicy": redrive_policy(dlq_arn, count)})
    assert _stored_policy(sqs, source)["maxReceiveCount"] == count


@pytest.mark.parametrize(
    "document",
    ["not json", "[]", '{"maxReceiveCount": 3}', '{"deadLetterTargetArn": "%(arn)s"}'],
    ids=["not-json", "not-a-map", "no-target", "no-count"],
)
def test_malformed_redrive_policy(sqs, make_queue, document):
    dlq_arn = queue_arn_of(sqs, make_queue("dlq"))
    source = make_queue("src")
    expect_error(INVALID_PARAMETER_VALUE, sqs.set_queue_attributes, QueueUrl=source, Attributes={"RedrivePolicy": document % {"arn": dlq_arn}})


# --- RedriveAllowPolicy ---------------------------------------------------------------------


def test_redrive_allow_policy_round_trips(sqs, make_queue):
    dlq = make_queue("dlq")
    sqs.set_queue_attributes(QueueUrl=dlq, Attributes={"RedriveAllowPolicy": json.dumps({"redrivePermission": "denyAll"})})
    assert json.loads(queue_attributes(sqs, dlq, "RedriveAllowPolicy")["RedriveAllowPolicy"]) == {"redrivePermission": "denyAll"}
    arns = [queue_arn_of(sqs, make_queue("s")) for _ in range(2)]
    by_queue = {"redrivePermission": "byQueue", "sourceQueueArns": arns}
    sqs.set_queue_attributes(QueueUrl=dlq, Attributes={"RedriveAllowPolicy": json.dumps(by_queue)})
    assert json.loads(queue_attributes(sqs, dlq)["RedriveAllowPolicy"]) == by_queue


def test_redrive_allow_policy_by_queue(sqs, make_queue):
    allowed = make_queue("allowed")
    allowed_arn = queue_arn_of(sqs, allowed)
    dlq = make_queue("dlq", {"RedriveAllowPolicy": json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": [allowed_arn]})})
    dlq_arn = queue_arn_of(sqs, dlq)
    sqs.set_queue_attributes(QueueUrl=allowed, Attributes={"RedrivePolicy": redrive_policy(dlq_arn, 2)})
    other = make_queue("other")
    expect_error(INVALID_PARAMETER_VALUE, sqs.set_queue_attributes, QueueUrl=other, Attributes={"RedrivePolicy": redrive_policy(dlq_arn, 2)}, status=400)
    expect_error(INVALID_PARAMETER_VALUE, sqs.create_queue, QueueName=unique_name("late"), Attributes={"RedrivePolicy": redrive_policy(dlq_arn, 2)})
    assert "RedrivePolicy" not in queue_attributes(sqs, other)


def test_redrive_allow_policy_deny_all_and_allow_all(sqs, make_queue):
    dlq = make_queue("dlq", {"RedriveAllowPolicy": json.dumps({"redrivePermission": "denyAll"})})
    dlq_arn = queue_arn_of(sqs, dlq)
    source = make_queue("src")
    expect_error(INVALID_PARAMETER_VALUE, sqs.set_queue_attributes, QueueUrl=source, Attributes={"RedrivePolicy": redrive_policy(dlq_arn, 2)})
    sqs.set_queue_attributes(QueueUrl=dlq, Attributes={"RedriveAllowPolicy": json.dumps({"redrivePermission": "allowAll"})})
    sqs.set_queue_attributes(QueueUrl=source, Attributes={"RedrivePolicy": redrive_policy(dlq_arn, 2)})
    assert _stored_policy(sqs, source)["deadLetterTargetArn"] == dlq_arn


@pytest.mark.parametrize(
    "document",
    [
        {"redrivePermission": "byQueue"},
        {"redrivePermission": "byQueue", "sourceQueueArns": [f"arn:aws:sqs:us-east-1:000000000000:q{i}" for i in range(11)]},
        {"redrivePermission": "allowAll", "sourceQueueArns": ["arn:aws:sqs:us-east-1:000000000000:q"]},
        {"redrivePermission": "sometimes"},
        {},
    ],
    ids=["by-queue-without-arns", "eleven-arns", "arns-with-allow-all", "unknown-permission", "empty"],
)
def test_invalid_redrive_allow_policy(sqs, queue_url, document):
    expect_error(INVALID_PARAMETER_VALUE, sqs.set_queue_attributes, QueueUrl=queue_url, Attributes={"RedriveAllowPolicy": json.dumps(document)})
    assert "RedriveAllowPolicy" not in queue_attributes(sqs, queue_url)


def test_redrive_allow_policy_with_ten_arns(sqs, make_queue):
    arns = [f"arn:aws:sqs:us-east-1:000000000000:q{i}" for i in range(10)]
    dlq = make_queue("dlq", {"RedriveAllowPolicy": json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": arns})})
    assert json.loads(queue_attributes(sqs, dlq, "RedriveAllowPolicy")["RedriveAllowPolicy"])["sourceQueueArns"] == arns


# --- moving exhausted messages --------------------------------------------------------------


@pytest.mark.parametrize("max_receive_count", [1, 2])
def test_message_moves_on_the_receive_after_max_receive_count(sqs, make_queue, max_receive_count):
    source, dlq, _ = _source_and_dlq(sqs, make_queue, max_receive_count)
    source_arn = queue_arn_of(sqs, source)
    sent = sqs.send_message(QueueUrl=source, MessageBody="poison pill", MessageAttributes=ATTRIBUTES)
    sent_timestamp = None
    for attempt in range(1, max_receive_count + 1):
        messages = _receive(sqs, source)
        assert [m["MessageId"] for m in messages] == [sent["MessageId"]], f"receive {attempt} of {max_receive_count} delivers"
        assert messages[0]["Attributes"]["ApproximateReceiveCount"] == str(attempt)
        sent_timestamp = messages[0]["Attributes"]["SentTimestamp"]
    assert _receive(sqs, source) == [], "the receive after maxReceiveCount moves the message instead of returning it"
    assert message_count(sqs, source) == 0

    moved = receive_until(sqs, dlq, 1, timeout=5, AttributeNames=["All"], MessageAttributeNames=["All"])
    assert len(moved) == 1
    message = moved[0]
    assert message["MessageId"] == sent["MessageId"]
    assert message["Body"] == "poison pill"
    assert message["MessageAttributes"] == ATTRIBUTES
    assert message["MD5OfMessageAttributes"] == md5_of_attributes(ATTRIBUTES) == sent["MD5OfMessageAttributes"]
    attrs = message["Attributes"]
    assert attrs["DeadLetterQueueSourceArn"] == source_arn
    assert attrs["SentTimestamp"] == sent_timestamp, "a standard DLQ keeps the original SentTimestamp"


def test_dead_letter_source_arn_only_when_requested(sqs, make_queue):
    source, dlq, _ = _source_and_dlq(sqs, make_queue, 1)
    sqs.send_message(QueueUrl=source, MessageBody="x")
    assert len(_receive(sqs, source)) == 1
    assert _receive(sqs, source) == []
    [message] = receive_until(sqs, dlq, 1, timeout=5, AttributeNames=["SentTimestamp"], VisibilityTimeout=0)
    assert set(message["Attributes"]) == {"SentTimestamp"}
    [message] = receive_until(sqs, dlq, 1, timeout=5, AttributeNames=["DeadLetterQueueSourceArn"])
    assert message["Attributes"] == {"DeadLetterQueueSourceArn": queue_arn_of(sqs, source)}


def test_deleted_messages_do_not_move(sqs, make_queue):
    source, dlq, _ = _source_and_dlq(sqs, make_queue, 1)
    sqs.send_message(QueueUrl=source, MessageBody="handled")
    [message] = _receive(sqs, source, visibility=30)
    sqs.delete_message(QueueUrl=source, ReceiptHandle=message["ReceiptHandle"])
    assert _receive(sqs, source) == []
    assert message_count(sqs, dlq) == 0


def test_other_messages_keep_flowing_while_one_moves(sqs, make_queue):
    source, dlq, _ = _source_and_dlq(sqs, make_queue, 1)
    poison = sqs.send_message(QueueUrl=source, MessageBody="poison")["MessageId"]
    assert [m["MessageId"] for m in _receive(sqs, source)] == [poison]
    fresh = sqs.send_message(QueueUrl=source, MessageBody="fresh")["MessageId"]
    # The next receive moves the poison message and still returns the fresh one.
    got = receive_until(sqs, source, 1, timeout=5)
    assert [m["MessageId"] for m in got] == [fresh]
    assert [m["MessageId"] for m in receive_until(sqs, dlq, 1, timeout=5)] == [poison]


def test_exhausted_messages_move_when_nobody_receives(sqs, make_queue):
    source, dlq, _ = _source_and_dlq(sqs, make_queue, 1)
    sent = sqs.send_message(QueueUrl=source, MessageBody="stuck")["MessageId"]
    assert len(_receive(sqs, source, visibility=1)) == 1
    # Nobody receives from the source again: the message still reaches the DLQ.
    moved = receive_until(sqs, dlq, 1, timeout=20, AttributeNames=["DeadLetterQueueSourceArn"])
    assert [m["MessageId"] for m in moved] == [sent], "moved by the server within 20 s"
    assert moved[0]["Attributes"]["DeadLetterQueueSourceArn"] == queue_arn_of(sqs, source)
    counts = queue_attributes(sqs, source, "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")
    assert counts == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}


def test_fifo_dead_letter_queue(sqs, make_queue):
    source, dlq, _ = _source_and_dlq(sqs, make_queue, 1, fifo=True, source_attributes={"ContentBasedDeduplication": "true"})
    first = sqs.send_message(QueueUrl=source, MessageBody="a", MessageGroupId="g")["MessageId"]
    sqs.send_message(QueueUrl=source, MessageBody="b", MessageGroupId="g")
    [a] = _receive(sqs, source, max_messages=1)
    assert a["Body"] == "a"
    sent_at = int(a["Attributes"]["SentTimestamp"])
    time.sleep(0.05)
    # a is exhausted: the next receive moves it and returns b, the next of its group.
    second = _receive(sqs, source, visibility=30)
    assert [m["Body"] for m in second] == ["b"]
    moved = receive_until(sqs, dlq, 1, timeout=5, AttributeNames=["All"])
    assert len(moved) == 1
    message = moved[0]
    assert message["MessageId"] == first and message["Body"] == "a"
    assert message["Attributes"]["DeadLetterQueueSourceArn"] == queue_arn_of(sqs, source)
    assert int(message["Attributes"]["SentTimestamp"]) > sent_at, "a FIFO DLQ resets the enqueue time"


# --- ListDeadLetterSourceQueues -------------------------------------------------------------


def test_list_dead_letter_source_queues(sqs, make_queue):
    dlq = make_queue("dlq")
    dlq_arn = queue_arn_of(sqs, dlq)
    sources = sorted(make_queue("src", {"RedrivePolicy": redrive_policy(dlq_arn, 3)}) for _ in range(3))
    make_queue("unrelated")
    other_dlq_arn = queue_arn_of(sqs, make_queue("otherdlq"))
    make_queue("elsewhere", {"RedrivePolicy": redrive_policy(other_dlq_arn, 3)})

    resp = sqs.list_dead_letter_source_queues(QueueUrl=dlq)
    assert sorted(resp["queueUrls"]) == sources
    assert "NextToken" not in resp, "no token without MaxResults"

    first = sqs.list_dead_letter_source_queues(QueueUrl=dlq, MaxResults=2)
    assert len(first["queueUrls"]) == 2
    assert first.get("NextToken")
    rest = sqs.list_dead_letter_source_queues(QueueUrl=dlq, MaxResults=2, NextToken=first["NextToken"])
    assert len(rest["queueUrls"]) == 1
    assert not rest.get("NextToken")
    assert sorted(first["queueUrls"] + rest["queueUrls"]) == sources

    # Removing a source's policy removes it from the list.
    sqs.set_queue_attributes(QueueUrl=sources[0], Attributes={"RedrivePolicy": ""})
    assert sorted(sqs.list_dead_letter_source_queues(QueueUrl=dlq)["queueUrls"]) == sources[1:]


def test_list_dead_letter_source_queues_of_a_queue_nobody_targets(sqs, queue_url):
    assert sqs.list_dead_letter_source_queues(QueueUrl=queue_url).get("queueUrls", []) == []


@pytest.mark.parametrize("max_results", [0, 1001])
def test_list_dead_letter_source_queues_max_results_range(sqs, queue_url, max_results):
    expect_error(INVALID_PARAMETER_VALUE, sqs.list_dead_letter_source_queues, QueueUrl=queue_url, MaxResults=max_results, status=400)


def test_list_dead_letter_source_queues_of_missing_queue(sqs, server):
    expect_error(NON_EXISTENT_QUEUE, sqs.list_dead_letter_source_queues, QueueUrl=server.queue_url(unique_name("missing")))
