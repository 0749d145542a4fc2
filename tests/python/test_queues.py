"""Queue lifecycle and attributes: CreateQueue, GetQueueUrl, ListQueues, DeleteQueue,
Get/SetQueueAttributes and PurgeQueue (SetQueueAttributes, CreateQueue, visibility timeout), over both protocols."""

from __future__ import annotations

import time

import pytest

from holdfast_testlib import (
    ACCOUNT_ID,
    INVALID_PARAMETER_VALUE,
    NON_EXISTENT_QUEUE,
    PURGE_IN_PROGRESS,
    QUEUE_ALREADY_EXISTS,
    QUEUE_DELETED_RECENTLY,
    REGION,
    expect_error,
    protocol_of,
    queue_attributes,
    receive_until,
    unique_name,
    wait_for,
)

DEFAULTS = {
    "VisibilityTimeout": "30",
    "MaximumMessageSize": "1048576",
    "MessageRetentionPeriod": "345600",
    "DelaySeconds": "0",
    "ReceiveMessageWaitTimeSeconds": "0",
}


def test_create_get_url_and_arn(sqs, server):
    name = unique_name("create")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    assert url == server.queue_url(name)
    assert sqs.get_queue_url(QueueName=name)["QueueUrl"] == url
    assert sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=ACCOUNT_ID)["QueueUrl"] == url
    attrs = queue_attributes(sqs, url, "QueueArn")
    assert attrs == {"QueueArn": f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}"}


def test_queue_names_are_case_sensitive(sqs):
    base = unique_name("Case")
    upper = sqs.create_queue(QueueName=base.upper())["QueueUrl"]
    lower = sqs.create_queue(QueueName=base.lower())["QueueUrl"]
    assert upper != lower
    assert sqs.get_queue_url(QueueName=base.upper())["QueueUrl"] == upper


def test_name_of_80_characters_is_accepted(sqs, server):
    name = unique_name("long")
    name = name + "x" * (80 - len(name))
    assert len(name) == 80
    assert sqs.create_queue(QueueName=name)["QueueUrl"] == server.queue_url(name)


@pytest.mark.parametrize(
    "name",
    ["has space", "x" * 81, "bad!char", "dot.name", "slash/name", "ünicode"],
    ids=["space", "81-chars", "bang", "dot", "slash", "non-ascii"],
)
def test_invalid_queue_names_are_rejected(sqs, name):
    expect_error(INVALID_PARAMETER_VALUE, sqs.create_queue, QueueName=name, status=400)


def test_create_is_idempotent_with_same_attributes(sqs):
    name = unique_name("idem")
    attributes = {"VisibilityTimeout": "45", "DelaySeconds": "1"}
    first = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    second = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    assert first == second
    plain = unique_name("idem-plain")
    assert sqs.create_queue(QueueName=plain)["QueueUrl"] == sqs.create_queue(QueueName=plain)["QueueUrl"]


def test_create_with_different_attributes_fails(sqs):
    name = unique_name("exists")
    url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "45"})["QueueUrl"]
    expect_error(
        QUEUE_ALREADY_EXISTS,
        sqs.create_queue,
        QueueName=name,
        Attributes={"VisibilityTimeout": "46"},
        exception="QueueNameExists",
        status=400,
    )
    # The existing queue is untouched.
    assert queue_attributes(sqs, url, "VisibilityTimeout") == {"VisibilityTimeout": "45"}


def test_create_applies_attributes(sqs):
    url = sqs.create_queue(
        QueueName=unique_name("attrs"),
        Attributes={
            "VisibilityTimeout": "120",
            "MaximumMessageSize": "2048",
            "MessageRetentionPeriod": "600",
            "DelaySeconds": "3",
            "ReceiveMessageWaitTimeSeconds": "4",
        },
    )["QueueUrl"]
    attrs = queue_attributes(sqs, url)
    assert attrs["VisibilityTimeout"] == "120"
    assert attrs["MaximumMessageSize"] == "2048"
    assert attrs["MessageRetentionPeriod"] == "600"
    assert attrs["DelaySeconds"] == "3"
    assert attrs["ReceiveMessageWaitTimeSeconds"] == "4"


def test_delete_queue_then_it_does_not_exist(sqs):
    name = unique_name("del")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    sqs.delete_queue(QueueUrl=url)
    err = expect_error(NON_EXISTENT_QUEUE, sqs.get_queue_url, QueueName=name, exception="QueueDoesNotExist", status=400)
    if protocol_of(sqs) == "json":
        # botocore's JSON parser puts the x-amzn-query-error code in Error.Code and the
        # __type shape in Error.QueryErrorCode (the API reference, common errors (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/CommonErrors.html)).
        assert err.response["Error"]["Code"] == "AWS.SimpleQueueService.NonExistentQueue"
        assert err.response["Error"].get("QueryErrorCode") == "QueueDoesNotExist"
    expect_error(NON_EXISTENT_QUEUE, sqs.send_message, QueueUrl=url, MessageBody="x", exception="QueueDoesNotExist")
    expect_error(NON_EXISTENT_QUEUE, sqs.delete_queue, QueueUrl=url, exception="QueueDoesNotExist")
    listed = sqs.list_queues(QueueNamePrefix=name).get("QueueUrls", [])
    assert url not in listed


