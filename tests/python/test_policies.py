"""Accounts and policies with boto3: a producer-only key, another account reaching a queue only
through its Policy, explicit denies, and AccessDenied as botocore reports it, in both protocols.
The keys and their policies live in the credentials file of `signed_server`: the session's server
in authenticated runs, a server of their own otherwise.

The Rust end-to-end tests (crates/holdfast/tests/e2e/policies.rs) run the same cases with
aws-sdk-sqs and docs/security.md's examples; these check the wire shape of every refusal for the
Python clients.
"""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from holdfast_testlib import ACCOUNT_ID, PARTNER_ACCOUNT_ID, REGION, unique_name


@pytest.fixture(params=["json", "query"])
def protocol(request) -> str:
    return request.param


@pytest.fixture
def sqs(client_as, protocol):
    """The suite's root key, on the signed server."""
    return client_as(protocol)


def denied(call, *args, **kwargs) -> None:
    with pytest.raises(ClientError) as raised:
        call(*args, **kwargs)
    error = raised.value.response
    assert error["Error"]["Code"] == "AccessDenied", error
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403, error
    assert "is not authorized to perform" in error["Error"]["Message"]


def allow(principal: str, action: str, queue_arn: str, effect: str = "Allow", **extra) -> str:
    statement = {"Effect": effect, "Principal": {"AWS": principal}, "Action": action, "Resource": queue_arn, **extra}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def test_a_producer_key_only_sends(sqs, client_as, protocol):
    url = sqs.create_queue(QueueName=unique_name("policy-"))["QueueUrl"]
    other = sqs.create_queue(QueueName=unique_name("private-"))["QueueUrl"]
    producer = client_as(protocol, "producer")
    producer.send_message(QueueUrl=url, MessageBody="lead")
    result = producer.send_message_batch(QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "b"}])
    assert [e["Id"] for e in result["Successful"]] == ["a"]
    denied(producer.receive_message, QueueUrl=url)
    denied(producer.send_message, QueueUrl=other, MessageBody="x")
    denied(producer.list_queues)
    denied(producer.purge_queue, QueueUrl=url)
    denied(producer.delete_queue, QueueUrl=url)
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["SenderId"])
    assert sorted(m["Attributes"]["SenderId"] for m in messages["Messages"]) == ["producer", "producer"]


def test_another_account_needs_the_queue_policy(sqs, client_as, protocol):
    name = unique_name("shared-")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}"
    partner = client_as(protocol, "partner")

    own = partner.create_queue(QueueName=name)["QueueUrl"]
    assert own.endswith(f"/{PARTNER_ACCOUNT_ID}/{name}") and url.endswith(f"/{ACCOUNT_ID}/{name}")
    assert url not in partner.list_queues(QueueNamePrefix=name).get("QueueUrls", [])
    denied(partner.send_message, QueueUrl=url, MessageBody="x")
    denied(partner.get_queue_url, QueueName=name, QueueOwnerAWSAccountId=ACCOUNT_ID)

    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": allow(PARTNER_ACCOUNT_ID, ["sqs:SendMessage", "sqs:GetQueueUrl"], arn)})
    assert partner.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=ACCOUNT_ID)["QueueUrl"] == url
    partner.send_message(QueueUrl=url, MessageBody="from the partner")
    denied(partner.receive_message, QueueUrl=url)
    message = sqs.receive_message(QueueUrl=url, AttributeNames=["SenderId"])["Messages"][0]
    assert (message["Body"], message["Attributes"]["SenderId"]) == ("from the partner", PARTNER_ACCOUNT_ID)

    sqs.add_permission(QueueUrl=url, Label="reads", AWSAccountIds=[PARTNER_ACCOUNT_ID], Actions=["ReceiveMessage"])
    partner.receive_message(QueueUrl=url)
    sqs.remove_permission(QueueUrl=url, Label="reads")
    denied(partner.receive_message, QueueUrl=url)
    partner.delete_queue(QueueUrl=own)


def test_an_explicit_deny_wins_over_the_root_key(sqs):
    name = unique_name("deny-")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}"
    plain_http = {"Condition": {"Bool": {"aws:SecureTransport": "false"}}}
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": allow("*", "sqs:SendMessage", arn, effect="Deny", **plain_http)})
    denied(sqs.send_message, QueueUrl=url, MessageBody="x")
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": ""})
    sqs.send_message(QueueUrl=url, MessageBody="x")


def test_a_policy_that_does_not_parse_is_refused(sqs):
    url = sqs.create_queue(QueueName=unique_name("badpolicy-"))["QueueUrl"]
    for bad in ["{", json.dumps({"Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}]}), "x" * 8193]:
        with pytest.raises(ClientError) as raised:
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": bad})
        assert raised.value.response["Error"]["Code"] == "InvalidAttributeValue"
