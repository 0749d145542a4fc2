"""Celery's broker library, kombu, with its real SQS transport pointed at holdfast (docs/compatibility.md, "Clients tested", kombu row).

kombu talks to SQS two ways: boto3 for CreateQueue/SendMessage/DeleteMessage/... and, when an
event loop (hub) is set as Celery's worker does, its own pycurl-based client
(`kombu.asynchronous.aws.sqs.connection.AsyncSQSConnection`) for ReceiveMessage, which builds
JSON or Query requests by hand depending on the installed botocore model (the Query protocol (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-making-api-requests-xml.html): Query mode
POSTs to the queue path with no `Version` and `MessageSystemAttributeName.{n}`; DeleteMessage and
ChangeMessageVisibility are presigned GETs). The async test runs once per protocol: `query` puts
the Query-era botocore model first on AWS_DATA_PATH, so boto3 and kombu's own client speak
Query/XML. The boto3-driven (synchronous) consume path runs on JSON only: kombu 5.7.0 passes
`MessageSystemAttributeNames` to boto3's receive_message, which the Query-era model (botocore
1.34.89) rejects client-side (ParamValidationError) before any request is sent.
"""

from __future__ import annotations

import time
import uuid
from urllib.parse import urlsplit

import pytest
from kombu import Connection, Consumer, Exchange, Producer, Queue
from kombu.asynchronous import Hub, set_event_loop
from vine import promise

from holdfast_testlib import ACCESS_KEY, SECRET_KEY

BODIES = [
    {"n": i, "text": f"message {i}", "unicode": "äöü ✓ 🚀", "crlf": "line1\r\nline2\rend", "xml": "<a>&amp;</a>"}
    for i in range(7)
]
# kombu 5.7.0's curl client uses pycurl options pycurl 7.49 deprecates; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:kombu.asynchronous.http.curl")
HUB_DEADLINE = 10  # seconds an async test waits for the hub to finish its requests


@pytest.fixture(params=["json", "query"])
def protocol(request, monkeypatch):
    """The botocore model kombu's boto3 clients (and so its async client) are built from."""
    if request.param == "query":
        monkeypatch.setenv("AWS_DATA_PATH", str(request.getfixturevalue("query_data_path")))
    else:
        monkeypatch.delenv("AWS_DATA_PATH", raising=False)
    return request.param


@pytest.fixture
def connect(server, json_client, protocol):
    """A factory of kombu connections to holdfast, `connect(**transport_options)`. Each test gets
    its own queue-name prefix; its connections are closed and its queues deleted afterwards."""
    prefix = f"kombu-{uuid.uuid4().hex[:12]}-"
    parts = urlsplit(server.url)
    secure = parts.scheme == "https"
    connections = []

    def make(**options) -> Connection:
        transport_options = {
            "region": "us-east-1",
            "is_secure": secure,
            "queue_name_prefix": prefix,
            "wait_time_seconds": 1,
            "polling_interval": 0.1,
            # One attempt, so an error is seen as the server sent it.
            "client-config": {"retries": {"total_max_attempts": 1, "mode": "standard"}, "connect_timeout": 5},
        }
        transport_options.update(options)
        conn = Connection(
            f"sqs://{ACCESS_KEY}:{SECRET_KEY}@{parts.hostname}:{parts.port}",
            transport_options=transport_options,
        )
        connections.append(conn)
        channel = conn.default_channel
        assert channel.sqs().meta.service_model.protocol == protocol
        assert channel.sqs().meta.endpoint_url == server.url
        return conn

    make.prefix = prefix
    yield make
    for conn in connections:
        try:
            conn.release()
        except Exception:
            pass
    for url in json_client.list_queues(QueueNamePrefix=prefix).get("QueueUrls", []):
        try:
            json_client.delete_queue(QueueUrl=url)
        except Exception:
            pass


@pytest.fixture
def hub():
    """An event loop set as current, as Celery's worker does: kombu's SQS channels created while
    it is set receive through the async (pycurl) client."""
    try:
        import pycurl  # noqa: F401  (kombu's async HTTP client; pinned in requirements.txt)
    except ImportError as exc:
        pytest.fail(f"kombu's async SQS client needs pycurl: {exc}")
    loop = Hub()
    set_event_loop(loop)
    yield loop
    set_event_loop(None)
    loop.close()


