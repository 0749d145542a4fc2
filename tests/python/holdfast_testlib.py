"""Helpers shared by the Python compatibility tests.

Nothing here talks to the server on its own: the MD5 digests (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-message-metadata.html#sqs-attributes-md5-message-digest-calculation), a small SigV4 signer
(Signature Version 4 (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html)) for the raw-HTTP tests, and assertion helpers for botocore errors. The digests and
the signer are checked against published vectors in test_protocol.py, so a failure
of a server test can be trusted to be the server's.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import json
import struct
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

import pytest
from botocore.exceptions import ClientError

ACCOUNT_ID = "000000000000"
REGION = "us-east-1"
ACCESS_KEY = "test"
SECRET_KEY = "test"


@dataclass(frozen=True)
class Key:
    """A key of the credentials file of authenticated runs, besides the suite's root key."""

    access_key_id: str
    secret: str
    account_id: str = ACCOUNT_ID
    user: str | None = None
    policy: str | None = None

    def toml(self) -> str:
        lines = [f'[[key]]\naccess_key_id = "{self.access_key_id}"\nsecret_access_key = "{self.secret}"\naccount_id = "{self.account_id}"\n']
        if self.user:
            lines.append(f'user = "{self.user}"\n')
        if self.policy:
            lines.append(f"policy = '''{self.policy}'''\n")
        return "".join(lines)


PARTNER_ACCOUNT_ID = "444455556666"
EXTRA_KEYS = {
    # May only send to queues named policy-*.
    "producer": Key(
        "AKIDPRODUCER",
        "producer-secret",
        user="producer",
        policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "sqs:SendMessage",
                        "Resource": f"arn:aws:sqs:*:{ACCOUNT_ID}:policy-*",
                    }
                ],
            }
        ),
    ),
    # The root key of another account.
    "partner": Key("AKIDPARTNER", "partner-secret", account_id=PARTNER_ACCOUNT_ID),
}

# Query codes (the API reference, common errors (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/CommonErrors.html)): botocore reports these as Error.Code on both protocols — on
# JSON through the x-amzn-query-error header, on Query from the XML <Code>.
NON_EXISTENT_QUEUE = "AWS.SimpleQueueService.NonExistentQueue"
QUEUE_ALREADY_EXISTS = "QueueAlreadyExists"
QUEUE_DELETED_RECENTLY = "AWS.SimpleQueueService.QueueDeletedRecently"
PURGE_IN_PROGRESS = "AWS.SimpleQueueService.PurgeQueueInProgress"
EMPTY_BATCH = "AWS.SimpleQueueService.EmptyBatchRequest"
TOO_MANY_ENTRIES = "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"
IDS_NOT_DISTINCT = "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"
INVALID_BATCH_ENTRY_ID = "AWS.SimpleQueueService.InvalidBatchEntryId"
INVALID_PARAMETER_VALUE = "InvalidParameterValue"
INVALID_ATTRIBUTE_NAME = "InvalidAttributeName"
INVALID_ATTRIBUTE_VALUE = "InvalidAttributeValue"
MISSING_PARAMETER = "MissingParameter"
RESOURCE_NOT_FOUND = "ResourceNotFoundException"
OVER_LIMIT = "OverLimit"


