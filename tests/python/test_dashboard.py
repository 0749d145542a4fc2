"""The Grafana dashboard (packaging/grafana/holdfast-dashboard.json) asks only for series the
server's /metrics really publishes, with labels it really sets."""

from __future__ import annotations

import json
import os
import re
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "packaging/grafana/holdfast-dashboard.json"
PROMQL_FUNCTIONS = {"sum", "by", "rate", "histogram_quantile", "label_values", "le", "action", "outcome"}


def metric_names(expression: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers followed by `{`, `[` or `)`/`,`, minus the
    functions and label names this dashboard uses."""
    candidates = set(re.findall(r"\b([a-z_][a-z0-9_]*)\s*(?=\{|\[|,|\))", expression))
    return {name for name in candidates if name not in PROMQL_FUNCTIONS and "_" in name}


def test_every_panel_queries_a_published_series(server, sqs, queue_url):
    # A message with a group id on a standard queue makes it a fair queue, whose series appear too.
    sqs.send_message(QueueUrl=queue_url, MessageBody="for the scrape", MessageGroupId="tenant-a")
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as response:
        exposition = response.read().decode()
    published = {line.split("{")[0].split(" ")[0] for line in exposition.splitlines() if line and not line.startswith("#")}
    labels = set(re.findall(r'([a-z_]+)="', exposition))

    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    expressions += [v["definition"] for v in dashboard["templating"]["list"] if v.get("definition")]
    assert len(expressions) >= 10
    # The store panels show the SQLite engine's writer; the memory engine has no commits or file.
    memory_engine = os.environ.get("HOLDFAST_STORAGE") == "memory"
    for expression in expressions:
        names = metric_names(expression)
        assert names, expression
        for name in names:
            if memory_engine and name.startswith("holdfast_store_"):
                assert name not in published, f"{name}: the memory engine publishes no store figures"
                continue
            assert name in published, f"{name} (in {expression!r}) is not in /metrics"
        for label in re.findall(r"([a-z_]+)\s*(?:=~|!=|=)\s*\"", expression):
            # `job` is Prometheus's own label, added at scrape time.
            assert label in labels or label == "job", f"label {label} (in {expression!r}) is never set"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"


def test_the_scrape_passes_promtool(server, sqs, queue_url):
    """`promtool check metrics`, Prometheus's own linter, finds nothing wrong with a scrape that
    has every family in it: queue gauges and counters (a fair queue's too), requests, latency
    histograms, the store's figures and the process's."""
    import os
    import shutil
    import subprocess

    promtool = shutil.which("promtool")
    if promtool is None:
        reason = "promtool is not installed (Debian package prometheus)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    sqs.send_message(QueueUrl=queue_url, MessageBody="plain")
    sqs.send_message(QueueUrl=queue_url, MessageBody="for a tenant", MessageGroupId="tenant-a")
    sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1)
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as response:
        exposition = response.read()
    for family in ["sqs_number_of_messages_sent_total", "holdfast_request_duration_seconds", "process_cpu_seconds_total"]:
        assert f"# TYPE {family} ".encode() in exposition, family
    checked = subprocess.run([promtool, "check", "metrics"], input=exposition, capture_output=True, timeout=60)
    assert checked.returncode == 0, (checked.stdout + checked.stderr).decode()
    assert checked.stdout.strip() == b"" and checked.stderr.strip() == b"", (checked.stdout + checked.stderr).decode()