def _counts(json_client, url):
    attrs = json_client.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


def _queue_url(json_client, prefix, name):
    return json_client.get_queue_url(QueueName=prefix + name)["QueueUrl"]


def _sort(bodies):
    return sorted(bodies, key=lambda b: b["n"])


@pytest.mark.parametrize("protocol", ["json"], indirect=True)
@pytest.mark.parametrize("base64", [True, False], ids=["base64", "raw-body"])
def test_publish_consume_ack(connect, json_client, base64):
    """Producer publishes N messages; a Consumer receives them through drain_events (boto3
    ReceiveMessage) and acks each (DeleteMessage); the bodies and headers come back intact."""
    conn = connect(sqs_base64_encoding=base64, visibility_timeout=30)
    exchange = Exchange("tasks", type="direct")
    queue = Queue("tasks", exchange, routing_key="tasks")
    producer = Producer(conn.default_channel, exchange=exchange, serializer="json")
    for body in BODIES:
        producer.publish(body, routing_key="tasks", declare=[queue], headers={"task": "t.add", "n": body["n"]})

    url = _queue_url(json_client, connect.prefix, "tasks")
    assert json_client.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"] == {
        "VisibilityTimeout": "30"
    }
    assert conn.default_channel._size("tasks") == len(BODIES)

    received = []

    def on_message(body, message):
        assert message.headers == {"task": "t.add", "n": body["n"]}
        assert message.content_type == "application/json"
        received.append(body)
        message.ack()

    deadline = time.monotonic() + 10
    with Consumer(conn.default_channel, queues=[queue], callbacks=[on_message], accept=["json"]):
        while len(received) < len(BODIES) and time.monotonic() < deadline:
            try:
                conn.drain_events(timeout=2)
            except TimeoutError:
                pass
    assert _sort(received) == BODIES
    assert _counts(json_client, url) == (0, 0), "acked messages must be deleted"


@pytest.mark.parametrize("protocol", ["json"], indirect=True)
def test_unacked_message_is_redelivered(connect, json_client):
    """A message received and not acked comes back after the queue's visibility timeout (which
    kombu sets from its `visibility_timeout` option at CreateQueue), with a higher receive count."""
    conn = connect(visibility_timeout=1)
    with conn.SimpleQueue("redeliver") as q:
        q.put({"job": 42, "note": "not acked the first time"})
        url = _queue_url(json_client, connect.prefix, "redeliver")
        assert json_client.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"] == {
            "VisibilityTimeout": "1"
        }

        first = q.get(block=True, timeout=5)
        received_at = time.monotonic()
        assert first.payload == {"job": 42, "note": "not acked the first time"}
        assert first.delivery_info["sqs_message"]["Attributes"]["ApproximateReceiveCount"] == "1"
        assert _counts(json_client, url) == (0, 1)

        second = q.get(block=True, timeout=5)
        elapsed = time.monotonic() - received_at
        assert second.payload == first.payload
        assert elapsed >= 0.5, f"redelivered after {elapsed:.2f}s, before the 1 s visibility timeout"
        assert second.delivery_info["sqs_message"]["MessageId"] == first.delivery_info["sqs_message"]["MessageId"]
        assert second.delivery_info["sqs_message"]["Attributes"]["ApproximateReceiveCount"] == "2"
        assert second.delivery_tag != first.delivery_tag, "each receive must get a new receipt handle"

        second.ack()
        assert _counts(json_client, url) == (0, 0)
        assert q.qsize() == 0


def _text(body) -> str:
    if body is None:
        return ""
    return body.decode() if isinstance(body, bytes) else str(body)


def _run_until(loop, done, what):
    deadline = time.monotonic() + HUB_DEADLINE
    while not done() and time.monotonic() < deadline:
        loop.run_once()
    assert done(), f"timed out after {HUB_DEADLINE}s waiting for {what} through kombu's async client"


def _result(loop, make_request, what):
    """Runs one AsyncSQSConnection request on the hub and returns its result (or raises its error)."""
    outcome = {}
    p = promise(lambda value: outcome.setdefault("value", value))
    p.then(None, on_error=lambda exc: outcome.setdefault("error", exc))
    make_request(p)
    _run_until(loop, lambda: outcome, what)
    if "error" in outcome:
        raise AssertionError(f"{what} failed: {outcome['error']!r}")
    return outcome["value"]


