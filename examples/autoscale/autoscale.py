#!/usr/bin/env python3
"""Scales a fleet of consumer processes on a holdfast (or SQS) queue's backlog.

The rule is KEDA's `aws-sqs-queue` scaler's, so what this does on one machine is what a
ScaledObject does on Kubernetes (docs/autoscaling.md):

    backlog  = ApproximateNumberOfMessages + ApproximateNumberOfMessagesNotVisible
               (in flight counts: those messages are still being worked on)
    workers  = ceil(backlog / --per-worker), within --min and --max;
               0 only while backlog <= --activation (scale to zero when idle)

Each worker is a process started with the command after `--`; scaling down sends SIGTERM to
the newest ones, which finish their current message and exit. `--source cloudwatch` reads the
same figures from holdfast's CloudWatch API (GetMetricData over AWS/SQS) instead of
GetQueueAttributes, as KEDA's `aws-cloudwatch` scaler would.

    python examples/autoscale/autoscale.py --endpoint-url http://127.0.0.1:9324 \\
        --queue jobs --per-worker 10 --max 5 -- python examples/autoscale/worker.py jobs

Every decision is printed as one line: `scale 0 -> 5 (backlog 48)`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import signal
import subprocess
import sys
import time

import boto3


def backlog_from_attributes(sqs, queue_url: str, in_flight: bool) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)["Attributes"]
    visible = int(attributes["ApproximateNumberOfMessages"])
    return visible + (int(attributes["ApproximateNumberOfMessagesNotVisible"]) if in_flight else 0)


def backlog_from_cloudwatch(cloudwatch, queue: str, in_flight: bool) -> int:
    """The latest one-minute Maximum of each gauge (holdfast answers the open minute live)."""
    now = dt.datetime.now(dt.timezone.utc)
    metrics = ["ApproximateNumberOfMessagesVisible"] + (["ApproximateNumberOfMessagesNotVisible"] if in_flight else [])
    queries = [
        {
            "Id": f"m{i}",
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/SQS",
                    "MetricName": metric,
                    "Dimensions": [{"Name": "QueueName", "Value": queue}],
                },
                "Period": 60,
                "Stat": "Maximum",
            },
        }
        for i, metric in enumerate(metrics)
    ]
    answer = cloudwatch.get_metric_data(
        MetricDataQueries=queries, StartTime=now - dt.timedelta(minutes=5), EndTime=now + dt.timedelta(minutes=1)
    )
    # Newest first: the first value of each result is the latest minute.
    return sum(int(result["Values"][0]) for result in answer["MetricDataResults"] if result["Values"])


def desired(backlog: int, per_worker: int, minimum: int, maximum: int, activation: int) -> int:
    if backlog <= activation:
        return minimum
    return max(minimum, min(maximum, math.ceil(backlog / per_worker)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint-url", required=True)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--queue", required=True, help="queue name")
    parser.add_argument("--per-worker", type=int, default=5, help="backlog one worker is meant to handle (queueLength)")
    parser.add_argument("--min", type=int, default=0, dest="minimum")
    parser.add_argument("--max", type=int, default=10, dest="maximum")
    parser.add_argument("--activation", type=int, default=0, help="backlog at or below which --min workers run")
    parser.add_argument("--no-in-flight", action="store_true", help="count visible messages only")
    parser.add_argument("--source", choices=["attributes", "cloudwatch"], default="attributes")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between looks")
    parser.add_argument("--cooldown", type=float, default=30.0, help="seconds to wait before scaling down")
    parser.add_argument("--run-for", type=float, default=0, help="stop after this many seconds (0: until interrupted)")
    parser.add_argument("worker", nargs=argparse.REMAINDER, help="-- the worker command")
    args = parser.parse_args()
    command = args.worker[1:] if args.worker[:1] == ["--"] else args.worker
    if not command:
        parser.error("give the worker command after --")

    client = lambda service: boto3.client(service, endpoint_url=args.endpoint_url, region_name=args.region)  # noqa: E731
    sqs = client("sqs")
    queue_url = sqs.get_queue_url(QueueName=args.queue)["QueueUrl"]
    cloudwatch = client("cloudwatch") if args.source == "cloudwatch" else None

    workers: list[subprocess.Popen] = []
    stopping = False
    last_busy = time.monotonic()

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    started = time.monotonic()
    while not stopping and (args.run_for <= 0 or time.monotonic() - started < args.run_for):
        workers = [w for w in workers if w.poll() is None]
        in_flight = not args.no_in_flight
        if cloudwatch is not None:
            backlog = backlog_from_cloudwatch(cloudwatch, args.queue, in_flight)
        else:
            backlog = backlog_from_attributes(sqs, queue_url, in_flight)
        want = desired(backlog, args.per_worker, args.minimum, args.maximum, args.activation)
        if want >= len(workers):
            last_busy = time.monotonic()
        # Up at once; down only after the cooldown, as KEDA and the HPA do.
        if want > len(workers) or (want < len(workers) and time.monotonic() - last_busy >= args.cooldown):
            print(f"scale {len(workers)} -> {want} (backlog {backlog})", flush=True)
            while len(workers) < want:
                workers.append(subprocess.Popen(command))
            while len(workers) > want:
                workers.pop().terminate()
        time.sleep(args.interval)
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
