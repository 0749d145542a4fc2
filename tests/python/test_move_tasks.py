"""Message move tasks (DLQ redrive): StartMessageMoveTask, ListMessageMoveTasks and
CancelMessageMoveTask (the API reference, message quotas, StartMessageMoveTask), over both protocols."""

from __future__ import annotations

import base64
import json
import time

import pytest

from holdfast_testlib import (
    ACCOUNT_ID,
    INVALID_PARAMETER_VALUE,
    RESOURCE_NOT_FOUND,
    expect_error,
    latest_move_task,
    message_count,
    queue_arn_of,
    receive_until,
    redrive_policy,
    unique_name,
    wait_for,
    wait_for_move_task,
)

DONE = ("COMPLETED", "FAILED", "CANCELLED")


def _dead_lettered(sqs, make_queue, count):
    """A source queue with maxReceiveCount 1 and its DLQ holding `count` messages that came from
    it. Returns (source_url, source_arn, dlq_url, dlq_arn, sorted message ids)."""
    dlq = make_queue("dlq")
    dlq_arn = queue_arn_of(sqs, dlq)
    source = make_queue("src", {"RedrivePolicy": redrive_policy(dlq_arn, 1)})
    ids = []
    for start in range(0, count, 10):
        entries = [{"Id": f"m{i}", "MessageBody": f"body-{i}"} for i in range(start, min(count, start + 10))]
        resp = sqs.send_message_batch(QueueUrl=source, Entries=entries)
        assert resp.get("Failed", []) == []
        ids += [e["MessageId"] for e in resp["Successful"]]
    # One receive each (visibility 0), then the next receives move them all.
    deadline = time.monotonic() + 20
    while message_count(sqs, dlq) < count and time.monotonic() < deadline:
        sqs.receive_message(QueueUrl=source, MaxNumberOfMessages=10, VisibilityTimeout=0)
    assert message_count(sqs, dlq) == count, "setup: all messages dead-lettered"
    return source, queue_arn_of(sqs, source), dlq, dlq_arn, sorted(ids)


def _all_messages(sqs, url, count):
    return receive_until(sqs, url, count, timeout=10, VisibilityTimeout=600, AttributeNames=["All"])


# --- moving ---------------------------------------------------------------------------------


def test_move_task_returns_messages_to_their_source(sqs, make_queue):
    source, _, dlq, dlq_arn, ids = _dead_lettered(sqs, make_queue, 4)
    started_at = int(time.time() * 1000)
    handle = sqs.start_message_move_task(SourceArn=dlq_arn)["TaskHandle"]
    assert isinstance(handle, str) and handle

    task = wait_for_move_task(sqs, dlq_arn, DONE)
    assert task["Status"] == "COMPLETED", task
    assert task["SourceArn"] == dlq_arn
    assert "DestinationArn" not in task
    assert task["ApproximateNumberOfMessagesMoved"] == 4
    assert task["ApproximateNumberOfMessagesToMove"] == 4
    assert "TaskHandle" not in task, "the handle is listed only while the task runs"
    assert "FailureReason" not in task
    assert abs(task["StartedTimestamp"] - started_at) < 60_000, "StartedTimestamp is epoch milliseconds"

    assert message_count(sqs, dlq) == 0
    returned = _all_messages(sqs, source, 4)
    assert sorted(m["MessageId"] for m in returned) == ids, "the same messages are back in their source"
    assert sorted(m["Body"] for m in returned) == sorted(f"body-{i}" for i in range(4))
    for message in returned:
        assert "DeadLetterQueueSourceArn" not in message["Attributes"]


def test_move_task_returns_each_message_to_its_own_source(sqs, make_queue):
    dlq = make_queue("dlq")
    dlq_arn = queue_arn_of(sqs, dlq)
    sources = [make_queue(f"src{i}", {"RedrivePolicy": redrive_policy(dlq_arn, 1)}) for i in range(2)]
    sent = {}
    for source in sources:
        sent[source] = sqs.send_message(QueueUrl=source, MessageBody=f"from {source}")["MessageId"]
        assert len(sqs.receive_message(QueueUrl=source, VisibilityTimeout=0).get("Messages", [])) == 1
        assert sqs.receive_message(QueueUrl=source, VisibilityTimeout=0).get("Messages", []) == []
    assert wait_for(lambda: message_count(sqs, dlq) == 2, timeout=5)
    sqs.start_message_move_task(SourceArn=dlq_arn)
    task = wait_for_move_task(sqs, dlq_arn, DONE)
    assert task["Status"] == "COMPLETED", task
    assert task["ApproximateNumberOfMessagesMoved"] == 2
    for source in sources:
        back = _all_messages(sqs, source, 1)
        assert [m["MessageId"] for m in back] == [sent[source]]
        assert back[0]["Body"] == f"from {source}"