def unique_name(prefix: str = "t") -> str:
    """A queue name no other test (or earlier run against the same data dir) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def protocol_of(client) -> str:
    return client.meta.service_model.protocol


# --- MD5 digests (MD5 digests) -------------------------------------------------------------


def md5_hex(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def _length_prefixed(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def md5_of_attributes(attributes: Mapping[str, Mapping[str, Any]]) -> str:
    """MD5OfMessageAttributes / MD5OfMessageSystemAttributes over boto-shaped attributes
    (`{"name": {"DataType": ..., "StringValue": str | "BinaryValue": bytes}}`)."""
    buf = b""
    for name in sorted(attributes):
        value = attributes[name]
        buf += _length_prefixed(name.encode("utf-8")) + _length_prefixed(value["DataType"].encode("utf-8"))
        if "StringValue" in value:
            buf += b"\x01" + _length_prefixed(value["StringValue"].encode("utf-8"))
        elif "BinaryValue" in value:
            raw = value["BinaryValue"]
            if isinstance(raw, str):
                raw = raw.encode("utf-8")
            buf += b"\x02" + _length_prefixed(raw)
        else:
            raise ValueError(f"attribute {name!r} has neither StringValue nor BinaryValue")
    return hashlib.md5(buf).hexdigest()


# --- botocore error assertions -------------------------------------------------------------


def expect_error(
    code: str,
    call: Callable[..., Any],
    *args: Any,
    exception: str | None = None,
    status: int | None = None,
    **kwargs: Any,
) -> ClientError:
    """Calls `call` and asserts it fails with Error.Code `code` (and, if given, the botocore
    exception class named `exception` and the HTTP `status`). Returns the ClientError."""
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    err = info.value
    error = err.response.get("Error", {})
    assert error.get("Code") == code, f"expected error code {code!r}, got {error!r}"
    if exception is not None:
        assert type(err).__name__ == exception, f"expected exception class {exception}, got {type(err).__name__}"
    http_status = err.response["ResponseMetadata"]["HTTPStatusCode"]
    if status is not None:
        assert http_status == status, f"expected HTTP {status} for {code}, got {http_status}"
    if 400 <= http_status < 500:
        assert error.get("Type") == "Sender", f"client errors must have fault Sender: {error!r}"
    return err


# --- receiving -----------------------------------------------------------------------------


def receive_until(client, queue_url: str, count: int, timeout: float = 15.0, **kwargs: Any) -> list[dict]:
    """Receives until `count` distinct messages arrived (or `timeout` passed); returns them."""
    got: dict[str, dict] = {}
    deadline = time.monotonic() + timeout
    kwargs.setdefault("MaxNumberOfMessages", 10)
    kwargs.setdefault("WaitTimeSeconds", 1)
    while len(got) < count and time.monotonic() < deadline:
        for message in client.receive_message(QueueUrl=queue_url, **kwargs).get("Messages", []):
            got[message["MessageId"]] = message
    return list(got.values())


def receive_one(client, queue_url: str, timeout: float = 15.0, **kwargs: Any) -> dict:
    kwargs.setdefault("MaxNumberOfMessages", 1)
    messages = receive_until(client, queue_url, 1, timeout=timeout, **kwargs)
    assert messages, f"no message arrived on {queue_url} within {timeout}s"
    assert len(messages) == 1, messages
    return messages[0]


def queue_attributes(client, queue_url: str, *names: str) -> dict[str, str]:
    return client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=list(names) or ["All"]).get("Attributes", {})


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.2) -> Any:
    """Polls `predicate` until it returns something truthy; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def queue_arn_of(client, queue_url: str) -> str:
    return queue_attributes(client, queue_url, "QueueArn")["QueueArn"]


def message_count(client, queue_url: str) -> int:
    """ApproximateNumberOfMessages (visible messages) as an int."""
    return int(queue_attributes(client, queue_url, "ApproximateNumberOfMessages")["ApproximateNumberOfMessages"])


# --- dead-letter queues and message move tasks (dead-letter queues, StartMessageMoveTask) ----------------------------


def redrive_policy(target_arn: str, max_receive_count: int | str) -> str:
    """A RedrivePolicy attribute value; a str count is sent as a JSON string (`"3"`)."""
    return json.dumps({"deadLetterTargetArn": target_arn, "maxReceiveCount": max_receive_count})


def latest_move_task(client, source_arn: str) -> dict | None:
    results = client.list_message_move_tasks(SourceArn=source_arn).get("Results", [])
    return results[0] if results else None


def wait_for_move_task(client, source_arn: str, statuses: Iterable[str], timeout: float = 20.0) -> dict:
    """Polls ListMessageMoveTasks until the newest task of `source_arn` has one of `statuses`;
    returns that task entry, or fails after `timeout` seconds."""
    wanted = set(statuses)
    deadline = time.monotonic() + timeout
    while True:
        task = latest_move_task(client, source_arn)
        if task is not None and task.get("Status") in wanted:
            return task
        if time.monotonic() >= deadline:
            raise AssertionError(f"move task of {source_arn} did not reach {sorted(wanted)} within {timeout}s: {task!r}")
        time.sleep(0.2)


# --- SigV4 (Signature Version 4) for raw HTTP tests ---------------------------------------------------

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def _signing_key(secret: str, date: str, region: str, service: str = "sqs") -> bytes:
    key = _hmac(("AWS4" + secret).encode("utf-8"), date)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    return key


def _rfc3986(value: str) -> str:
    return urllib.parse.quote(value, safe="-_.~")


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    encoded = sorted((_rfc3986(k), _rfc3986(v)) for k, v in pairs if k != "X-Amz-Signature")
    return "&".join(f"{k}={v}" for k, v in encoded)


def _canonical_request(method: str, path: str, query: str, headers: Mapping[str, str], payload_hash: str) -> tuple[str, str]:
    lowered = {k.lower(): " ".join(str(v).strip().split()) for k, v in headers.items()}
    names = sorted(lowered)
    canonical_headers = "".join(f"{n}:{lowered[n]}\n" for n in names)
    signed = ";".join(names)
    uri = urllib.parse.quote(path or "/", safe="/~")
    return f"{method}\n{uri}\n{query}\n{canonical_headers}\n{signed}\n{payload_hash}", signed


