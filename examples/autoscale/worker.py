#!/usr/bin/env python3
"""A consumer for the autoscaling example: receives from the queue named on the command line,
takes --work-ms per message, deletes it, and on SIGTERM finishes the message in hand and exits."""

from __future__ import annotations

import argparse
import os
import signal
import time

import boto3


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("queue")
    parser.add_argument("--work-ms", type=float, default=100)
    args = parser.parse_args()
    sqs = boto3.client("sqs", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    url = sqs.get_queue_url(QueueName=args.queue)["QueueUrl"]
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    while not stopping:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=1).get("Messages", []):
            time.sleep(args.work_ms / 1000)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


if __name__ == "__main__":
    main()
