"""The AWS CLI v1 (`aws sqs ...`) as a user runs it, in subprocesses with dummy credentials.

Each test runs twice: with the CLI's own model (AWS JSON 1.0), and with AWS_DATA_PATH pointing at
the Query-era model, so the CLI speaks Query/XML like an older install would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from holdfast_testlib import ACCESS_KEY, ACCOUNT_ID, REGION, SECRET_KEY, md5_hex, unique_name

AWS = Path(sys.executable).parent / "aws"


@pytest.fixture(params=["json", "query"])
def cli(request, server, query_data_path, tmp_path):
    """Runs `aws --endpoint-url <server> <args>`; returns (exit code, parsed stdout, stderr)."""
    if not AWS.exists():
        pytest.fail(f"aws CLI not found next to the interpreter: {AWS} (install tests/python/requirements.txt)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_PAGER": "",
            "HOME": str(tmp_path),  # no ~/.aws/models or cli cache from the developer
        }
    )
    if request.param == "query":
        env["AWS_DATA_PATH"] = str(query_data_path)

    def run(*args: str, check: bool = True, debug: bool = False):
        command = [str(AWS), "--endpoint-url", server.url, "--output", "json", *(["--debug"] if debug else []), *args]
        proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        if check:
            assert proc.returncode == 0, f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr[-3000:]}"
        out = json.loads(proc.stdout) if proc.stdout.strip() else None
        return proc.returncode, out, proc.stderr

    run.protocol = request.param
    return run


def test_cli_speaks_the_intended_protocol(cli):
    # botocore's debug log shows each request's headers and body parameters.
    _, out, stderr = cli("sqs", "list-queues", "--queue-name-prefix", unique_name("none"), debug=True)
    if cli.protocol == "query":
        assert "application/x-www-form-urlencoded" in stderr and "'Action': 'ListQueues'" in stderr
        assert "AmazonSQS.ListQueues" not in stderr
    else:
        assert "AmazonSQS.ListQueues" in stderr and "application/x-amz-json-1.0" in stderr
    assert out is None or out.get("QueueUrls", []) == []


def test_cli_queue_and_message_round_trip(cli, server):
    name = unique_name("cli")
    _, created, _ = cli("sqs", "create-queue", "--queue-name", name, "--attributes", "VisibilityTimeout=45")
    url = created["QueueUrl"]
    assert url == server.queue_url(name)

    _, got, _ = cli("sqs", "get-queue-url", "--queue-name", name)
    assert got["QueueUrl"] == url

    _, listed, _ = cli("sqs", "list-queues", "--queue-name-prefix", name)
    assert listed["QueueUrls"] == [url]

    _, attrs, _ = cli("sqs", "get-queue-attributes", "--queue-url", url, "--attribute-names", "All")
    assert attrs["Attributes"]["VisibilityTimeout"] == "45"
    assert attrs["Attributes"]["QueueArn"] == f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}"

    body = "hello from the CLI ✓ & <friends>"
    _, sent, _ = cli(
        "sqs",
        "send-message",
        "--queue-url",
        url,
        "--message-body",
        body,
        "--message-attributes",
        json.dumps({"kind": {"DataType": "String", "StringValue": "greeting"}}),
    )
    assert sent["MD5OfMessageBody"] == md5_hex(body)
    assert sent["MessageId"]

    _, received, _ = cli(
        "sqs",
        "receive-message",
        "--queue-url",
        url,
        "--attribute-names",
        "All",
        "--message-attribute-names",
        "All",
        "--wait-time-seconds",
        "5",
    )
    [message] = received["Messages"]
    assert message["Body"] == body
    assert message["MessageId"] == sent["MessageId"]
    assert message["MD5OfBody"] == md5_hex(body)
    assert message["MessageAttributes"] == {"kind": {"DataType": "String", "StringValue": "greeting"}}
    assert message["Attributes"]["ApproximateReceiveCount"] == "1"

    cli("sqs", "delete-message", "--queue-url", url, "--receipt-handle", message["ReceiptHandle"])
    _, attrs, _ = cli(
        "sqs",
        "get-queue-attributes",
        "--queue-url",
        url,
        "--attribute-names",
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
    )
    assert attrs["Attributes"] == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}

    cli("sqs", "delete-queue", "--queue-url", url)
    code, _, stderr = cli("sqs", "get-queue-url", "--queue-name", name, check=False)
    assert code != 0
    assert "AWS.SimpleQueueService.NonExistentQueue" in stderr


def test_cli_batch_and_purge(cli):
    _, created, _ = cli("sqs", "create-queue", "--queue-name", unique_name("clib"))
    url = created["QueueUrl"]
    entries = [{"Id": f"e{i}", "MessageBody": f"batch {i}"} for i in range(3)]
    _, sent, _ = cli("sqs", "send-message-batch", "--queue-url", url, "--entries", json.dumps(entries))
    assert sorted(e["Id"] for e in sent["Successful"]) == ["e0", "e1", "e2"]
    assert not sent.get("Failed")
    _, attrs, _ = cli("sqs", "get-queue-attributes", "--queue-url", url, "--attribute-names", "ApproximateNumberOfMessages")
    assert attrs["Attributes"] == {"ApproximateNumberOfMessages": "3"}
    cli("sqs", "purge-queue", "--queue-url", url)
    code, _, stderr = cli("sqs", "purge-queue", "--queue-url", url, check=False)
    assert code != 0 and "AWS.SimpleQueueService.PurgeQueueInProgress" in stderr


def test_cli_tags(cli):
    _, created, _ = cli("sqs", "create-queue", "--queue-name", unique_name("clit"), "--tags", "env=dev,team=core")
    url = created["QueueUrl"]
    _, tags, _ = cli("sqs", "list-queue-tags", "--queue-url", url)
    assert tags["Tags"] == {"env": "dev", "team": "core"}
    cli("sqs", "untag-queue", "--queue-url", url, "--tag-keys", "team")
    _, tags, _ = cli("sqs", "list-queue-tags", "--queue-url", url)
    assert tags["Tags"] == {"env": "dev"}