def test_async_client_receive_change_visibility_delete(connect, json_client, hub, protocol):
    """The hub-driven path a Celery worker uses: consuming schedules ReceiveMessage through kombu's
    own pycurl client; its ChangeMessageVisibility and DeleteMessage requests (presigned GETs in
    Query mode) are then issued directly on the same AsyncSQSConnection."""
    conn = connect(visibility_timeout=30)
    channel = conn.default_channel
    assert channel.hub is hub
    queue = Queue("async", Exchange("async", type="direct"), routing_key="async")
    producer = Producer(channel, exchange=queue.exchange, serializer="json")
    for body in BODIES:
        producer.publish(body, routing_key="async", declare=[queue])
    url = _queue_url(json_client, connect.prefix, "async")

    async_sqs = channel.asynsqs(queue=connect.prefix + "async")
    sent = []
    original_mexe = async_sqs._mexe

    def recording_mexe(request, sender=None, callback=None):
        sent.append((request.method, request.url, request.headers.get("X-Amz-Target"), request.body))
        return original_mexe(request, sender=sender, callback=callback)

    async_sqs._mexe = recording_mexe

    received = []
    consumer = Consumer(channel, queues=[queue], callbacks=[lambda body, message: received.append((body, message))],
                        accept=["json"])
    consumer.consume()
    _run_until(hub, lambda: len(received) >= len(BODIES), f"{len(BODIES)} messages")
    consumer.cancel()
    # Let a long poll still in flight finish (it would hide a message made visible below).
    http = hub._current_http_client
    _run_until(hub, lambda: not http._pending and len(http._free_list) == http.max_clients, "idle HTTP client")

    assert _sort([body for body, _ in received]) == BODIES
    receives = [r for r in sent if "ReceiveMessage" in (r[2] or "") or "Action=ReceiveMessage" in _text(r[3])]
    assert receives, f"no ReceiveMessage went through kombu's async client; it sent: {sent!r}"
    for body, message in received:
        assert message.delivery_info["sqs_message"]["Attributes"]["ApproximateReceiveCount"] == "1"
    assert _counts(json_client, url) == (0, len(BODIES))

    # ChangeMessageVisibility to 0 on one message, then it can be received again at once.
    class _Queue:  # AsyncSQSConnection.change_message_visibility takes an object with the URL as .id
        id = url

    handle = received[0][1].delivery_tag
    status = _result(
        hub,
        lambda p: async_sqs.change_message_visibility(_Queue, handle, 0, callback=p),
        "ChangeMessageVisibility",
    )
    assert status == 200
    assert _counts(json_client, url) == (1, len(BODIES) - 1)
    again = json_client.receive_message(QueueUrl=url, WaitTimeSeconds=1, VisibilityTimeout=30)["Messages"]
    assert len(again) == 1 and again[0]["MessageId"] == received[0][1].delivery_info["sqs_message"]["MessageId"]

    # DeleteMessage through the async client for every message (the re-received one by its new handle).
    handles = [again[0]["ReceiptHandle"]] + [message.delivery_tag for _, message in received[1:]]
    for handle in handles:
        status = _result(hub, lambda p, h=handle: async_sqs.delete_message(url, h, callback=p), "DeleteMessage")
        assert status == 200
    assert _counts(json_client, url) == (0, 0)
    for _, message in received:  # deleted above: release kombu's unacked bookkeeping without another call
        channel.qos.ack(message.delivery_tag)

    methods = {(r[0], "Target" if r[2] else "query") for r in sent}
    if protocol == "query":
        # the Query protocol: kombu's hand-built Query ReceiveMessage has no Version and uses the plural-less
        # MessageSystemAttributeName.{n}; the server must accept exactly that.
        form = _text(receives[0][3])
        assert "MessageSystemAttributeName.1=ApproximateReceiveCount" in form and "Version=" not in form, form
        assert ("GET", "query") in methods and all(r[2] is None for r in sent), sent
        assert all(urlsplit(r[1]).path.rstrip("/") == urlsplit(url).path for r in sent), sent
    else:
        assert {m for m, _ in methods} == {"POST"} and all(r[2] for r in sent), sent