def test_move_task_to_a_destination(sqs, make_queue):
    source, _, dlq, dlq_arn, ids = _dead_lettered(sqs, make_queue, 3)
    destination = make_queue("dest")
    destination_arn = queue_arn_of(sqs, destination)
    sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=destination_arn, MaxNumberOfMessagesPerSecond=100)
    task = wait_for_move_task(sqs, dlq_arn, DONE)
    assert task["Status"] == "COMPLETED", task
    assert task["DestinationArn"] == destination_arn
    assert task["MaxNumberOfMessagesPerSecond"] == 100
    assert task["ApproximateNumberOfMessagesMoved"] == 3
    assert message_count(sqs, dlq) == 0
    assert message_count(sqs, source) == 0
    moved = _all_messages(sqs, destination, 3)
    assert sorted(m["MessageId"] for m in moved) == ids


def test_move_task_of_an_empty_dead_letter_queue_completes(sqs, make_queue):
    dlq = make_queue("dlq")
    dlq_arn = queue_arn_of(sqs, dlq)
    make_queue("src", {"RedrivePolicy": redrive_policy(dlq_arn, 1)})
    sqs.start_message_move_task(SourceArn=dlq_arn)
    task = wait_for_move_task(sqs, dlq_arn, DONE)
    assert task["Status"] == "COMPLETED", task
    assert task["ApproximateNumberOfMessagesMoved"] == 0
    assert task["ApproximateNumberOfMessagesToMove"] == 0


# --- start rules ----------------------------------------------------------------------------


def test_source_must_be_a_dead_letter_queue(sqs, queue_url):
    expect_error(INVALID_PARAMETER_VALUE, sqs.start_message_move_task, SourceArn=queue_arn_of(sqs, queue_url), status=400)


def test_unknown_source_arn(sqs, server):
    expect_error(RESOURCE_NOT_FOUND, sqs.start_message_move_task, SourceArn=server.queue_arn(unique_name("missing")), status=404)


def test_unknown_destination_arn(sqs, make_queue, server):
    dlq = make_queue("dlq")
    dlq_arn = queue_arn_of(sqs, dlq)
    make_queue("src", {"RedrivePolicy": redrive_policy(dlq_arn, 1)})
    expect_error(
        RESOURCE_NOT_FOUND,
        sqs.start_message_move_task,
        SourceArn=dlq_arn,
        DestinationArn=server.queue_arn(unique_name("missing")),
        status=404,
    )
    assert latest_move_task(sqs, dlq_arn) is None, "a rejected start creates no task"


@pytest.mark.parametrize("rate", [0, 501, -1])
def test_rate_out_of_range(sqs, make_queue, rate):
    dlq = make_queue("dlq")
    dlq_arn = queue_arn_of(sqs, dlq)
    make_queue("src", {"RedrivePolicy": redrive_policy(dlq_arn, 1)})
    expect_error(INVALID_PARAMETER_VALUE, sqs.start_message_move_task, SourceArn=dlq_arn, MaxNumberOfMessagesPerSecond=rate, status=400)
    assert latest_move_task(sqs, dlq_arn) is None


def test_rate_bounds_are_accepted(sqs, make_queue):
    for rate in (1, 500):
        dlq = make_queue("dlq")
        dlq_arn = queue_arn_of(sqs, dlq)
        make_queue("src", {"RedrivePolicy": redrive_policy(dlq_arn, 1)})
        assert sqs.start_message_move_task(SourceArn=dlq_arn, MaxNumberOfMessagesPerSecond=rate)["TaskHandle"]
        assert wait_for_move_task(sqs, dlq_arn, DONE)["Status"] == "COMPLETED"


# --- one active task, cancelling ------------------------------------------------------------