def test_unknown_queue_errors(sqs, server):
    missing = server.queue_url(unique_name("missing"))
    expect_error(NON_EXISTENT_QUEUE, sqs.get_queue_url, QueueName=unique_name("missing"), exception="QueueDoesNotExist")
    expect_error(NON_EXISTENT_QUEUE, sqs.get_queue_attributes, QueueUrl=missing, AttributeNames=["All"])
    expect_error(NON_EXISTENT_QUEUE, sqs.receive_message, QueueUrl=missing)
    expect_error(NON_EXISTENT_QUEUE, sqs.purge_queue, QueueUrl=missing)


def test_recreate_within_60_seconds_is_rejected(sqs):
    name = unique_name("recreate")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    sqs.delete_queue(QueueUrl=url)
    expect_error(QUEUE_DELETED_RECENTLY, sqs.create_queue, QueueName=name, exception="QueueDeletedRecently", status=400)


def test_list_queues_by_prefix(sqs, server):
    prefix = unique_name("lst")
    names = [f"{prefix}-{i}" for i in range(3)]
    urls = {sqs.create_queue(QueueName=n)["QueueUrl"] for n in names}
    other = sqs.create_queue(QueueName=unique_name("lsu"))["QueueUrl"]
    resp = sqs.list_queues(QueueNamePrefix=prefix)
    assert set(resp["QueueUrls"]) == urls
    assert "NextToken" not in resp, "no NextToken without MaxResults"
    assert all(u.startswith(f"{server.url}/{ACCOUNT_ID}/") for u in resp["QueueUrls"])
    # The prefix is matched against the name; the full listing holds both.
    everything = sqs.list_queues()
    assert urls | {other} <= set(everything["QueueUrls"])
    assert "NextToken" not in everything
    # No match: no QueueUrls (or an empty list).
    assert sqs.list_queues(QueueNamePrefix=unique_name("none")).get("QueueUrls", []) == []


def test_list_queues_paging(sqs):
    prefix = unique_name("page")
    urls = {sqs.create_queue(QueueName=f"{prefix}-{i}")["QueueUrl"] for i in range(5)}
    first = sqs.list_queues(QueueNamePrefix=prefix, MaxResults=2)
    assert len(first["QueueUrls"]) == 2
    assert first.get("NextToken"), "a truncated page must carry a NextToken"
    seen = list(first["QueueUrls"])
    token = first["NextToken"]
    for _ in range(10):
        page = sqs.list_queues(QueueNamePrefix=prefix, MaxResults=2, NextToken=token)
        assert len(page.get("QueueUrls", [])) <= 2
        seen += page.get("QueueUrls", [])
        token = page.get("NextToken")
        if not token:
            break
    assert not token, "paging did not end"
    assert len(seen) == len(set(seen)), f"a queue was listed twice: {seen}"
    assert set(seen) == urls
    # The botocore paginator (PageSize -> MaxResults, NextToken) sees the same set.
    paged = [u for page in sqs.get_paginator("list_queues").paginate(QueueNamePrefix=prefix, PaginationConfig={"PageSize": 1}) for u in page.get("QueueUrls", [])]
    assert sorted(paged) == sorted(urls)


def test_list_queues_max_results_out_of_range(sqs):
    expect_error(INVALID_PARAMETER_VALUE, sqs.list_queues, MaxResults=1001)


def test_default_attributes(sqs, queue_url):
    before = int(time.time())
    attrs = queue_attributes(sqs, queue_url, "All")
    for name, value in DEFAULTS.items():
        assert attrs.get(name) == value, f"{name}: {attrs.get(name)!r}"
    assert attrs["QueueArn"] == f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{queue_url.rsplit('/', 1)[1]}"
    for counter in ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"):
        assert attrs.get(counter) == "0", f"{counter}: {attrs.get(counter)!r}"
    created = int(attrs["CreatedTimestamp"])
    modified = int(attrs["LastModifiedTimestamp"])
    # Epoch seconds (not milliseconds), around now.
    assert abs(created - before) < 300, created
    assert created <= modified and abs(modified - before) < 300, (created, modified)
    assert "FifoQueue" not in attrs or attrs["FifoQueue"] == "false"


def test_get_attributes_without_names_is_empty(sqs, queue_url):
    assert sqs.get_queue_attributes(QueueUrl=queue_url).get("Attributes", {}) == {}


