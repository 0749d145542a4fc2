"""The CloudWatch API over the queues' metrics (namespace AWS/SQS), in each of the three protocols
botocore's CloudWatch model lists: Smithy RPC v2 CBOR (what botocore and the AWS CLI pick today),
AWS JSON 1.0 and Query/XML (older SDKs). The JSON and Query clients use botocore's own model with
only its protocol changed, so the shapes are the real ones.

The minute still open is answered from memory, so nothing here waits for a minute to end; the
stored minutes are covered by the Rust service tests (tests/service/metrics.rs)."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import subprocess
import sys
from pathlib import Path

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError

from conftest import CLIENT_CONFIG
from holdfast_testlib import ACCESS_KEY, REGION, SECRET_KEY, unique_name

AWS = Path(sys.executable).parent / "aws"
PROTOCOLS = ["smithy-rpc-v2-cbor", "json", "query"]


def botocore_cloudwatch_model() -> dict:
    data = Path(botocore.__file__).parent / "data" / "cloudwatch" / "2010-08-01"
    plain, packed = data / "service-2.json", data / "service-2.json.gz"
    return json.loads(plain.read_text() if plain.exists() else gzip.decompress(packed.read_bytes()))


@pytest.fixture(scope="session")
def cloudwatch_data_paths(tmp_path_factory) -> dict[str, Path]:
    """Per protocol, a botocore data directory whose CloudWatch model speaks only that protocol."""
    model = botocore_cloudwatch_model()
    assert model["metadata"]["protocols"] == PROTOCOLS, "botocore's CloudWatch model changed its protocols"
    paths = {}
    for protocol in PROTOCOLS:
        root = tmp_path_factory.mktemp(f"cloudwatch-{protocol}")
        target = root / "cloudwatch" / "2010-08-01"
        target.mkdir(parents=True)
        variant = json.loads(json.dumps(model))
        variant["metadata"]["protocol"] = protocol
        variant["metadata"]["protocols"] = [protocol]
        (target / "service-2.json").write_text(json.dumps(variant))
        paths[protocol] = root
    return paths


def cloudwatch_client(server, data_path: Path | None, key: str = ACCESS_KEY, secret: str = SECRET_KEY):
    core = botocore.session.Session()
    if data_path is not None:
        core.get_component("data_loader").search_paths.insert(0, str(data_path))
    session = boto3.session.Session(botocore_session=core)
    return session.client(
        "cloudwatch",
        endpoint_url=server.url,
        region_name=REGION,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=CLIENT_CONFIG,
    )


@pytest.fixture(params=PROTOCOLS)
def cloudwatch(request, server, cloudwatch_data_paths):
    client = cloudwatch_client(server, cloudwatch_data_paths[request.param])
    assert client.meta.service_model.protocol == request.param
    return client


def window(minutes_back: int = 10):
    now = dt.datetime.now(dt.timezone.utc)
    return now - dt.timedelta(minutes=minutes_back), now + dt.timedelta(minutes=1)


def queue_dimension(name: str) -> list[dict]:
    return [{"Name": "QueueName", "Value": name}]


def statistics(cloudwatch, queue: str, metric: str, **kwargs) -> list[dict]:
    start, end = window()
    arguments = {"Statistics": ["SampleCount", "Sum", "Average", "Minimum", "Maximum"], **kwargs}
    answer = cloudwatch.get_metric_statistics(
        Namespace="AWS/SQS",
        MetricName=metric,
        Dimensions=queue_dimension(queue),
        StartTime=start,
        EndTime=end,
        Period=60,
        **arguments,
    )
    assert answer["Label"] == metric
    return answer["Datapoints"]


def total(datapoints: list[dict], statistic: str = "Sum") -> float:
    return sum(point[statistic] for point in datapoints)


def test_queue_activity_shows_in_every_protocol(cloudwatch, json_client):
    sqs = json_client
    name = unique_name("cw")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    bodies = ["a" * 10, "b" * 100, "c" * 1000]
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=body)
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2)["Messages"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=received[0]["ReceiptHandle"])

    sent = statistics(cloudwatch, name, "NumberOfMessagesSent")
    assert total(sent) == 3
    assert all(point["Unit"] == "Count" and isinstance(point["Timestamp"], dt.datetime) for point in sent)
    assert total(statistics(cloudwatch, name, "NumberOfMessagesReceived")) == 2
    assert total(statistics(cloudwatch, name, "NumberOfMessagesDeleted")) == 1

    sizes = statistics(cloudwatch, name, "SentMessageSize", ExtendedStatistics=["p50", "p99"])
    assert len(sizes) in (1, 2), sizes  # the sends may straddle a minute's end
    assert total(sizes, "SampleCount") == 3 and total(sizes) == 1110
    assert min(p["Minimum"] for p in sizes) == 10 and max(p["Maximum"] for p in sizes) == 1000
    assert all(p["Unit"] == "Bytes" and set(p["ExtendedStatistics"]) == {"p50", "p99"} for p in sizes)

    # The gauges of the open minute are sampled when asked: 1 visible, 1 in flight.
    visible = statistics(cloudwatch, name, "ApproximateNumberOfMessagesVisible")
    assert visible and visible[-1]["Maximum"] == 1
    not_visible = statistics(cloudwatch, name, "ApproximateNumberOfMessagesNotVisible")
    assert not_visible and not_visible[-1]["Maximum"] == 1
    age = statistics(cloudwatch, name, "ApproximateAgeOfOldestMessage")
    assert age and age[-1]["Unit"] == "Seconds" and age[-1]["Maximum"] >= 0

    start, end = window()
    stat = lambda metric, statistic: {  # noqa: E731
        "Metric": {"Namespace": "AWS/SQS", "MetricName": metric, "Dimensions": queue_dimension(name)},
        "Period": 60,
        "Stat": statistic,
    }
    data = cloudwatch.get_metric_data(
        MetricDataQueries=[
            {"Id": "sent", "MetricStat": stat("NumberOfMessagesSent", "Sum")},
            {"Id": "size", "MetricStat": stat("SentMessageSize", "Maximum"), "Label": "biggest"},
            {"Id": "hidden", "MetricStat": stat("NumberOfMessagesSent", "Sum"), "ReturnData": False},
        ],
        StartTime=start,
        EndTime=end,
    )
    results = {r["Id"]: r for r in data["MetricDataResults"]}
    assert set(results) == {"sent", "size"}
    assert sum(results["sent"]["Values"]) == 3 and results["sent"]["StatusCode"] == "Complete"
    assert results["sent"]["Label"] == "NumberOfMessagesSent"
    assert results["size"]["Label"] == "biggest" and max(results["size"]["Values"]) == 1000
    stamps = results["sent"]["Timestamps"]
    assert stamps == sorted(stamps, reverse=True), "newest first by default"

    listed = cloudwatch.list_metrics(Namespace="AWS/SQS", Dimensions=[{"Name": "QueueName", "Value": name}])["Metrics"]
    names = {m["MetricName"] for m in listed}
    assert {"NumberOfMessagesSent", "ApproximateNumberOfMessagesVisible", "SentMessageSize"} <= names
    assert all(m["Dimensions"] == queue_dimension(name) for m in listed)
    assert cloudwatch.list_metrics(Namespace="AWS/EC2")["Metrics"] == []
    sqs.delete_queue(QueueUrl=url)


def test_empty_receives_count(cloudwatch, json_client):
    name = unique_name("cw-empty")
    url = json_client.create_queue(QueueName=name)["QueueUrl"]
    for _ in range(2):
        json_client.receive_message(QueueUrl=url, WaitTimeSeconds=0)
    assert total(statistics(cloudwatch, name, "NumberOfEmptyReceives")) == 2
    json_client.delete_queue(QueueUrl=url)


def test_other_namespaces_units_and_dimensions_have_no_data(cloudwatch, json_client):
    name = unique_name("cw-none")
    url = json_client.create_queue(QueueName=name)["QueueUrl"]
    json_client.send_message(QueueUrl=url, MessageBody="x")
    start, end = window()
    common = {"StartTime": start, "EndTime": end, "Period": 60, "Statistics": ["Sum"]}
    assert cloudwatch.get_metric_statistics(
        Namespace="AWS/EC2", MetricName="NumberOfMessagesSent", Dimensions=queue_dimension(name), **common
    )["Datapoints"] == []
    assert cloudwatch.get_metric_statistics(
        Namespace="AWS/SQS", MetricName="NumberOfMessagesSent", Dimensions=queue_dimension(name), Unit="Bytes", **common
    )["Datapoints"] == []
    assert cloudwatch.get_metric_statistics(
        Namespace="AWS/SQS", MetricName="NumberOfMessagesSent", Dimensions=[], **common
    )["Datapoints"] == []
    json_client.delete_queue(QueueUrl=url)


def error_code(call) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"]


def test_bad_requests_get_cloudwatch_errors(cloudwatch):
    start, end = window()
    base = {"Namespace": "AWS/SQS", "MetricName": "NumberOfMessagesSent", "Statistics": ["Sum"]}
    call = lambda **kw: lambda: cloudwatch.get_metric_statistics(**{**base, **kw})  # noqa: E731
    assert error_code(call(StartTime=start, EndTime=end, Period=61)) == "InvalidParameterValue"
    assert error_code(call(StartTime=end, EndTime=start, Period=60)) == "InvalidParameterValue"
    assert error_code(call(StartTime=end - dt.timedelta(days=2), EndTime=end, Period=60)) == "InvalidParameterCombination"
    assert error_code(call(StartTime=start, EndTime=end, Period=60, ExtendedStatistics=["p101"])) == "InvalidParameterValue"
    no_statistics = {k: v for k, v in base.items() if k != "Statistics"}
    assert error_code(
        lambda: cloudwatch.get_metric_statistics(**no_statistics, StartTime=start, EndTime=end, Period=60)
    ) == "MissingParameter"
    assert error_code(lambda: cloudwatch.list_metrics(NextToken="not-a-token")) == "InvalidNextToken"
    assert error_code(
        lambda: cloudwatch.get_metric_data(
            MetricDataQueries=[{"Id": "e1", "Expression": "SUM(METRICS())"}], StartTime=start, EndTime=end
        )
    ) == "InvalidParameterValue"
    assert error_code(
        lambda: cloudwatch.get_metric_data(
            MetricDataQueries=[
                {
                    "Id": "Upper",
                    "MetricStat": {"Metric": {"Namespace": "AWS/SQS", "MetricName": "X"}, "Period": 60, "Stat": "Sum"},
                }
            ],
            StartTime=start,
            EndTime=end,
        )
    ) == "InvalidParameterValue"
    # An operation holdfast does not answer.
    assert error_code(
        lambda: cloudwatch.put_metric_data(Namespace="Mine", MetricData=[{"MetricName": "m", "Value": 1.0}])
    ) == "InvalidAction"


def test_get_metric_data_pages_with_max_datapoints(cloudwatch, json_client):
    name = unique_name("cw-page")
    url = json_client.create_queue(QueueName=name)["QueueUrl"]
    json_client.send_message(QueueUrl=url, MessageBody="x")
    start, end = window()
    queries = [
        {
            "Id": f"m{i}",
            "MetricStat": {
                "Metric": {"Namespace": "AWS/SQS", "MetricName": metric, "Dimensions": queue_dimension(name)},
                "Period": 60,
                "Stat": "Sum",
            },
        }
        for i, metric in enumerate(["NumberOfMessagesSent", "SentMessageSize", "ApproximateNumberOfMessagesVisible"])
    ]
    values, token, pages = [], None, 0
    while True:
        extra = {"NextToken": token} if token else {}
        page = cloudwatch.get_metric_data(MetricDataQueries=queries, StartTime=start, EndTime=end, MaxDatapoints=1, **extra)
        pages += 1
        values += [v for r in page["MetricDataResults"] for v in r["Values"]]
        token = page.get("NextToken")
        if not token:
            break
        assert pages < 20
    # One datapoint a page: at least one each for the sends, the size and the visible gauge.
    assert pages >= 3 and len(values) == pages
    assert 1.0 in values
    json_client.delete_queue(QueueUrl=url)


def test_the_monitoring_command_works_verbatim(server, json_client):
    """The AWS CLI's command from the SQS overview, word for word (with the endpoint added)."""
    name = unique_name("MyStandardQueue")
    url = json_client.create_queue(QueueName=name)["QueueUrl"]
    json_client.send_message(QueueUrl=url, MessageBody="hello")
    start, end = window()
    command = [
        str(AWS), "cloudwatch", "get-metric-statistics", "--namespace", "AWS/SQS",
        "--metric-name", "ApproximateNumberOfMessagesVisible",
        "--start-time", start.strftime("%Y-%m-%dT%H:%M:%SZ"), "--end-time", end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "--period", "60", "--statistics", "Average", "--dimensions", f"Name=QueueName,Value={name}",
        "--endpoint-url", server.url, "--output", "json",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["Label"] == "ApproximateNumberOfMessagesVisible"
    assert answer["Datapoints"] and answer["Datapoints"][-1]["Average"] == 1.0
    json_client.delete_queue(QueueUrl=url)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_signed_requests_are_checked_as_for_sqs(signed_server, cloudwatch_data_paths, protocol):
    good = cloudwatch_client(signed_server, cloudwatch_data_paths[protocol])
    assert "Metrics" in good.list_metrics(Namespace="AWS/SQS")
    wrong = cloudwatch_client(signed_server, cloudwatch_data_paths[protocol], secret="not-the-secret")
    assert error_code(lambda: wrong.list_metrics()) == "SignatureDoesNotMatch"
    unknown = cloudwatch_client(signed_server, cloudwatch_data_paths[protocol], key="AKIANOBODY")
    assert error_code(lambda: unknown.list_metrics()) == "InvalidClientTokenId"