def test_one_active_task_per_source_and_cancel(sqs, make_queue):
    _, _, dlq, dlq_arn, _ = _dead_lettered(sqs, make_queue, 8)
    destination = make_queue("dest")
    destination_arn = queue_arn_of(sqs, destination)
    handle = sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=destination_arn, MaxNumberOfMessagesPerSecond=2)["TaskHandle"]
    expect_error(INVALID_PARAMETER_VALUE, sqs.start_message_move_task, SourceArn=dlq_arn, status=400)

    time.sleep(1.2)
    running = latest_move_task(sqs, dlq_arn)
    assert running["Status"] == "RUNNING", running
    assert running["TaskHandle"] == handle
    assert running["MaxNumberOfMessagesPerSecond"] == 2
    assert running["ApproximateNumberOfMessagesToMove"] == 8
    assert 0 <= running["ApproximateNumberOfMessagesMoved"] < 8

    cancelled = sqs.cancel_message_move_task(TaskHandle=handle)
    moved_at_cancel = cancelled["ApproximateNumberOfMessagesMoved"]
    assert isinstance(moved_at_cancel, int) and moved_at_cancel < 8, f"2 per second cannot have moved all 8 yet ({moved_at_cancel})"

    task = wait_for_move_task(sqs, dlq_arn, ["CANCELLED"])
    assert "TaskHandle" not in task
    moved = task["ApproximateNumberOfMessagesMoved"]
    assert moved_at_cancel <= moved < 8
    # Moved messages stay moved; nothing is lost or doubled.
    assert message_count(sqs, destination) == moved
    assert message_count(sqs, dlq) == 8 - moved

    expect_error(INVALID_PARAMETER_VALUE, sqs.cancel_message_move_task, TaskHandle=handle, status=400)
    # The source is free again.
    sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=destination_arn)
    assert wait_for_move_task(sqs, dlq_arn, DONE)["Status"] == "COMPLETED"
    assert wait_for(lambda: message_count(sqs, destination) == 8, timeout=5)
    assert message_count(sqs, dlq) == 0


def test_cancel_a_completed_task(sqs, make_queue):
    _, _, _, dlq_arn, _ = _dead_lettered(sqs, make_queue, 1)
    handle = sqs.start_message_move_task(SourceArn=dlq_arn)["TaskHandle"]
    assert wait_for_move_task(sqs, dlq_arn, DONE)["Status"] == "COMPLETED"
    expect_error(INVALID_PARAMETER_VALUE, sqs.cancel_message_move_task, TaskHandle=handle, status=400)


@pytest.mark.parametrize("handle", ["not-a-task-handle", "bm90IGEgaGFuZGxl"], ids=["garbage", "base64"])
def test_cancel_a_handle_that_is_not_one(sqs, handle):
    expect_error(INVALID_PARAMETER_VALUE, sqs.cancel_message_move_task, TaskHandle=handle, status=400)


def _handle(source_arn):
    document = json.dumps({"taskId": "00000000-0000-4000-8000-000000000000", "sourceArn": source_arn})
    return base64.b64encode(document.encode()).decode()


def test_cancel_a_handle_of_no_queue_or_no_task(sqs, make_queue):
    # AWS tells the two apart: the source queue does not exist, or the task does not.
    missing = _handle(f"arn:aws:sqs:us-east-1:{ACCOUNT_ID}:no-such-queue")
    error = expect_error(RESOURCE_NOT_FOUND, sqs.cancel_message_move_task, TaskHandle=missing, status=404)
    assert "SourceArn" in error.response["Error"]["Message"]
    _, _, _, dlq_arn, _ = _dead_lettered(sqs, make_queue, 1)
    error = expect_error(RESOURCE_NOT_FOUND, sqs.cancel_message_move_task, TaskHandle=_handle(dlq_arn), status=404)
    assert error.response["Error"]["Message"] == "Task does not exist."


# --- listing --------------------------------------------------------------------------------


def test_list_newest_first_with_max_results(sqs, make_queue):
    _, _, _, dlq_arn, _ = _dead_lettered(sqs, make_queue, 2)
    first_destination = queue_arn_of(sqs, make_queue("dest1"))
    second_destination = queue_arn_of(sqs, make_queue("dest2"))
    sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=first_destination)
    wait_for_move_task(sqs, dlq_arn, DONE)
    sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=second_destination)
    wait_for_move_task(sqs, dlq_arn, DONE)

    default = sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"]
    assert len(default) == 1, "MaxResults defaults to 1"
    assert default[0]["DestinationArn"] == second_destination
    both = sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=10)["Results"]
    assert [t["DestinationArn"] for t in both] == [second_destination, first_destination], "newest first"
    assert [t["ApproximateNumberOfMessagesMoved"] for t in both] == [0, 2]
    assert both[0]["StartedTimestamp"] >= both[1]["StartedTimestamp"]
    assert all(t["Status"] == "COMPLETED" and t["SourceArn"] == dlq_arn for t in both)


def test_list_without_tasks(sqs, make_queue):
    dlq = make_queue("dlq")
    assert sqs.list_message_move_tasks(SourceArn=queue_arn_of(sqs, dlq)).get("Results", []) == []


@pytest.mark.parametrize("max_results", [0, 11])
def test_list_max_results_range(sqs, queue_url, max_results):
    expect_error(INVALID_PARAMETER_VALUE, sqs.list_message_move_tasks, SourceArn=queue_arn_of(sqs, queue_url), MaxResults=max_results, status=400)


def test_list_unknown_source(sqs, server):
    expect_error(RESOURCE_NOT_FOUND, sqs.list_message_move_tasks, SourceArn=server.queue_arn(unique_name("missing")), status=404)