def test_get_selected_attributes_only(sqs, queue_url):
    attrs = queue_attributes(sqs, queue_url, "VisibilityTimeout", "DelaySeconds")
    assert attrs == {"VisibilityTimeout": "30", "DelaySeconds": "0"}


def test_set_attributes(sqs, queue_url):
    created = int(queue_attributes(sqs, queue_url, "CreatedTimestamp")["CreatedTimestamp"])
    sqs.set_queue_attributes(
        QueueUrl=queue_url,
        Attributes={
            "VisibilityTimeout": "60",
            "MaximumMessageSize": "1024",
            "MessageRetentionPeriod": "1209600",
            "DelaySeconds": "900",
            "ReceiveMessageWaitTimeSeconds": "20",
        },
    )
    attrs = queue_attributes(sqs, queue_url, "All")
    assert attrs["VisibilityTimeout"] == "60"
    assert attrs["MaximumMessageSize"] == "1024"
    assert attrs["MessageRetentionPeriod"] == "1209600"
    assert attrs["DelaySeconds"] == "900"
    assert attrs["ReceiveMessageWaitTimeSeconds"] == "20"
    assert int(attrs["LastModifiedTimestamp"]) >= created
    assert int(attrs["CreatedTimestamp"]) == created


@pytest.mark.parametrize(
    "name,value",
    [
        ("VisibilityTimeout", "43201"),
        ("VisibilityTimeout", "-1"),
        ("VisibilityTimeout", "abc"),
        ("MaximumMessageSize", "1023"),
        ("MaximumMessageSize", "1048577"),
        ("MessageRetentionPeriod", "59"),
        ("MessageRetentionPeriod", "1209601"),
        ("DelaySeconds", "901"),
        ("ReceiveMessageWaitTimeSeconds", "21"),
    ],
)
def test_invalid_attribute_values(sqs, queue_url, name, value):
    expect_error("InvalidAttributeValue", sqs.set_queue_attributes, QueueUrl=queue_url, Attributes={name: value}, status=400)
    expect_error("InvalidAttributeValue", sqs.create_queue, QueueName=unique_name("badattr"), Attributes={name: value})
    assert queue_attributes(sqs, queue_url, name)[name] == DEFAULTS[name]


def test_unknown_attribute_names(sqs, queue_url):
    expect_error(
        "InvalidAttributeName", sqs.set_queue_attributes, QueueUrl=queue_url, Attributes={"Bogus": "1"}, exception="InvalidAttributeName", status=400
    )
    expect_error("InvalidAttributeName", sqs.get_queue_attributes, QueueUrl=queue_url, AttributeNames=["Bogus"], exception="InvalidAttributeName")
    expect_error("InvalidAttributeName", sqs.create_queue, QueueName=unique_name("badname"), Attributes={"Bogus": "1"})


def test_message_counters(sqs, queue_url):
    sqs.send_message(QueueUrl=queue_url, MessageBody="visible-1")
    sqs.send_message(QueueUrl=queue_url, MessageBody="visible-2")
    sqs.send_message(QueueUrl=queue_url, MessageBody="delayed", DelaySeconds=600)
    received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1, VisibilityTimeout=600, WaitTimeSeconds=2)
    assert len(received["Messages"]) == 1
    assert received["Messages"][0]["Body"] in {"visible-1", "visible-2"}
    names = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed")
    expected = {"ApproximateNumberOfMessages": "1", "ApproximateNumberOfMessagesNotVisible": "1", "ApproximateNumberOfMessagesDelayed": "1"}
    wait_for(lambda: queue_attributes(sqs, queue_url, *names) == expected, timeout=5)
    assert queue_attributes(sqs, queue_url, *names) == expected


def test_purge_queue(sqs, queue_url):
    for i in range(3):
        sqs.send_message(QueueUrl=queue_url, MessageBody=f"m{i}")
    in_flight = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1, VisibilityTimeout=600, WaitTimeSeconds=2)
    assert len(in_flight["Messages"]) == 1
    sqs.purge_queue(QueueUrl=queue_url)
    names = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed")
    zero = {n: "0" for n in names}
    wait_for(lambda: queue_attributes(sqs, queue_url, *names) == zero, timeout=5)
    assert queue_attributes(sqs, queue_url, *names) == zero
    assert sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []) == []
    # A second purge within 60 s is refused (403).
    expect_error(PURGE_IN_PROGRESS, sqs.purge_queue, QueueUrl=queue_url, exception="PurgeQueueInProgress", status=403)
    # Messages sent after the purge survive it.
    sqs.send_message(QueueUrl=queue_url, MessageBody="after")
    after = receive_until(sqs, queue_url, 1, timeout=10)
    assert [m["Body"] for m in after] == ["after"]
