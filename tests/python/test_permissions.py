"""AddPermission and RemovePermission maintain the queue's Policy attribute as an IAM policy
document (the API reference, SetQueueAttributes, CreateQueue), over both protocols."""

from __future__ import annotations

import json

import pytest

from holdfast_testlib import (
    INVALID_PARAMETER_VALUE,
    NON_EXISTENT_QUEUE,
    OVER_LIMIT,
    expect_error,
    queue_arn_of,
    queue_attributes,
    unique_name,
)


def _policy(sqs, url):
    attrs = queue_attributes(sqs, url, "Policy")
    assert "Policy" in attrs, "the queue has a Policy attribute"
    policy = json.loads(attrs["Policy"])
    # AddPermission starts from the document AWS writes, with the 2008 policy-language version.
    assert policy["Version"] in ("2008-10-17", "2012-10-17")
    assert isinstance(policy["Statement"], list)
    return policy


def _statements(sqs, url):
    return {s["Sid"]: s for s in _policy(sqs, url)["Statement"]}


def test_add_permission_creates_a_policy(sqs, queue_url):
    assert "Policy" not in queue_attributes(sqs, queue_url)
    sqs.add_permission(QueueUrl=queue_url, Label="send-only", AWSAccountIds=["111122223333"], Actions=["SendMessage"])
    policy = _policy(sqs, queue_url)
    assert policy["Version"] == "2008-10-17", "the version AWS writes"
    assert policy["Statement"] == [
        {
            "Sid": "send-only",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
            "Action": "SQS:SendMessage",
            "Resource": queue_arn_of(sqs, queue_url),
        }
    ]
    # Also part of All.
    assert json.loads(queue_attributes(sqs, queue_url)["Policy"]) == policy


def test_several_accounts_and_actions_are_lists(sqs, queue_url):
    sqs.add_permission(
        QueueUrl=queue_url,
        Label="consumers",
        AWSAccountIds=["111122223333", "444455556666"],
        Actions=["ReceiveMessage", "DeleteMessage", "ChangeMessageVisibility"],
    )
    statement = _statements(sqs, queue_url)["consumers"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"AWS": ["arn:aws:iam::111122223333:root", "arn:aws:iam::444455556666:root"]}
    assert statement["Action"] == ["SQS:ReceiveMessage", "SQS:DeleteMessage", "SQS:ChangeMessageVisibility"]
    assert statement["Resource"] == queue_arn_of(sqs, queue_url)


def test_wildcard_action(sqs, queue_url):
    sqs.add_permission(QueueUrl=queue_url, Label="everything", AWSAccountIds=["111122223333"], Actions=["*"])
    assert _statements(sqs, queue_url)["everything"]["Action"] == "SQS:*"


def test_one_statement_per_label(sqs, queue_url):
    sqs.add_permission(QueueUrl=queue_url, Label="first", AWSAccountIds=["111122223333"], Actions=["SendMessage"])
    sqs.add_permission(QueueUrl=queue_url, Label="second", AWSAccountIds=["444455556666"], Actions=["ReceiveMessage"])
    statements = _policy(sqs, queue_url)["Statement"]
    assert [s["Sid"] for s in statements] == ["first", "second"]
    assert statements[1]["Principal"] == {"AWS": "arn:aws:iam::444455556666:root"}
    assert statements[1]["Action"] == "SQS:ReceiveMessage"


def test_duplicate_label(sqs, queue_url):
    sqs.add_permission(QueueUrl=queue_url, Label="dup", AWSAccountIds=["111122223333"], Actions=["SendMessage"])
    before = _policy(sqs, queue_url)
    expect_error(
        INVALID_PARAMETER_VALUE,
        sqs.add_permission,
        QueueUrl=queue_url,
        Label="dup",
        AWSAccountIds=["444455556666"],
        Actions=["ReceiveMessage"],
        status=400,
    )
    assert _policy(sqs, queue_url) == before


