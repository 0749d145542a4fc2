"""The autoscaling example (examples/autoscale, docs/autoscaling.md) against a real server: a
backlog scales the consumer fleet out to its maximum, the fleet drains the queue, and an empty
queue scales it back to zero, reading the backlog from GetQueueAttributes (KEDA's aws-sqs-queue
rule) or from the CloudWatch API."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from holdfast_testlib import unique_name

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "autoscale"


@pytest.mark.parametrize("source", ["attributes", "cloudwatch"])
def test_a_backlog_scales_the_fleet_out_and_an_empty_queue_back_in(server, json_client, source):
    name = unique_name("autoscale")
    url = json_client.create_queue(QueueName=name)["QueueUrl"]
    for start in range(0, 60, 10):
        entries = [{"Id": str(i), "MessageBody": f"job {start + i}"} for i in range(10)]
        json_client.send_message_batch(QueueUrl=url, Entries=entries)

    command = [
        sys.executable, str(EXAMPLE / "autoscale.py"), "--endpoint-url", server.url, "--queue", name,
        "--per-worker", "10", "--max", "4", "--interval", "0.3", "--cooldown", "1", "--source", source,
        "--run-for", "60", "--", sys.executable, str(EXAMPLE / "worker.py"), name, "--work-ms", "50",
    ]  # fmt: skip
    env = {**os.environ, "AWS_ENDPOINT_URL": server.url}
    scaler = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    decisions: list[tuple[int, int, int]] = []
    deadline = time.monotonic() + 60
    try:
        for line in scaler.stdout:
            match = re.fullmatch(r"scale (\d+) -> (\d+) \(backlog (\d+)\)", line.strip())
            assert match, line
            decisions.append(tuple(int(g) for g in match.groups()))
            if decisions[-1][1] == 0 or time.monotonic() > deadline:
                break
    finally:
        scaler.terminate()
        _, errors = scaler.communicate(timeout=30)
    assert scaler.returncode == 0, errors
    assert decisions[0] == (0, 4, 60), f"60 messages at 10 per worker, capped at 4: {decisions}"
    assert decisions[-1][1:] == (0, 0), f"the drained queue scales to zero: {decisions}"
    assert json_client.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])[
        "Attributes"
    ]["ApproximateNumberOfMessages"] == "0"
    json_client.delete_queue(QueueUrl=url)