def _string_to_sign(amz_date: str, scope: str, canonical_request: str) -> str:
    digest = hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()
    return f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{digest}"


def _amz_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def sign_headers(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    amz_date: str | None = None,
    access_key: str = ACCESS_KEY,
    secret_key: str = SECRET_KEY,
    region: str = REGION,
) -> dict[str, str]:
    """Header-form SigV4 (what botocore sends): returns `headers` plus Host, X-Amz-Date and
    Authorization, signing every header given plus host and x-amz-date."""
    amz_date = amz_date or _amz_now()
    parts = urllib.parse.urlsplit(url)
    signed_headers = dict(headers)
    signed_headers["Host"] = parts.netloc
    signed_headers["X-Amz-Date"] = amz_date
    query = canonical_query(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    canonical, signed = _canonical_request(method, parts.path, query, signed_headers, hashlib.sha256(body).hexdigest())
    scope = f"{amz_date[:8]}/{region}/sqs/aws4_request"
    signature = hmac.new(
        _signing_key(secret_key, amz_date[:8], region), _string_to_sign(amz_date, scope, canonical).encode(), hashlib.sha256
    ).hexdigest()
    signed_headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed}, Signature={signature}"
    )
    return signed_headers


def presign_url(
    method: str,
    url: str,
    params: Iterable[tuple[str, str]],
    *,
    amz_date: str | None = None,
    expires: int = 3600,
    access_key: str = ACCESS_KEY,
    secret_key: str = SECRET_KEY,
    region: str = REGION,
) -> str:
    """Presigned (query-string) SigV4, as kombu's Query-mode GETs use: returns the full URL."""
    amz_date = amz_date or _amz_now()
    parts = urllib.parse.urlsplit(url)
    scope = f"{amz_date[:8]}/{region}/sqs/aws4_request"
    pairs = list(params) + [
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
        ("X-Amz-Credential", f"{access_key}/{scope}"),
        ("X-Amz-Date", amz_date),
        ("X-Amz-Expires", str(expires)),
        ("X-Amz-SignedHeaders", "host"),
    ]
    canonical, _ = _canonical_request(method, parts.path, canonical_query(pairs), {"host": parts.netloc}, EMPTY_SHA256)
    signature = hmac.new(
        _signing_key(secret_key, amz_date[:8], region), _string_to_sign(amz_date, scope, canonical).encode(), hashlib.sha256
    ).hexdigest()
    query = urllib.parse.urlencode(pairs + [("X-Amz-Signature", signature)], quote_via=urllib.parse.quote)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


# --- raw HTTP ------------------------------------------------------------------------------

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class RawResponse:
    status: int
    headers: Any  # http.client.HTTPMessage: case-insensitive .get()
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body.decode("utf-8")) if self.body.strip() else {}

    def xml(self) -> ET.Element:
        return parse_xml(self.body)


def http(method: str, url: str, headers: Mapping[str, str] | None = None, body: bytes | None = None, timeout: float = 30) -> RawResponse:
    request = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    try:
        with _OPENER.open(request, timeout=timeout) as resp:
            return RawResponse(resp.status, resp.headers, resp.read())
    except urllib.error.HTTPError as err:
        return RawResponse(err.code, err.headers, err.read())


def json_call(endpoint: str, operation: str, payload: Mapping[str, Any]) -> RawResponse:
    """An AWS JSON 1.0 request as botocore builds it, signed in header form."""
    body = json.dumps(payload).encode("utf-8")
    url = endpoint.rstrip("/") + "/"
    headers = sign_headers(
        "POST",
        url,
        {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": f"AmazonSQS.{operation}"},
        body,
    )
    return http("POST", url, headers, body)


def query_post(url: str, params: Iterable[tuple[str, str]]) -> RawResponse:
    """A Query request as a form POST (botocore Query era: `+` for spaces), header-signed."""
    body = urllib.parse.urlencode(list(params)).encode("utf-8")
    headers = sign_headers("POST", url, {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}, body)
    return http("POST", url, headers, body)


def query_get(url: str, params: Iterable[tuple[str, str]]) -> RawResponse:
    """A Query request as a presigned GET with the parameters in the query string (kombu)."""
    return http("GET", presign_url("GET", url, params))


def parse_xml(data: bytes) -> ET.Element:
    """Parses an XML response and strips namespaces from tags, so paths read `Error/Code`."""
    root = ET.fromstring(data)
    for element in root.iter():
        if isinstance(element.tag, str) and "}" in element.tag:
            element.tag = element.tag.split("}", 1)[1]
    return root