def test_at_most_seven_actions(sqs, queue_url):
    eight = [
        "SendMessage",
        "ReceiveMessage",
        "DeleteMessage",
        "ChangeMessageVisibility",
        "GetQueueAttributes",
        "GetQueueUrl",
        "ListDeadLetterSourceQueues",
        "PurgeQueue",
    ]
    expect_error(OVER_LIMIT, sqs.add_permission, QueueUrl=queue_url, Label="many", AWSAccountIds=["111122223333"], Actions=eight, status=403)
    assert "Policy" not in queue_attributes(sqs, queue_url)
    sqs.add_permission(QueueUrl=queue_url, Label="seven", AWSAccountIds=["111122223333"], Actions=eight[:7])
    assert _statements(sqs, queue_url)["seven"]["Action"] == [f"SQS:{a}" for a in eight[:7]]


def test_remove_permission(sqs, queue_url):
    sqs.add_permission(QueueUrl=queue_url, Label="keep", AWSAccountIds=["111122223333"], Actions=["SendMessage"])
    sqs.add_permission(QueueUrl=queue_url, Label="drop", AWSAccountIds=["444455556666"], Actions=["ReceiveMessage"])
    kept = _statements(sqs, queue_url)["keep"]
    sqs.remove_permission(QueueUrl=queue_url, Label="drop")
    assert _policy(sqs, queue_url)["Statement"] == [kept]
    # The last removal removes the Policy attribute.
    sqs.remove_permission(QueueUrl=queue_url, Label="keep")
    assert "Policy" not in queue_attributes(sqs, queue_url)
    assert "Policy" not in queue_attributes(sqs, queue_url, "Policy")


def test_remove_unknown_label(sqs, queue_url):
    expect_error(INVALID_PARAMETER_VALUE, sqs.remove_permission, QueueUrl=queue_url, Label="nothing-here", status=400)
    sqs.add_permission(QueueUrl=queue_url, Label="present", AWSAccountIds=["111122223333"], Actions=["SendMessage"])
    before = _policy(sqs, queue_url)
    expect_error(INVALID_PARAMETER_VALUE, sqs.remove_permission, QueueUrl=queue_url, Label="absent")
    assert _policy(sqs, queue_url) == before


def test_label_can_be_reused_after_removal(sqs, queue_url):
    sqs.add_permission(QueueUrl=queue_url, Label="again", AWSAccountIds=["111122223333"], Actions=["SendMessage"])
    sqs.remove_permission(QueueUrl=queue_url, Label="again")
    sqs.add_permission(QueueUrl=queue_url, Label="again", AWSAccountIds=["444455556666"], Actions=["GetQueueUrl"])
    statement = _statements(sqs, queue_url)["again"]
    assert statement["Principal"] == {"AWS": "arn:aws:iam::444455556666:root"}
    assert statement["Action"] == "SQS:GetQueueUrl"


def test_permissions_on_fifo_queue(sqs, make_queue):
    url = make_queue("perm", fifo=True)
    sqs.add_permission(QueueUrl=url, Label="fifo", AWSAccountIds=["111122223333"], Actions=["SendMessage"])
    assert _statements(sqs, url)["fifo"]["Resource"] == queue_arn_of(sqs, url)


@pytest.mark.parametrize("label", ["has space", "x" * 81, "dot.ted"], ids=["space", "too-long", "dot"])
def test_invalid_label(sqs, queue_url, label):
    expect_error(INVALID_PARAMETER_VALUE, sqs.add_permission, QueueUrl=queue_url, Label=label, AWSAccountIds=["111122223333"], Actions=["SendMessage"])
    assert "Policy" not in queue_attributes(sqs, queue_url)


def test_permissions_on_missing_queue(sqs, server):
    url = server.queue_url(unique_name("missing"))
    expect_error(NON_EXISTENT_QUEUE, sqs.add_permission, QueueUrl=url, Label="l", AWSAccountIds=["111122223333"], Actions=["SendMessage"])
    expect_error(NON_EXISTENT_QUEUE, sqs.remove_permission, QueueUrl=url, Label="l")
