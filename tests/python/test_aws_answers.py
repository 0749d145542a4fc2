"""Behaviours brought in line with AWS's recorded answers (docs/compatibility.md, "Against AWS's
recorded answers"): regions and the forms a QueueUrl may take, receipt-handle rules, FIFO group
order, encryption attribute defaults, trace headers, and the GET corner of the Query protocol."""

from __future__ import annotations

import time

import pytest

from holdfast_testlib import (
    ACCOUNT_ID,
    INVALID_PARAMETER_VALUE,
    expect_error,
    http,
    parse_xml,
    presign_url,
    protocol_of,
    queue_arn_of,
    queue_attributes,
    receive_one,
    redrive_policy,
    unique_name,
)

# --- regions and addressing -------------------------------------------------------------------


def test_a_name_in_two_regions_is_two_queues(sqs, client_in):
    away = client_in(protocol_of(sqs), "eu-central-1")
    name = unique_name("regional")
    home_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    away_url = away.create_queue(QueueName=name)["QueueUrl"]
    try:
        assert home_url != away_url
        assert away_url.endswith(f"/eu-central-1/{ACCOUNT_ID}/{name}")
        assert queue_arn_of(away, away_url) == f"arn:aws:sqs:eu-central-1:{ACCOUNT_ID}:{name}"
        assert sqs.get_queue_url(QueueName=name)["QueueUrl"] == home_url
        assert away.get_queue_url(QueueName=name)["QueueUrl"] == away_url
        assert away.list_queues(QueueNamePrefix=name)["QueueUrls"] == [away_url]
        assert sqs.list_queues(QueueNamePrefix=name)["QueueUrls"] == [home_url]
        # The URL decides, whatever region the client signs for.
        sqs.send_message(QueueUrl=away_url, MessageBody="to eu")
        assert receive_one(away, away_url)["Body"] == "to eu"
    finally:
        sqs.delete_queue(QueueUrl=home_url)
        away.delete_queue(QueueUrl=away_url)


def test_queue_url_may_be_a_bare_name_or_any_endpoint_form(sqs, queue_url):
    name = queue_url.rsplit("/", 1)[1]
    for address in (name, f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT_ID}/{name}", f"/{ACCOUNT_ID}/{name}"):
        sqs.send_message(QueueUrl=address, MessageBody=address)
    bodies = set()
    for _ in range(3):
        bodies.add(receive_one(sqs, queue_url, VisibilityTimeout=60)["Body"])
    assert len(bodies) == 3


def test_a_dead_letter_queue_may_not_be_in_another_region(sqs, client_in):
    away = client_in(protocol_of(sqs), "eu-west-1")
    dlq = away.create_queue(QueueName=unique_name("dlq"))["QueueUrl"]
    try:
        policy = redrive_policy(queue_arn_of(away, dlq), 3)
        expect_error(INVALID_PARAMETER_VALUE, sqs.create_queue, QueueName=unique_name("src"), Attributes={"RedrivePolicy": policy})
    finally:
        away.delete_queue(QueueUrl=dlq)


def test_a_queue_may_be_its_own_dead_letter_queue(sqs, queue_url):
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"RedrivePolicy": redrive_policy(queue_arn_of(sqs, queue_url), 1)})
    sqs.send_message(QueueUrl=queue_url, MessageBody="stays")
    for _ in range(3):
        assert receive_one(sqs, queue_url, VisibilityTimeout=0)["Body"] == "stays"


# --- the Query protocol over GET ---------------------------------------------------------------


def test_a_get_without_an_action_is_an_unknown_operation(server, json_client):
    url = json_client.create_queue(QueueName=unique_name("get"))["QueueUrl"]
    response = http("GET", presign_url("GET", url, []))
    assert response.status == 404
    assert b"<UnknownOperationException" in response.body


def test_account_actions_on_a_queue_url_are_invalid_actions(json_client):
    url = json_client.create_queue(QueueName=unique_name("get"))["QueueUrl"]
    for action in ("CreateQueue", "ListQueues"):
        response = http("GET", presign_url("GET", url, [("Action", action), ("QueueName", unique_name("x"))]))
        assert response.status == 400
        error = parse_xml(response.body).find("Error")
        assert error.findtext("Code") == "InvalidAction"
        assert error.findtext("Message") == f"The action {action} is not valid for this endpoint."


# --- receipt handles ---------------------------------------------------------------------------


def test_an_expired_handle_nobody_replaced_still_changes_visibility(sqs, queue_url):
    sqs.send_message(QueueUrl=queue_url, MessageBody="m")
    handle = receive_one(sqs, queue_url, VisibilityTimeout=0)["ReceiptHandle"]
    sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=handle, VisibilityTimeout=60)
    assert "Messages" not in sqs.receive_message(QueueUrl=queue_url), "hidden again by the change"
    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=handle)
    error = expect_error(
        INVALID_PARAMETER_VALUE, sqs.change_message_visibility, QueueUrl=queue_url, ReceiptHandle=handle, VisibilityTimeout=5
    )
    assert error.response["Error"]["Message"].endswith("Message does not exist or is not available for visibility timeout change.")


def test_a_fifo_handle_whose_timeout_ran_out_does_not_delete(sqs, make_queue):
    url = make_queue("expired", {"ContentBasedDeduplication": "true", "VisibilityTimeout": "1"}, fifo=True)
    sqs.send_message(QueueUrl=url, MessageBody="m", MessageGroupId="g")
    handle = receive_one(sqs, url)["ReceiptHandle"]
    time.sleep(1.2)
    error = expect_error(INVALID_PARAMETER_VALUE, sqs.delete_message, QueueUrl=url, ReceiptHandle=handle)
    assert error.response["Error"]["Message"].endswith("The receipt handle has expired.")
    assert receive_one(sqs, url)["Body"] == "m", "the message stayed"


# --- FIFO ----------------------------------------------------------------------------------------


def test_fifo_groups_take_turns_in_the_order_they_became_available(sqs, make_queue):
    url = make_queue("turns", {"ContentBasedDeduplication": "true"}, fifo=True)
    for body, group in (("g1-m1", "g1"), ("g2-m1", "g2"), ("g2-m2", "g2"), ("g3-m1", "g3"), ("g1-m2", "g1")):
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId=group)
    first = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=3, VisibilityTimeout=0)["Messages"]
    assert [m["Body"] for m in first] == ["g1-m1", "g1-m2", "g2-m1"], "group by group"
    everything = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)["Messages"]
    assert [m["Body"] for m in everything] == ["g3-m1", "g1-m1", "g1-m2", "g2-m1", "g2-m2"]


def test_a_fifo_send_with_zero_delay_keeps_the_queue_delay(sqs, make_queue):
    url = make_queue("delayed", {"ContentBasedDeduplication": "true", "DelaySeconds": "2"}, fifo=True)
    sqs.send_message(QueueUrl=url, MessageBody="m", MessageGroupId="g", DelaySeconds=0)
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    assert receive_one(sqs, url, timeout=5)["Body"] == "m"


# --- attributes ----------------------------------------------------------------------------------


def test_sqs_managed_encryption_is_on_until_a_kms_key_is_chosen(sqs, queue_url):
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    assert attributes["SqsManagedSseEnabled"] == "true"
    assert "KmsDataKeyReusePeriodSeconds" not in attributes
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"KmsMasterKeyId": "alias/orders"})
    attributes = queue_attributes(sqs, queue_url, "All")
    assert (attributes["SqsManagedSseEnabled"], attributes["KmsDataKeyReusePeriodSeconds"]) == ("false", "300")
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"KmsMasterKeyId": ""})
    attributes = queue_attributes(sqs, queue_url, "All")
    assert "KmsMasterKeyId" not in attributes and "KmsDataKeyReusePeriodSeconds" not in attributes
    assert attributes["SqsManagedSseEnabled"] == "false"


def test_an_unset_attribute_asked_for_alone_gives_no_attributes(sqs, queue_url):
    assert "Attributes" not in sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["Policy"])


# --- messages ------------------------------------------------------------------------------------


def test_the_trace_header_becomes_aws_trace_header(sqs, queue_url):
    trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"

    def add_header(request, **_):
        request.headers["X-Amzn-Trace-Id"] = trace

    sqs.meta.events.register("before-sign.sqs.SendMessage", add_header)
    try:
        sqs.send_message(QueueUrl=queue_url, MessageBody="traced")
    finally:
        sqs.meta.events.unregister("before-sign.sqs.SendMessage", add_header)
    message = receive_one(sqs, queue_url, AttributeNames=["AWSTraceHeader"])
    assert message["Attributes"]["AWSTraceHeader"] == trace


def test_attribute_names_may_use_any_script(sqs, queue_url):
    sqs.send_message(QueueUrl=queue_url, MessageBody="m", MessageAttributes={"attr.øßä": {"DataType": "String", "StringValue": "v"}})
    message = receive_one(sqs, queue_url, MessageAttributeNames=["All"])
    assert list(message["MessageAttributes"]) == ["attr.øßä"]
    for bad in ("bad§name", "bad!name"):
        expect_error(
            INVALID_PARAMETER_VALUE,
            sqs.send_message,
            QueueUrl=queue_url,
            MessageBody="m",
            MessageAttributes={bad: {"DataType": "String", "StringValue": "v"}},
        )


def test_a_fair_queue_returns_the_tenant(sqs, queue_url):
    sqs.send_message(QueueUrl=queue_url, MessageBody="m", MessageGroupId="tenant-7")
    assert receive_one(sqs, queue_url, AttributeNames=["All"])["Attributes"]["MessageGroupId"] == "tenant-7"
