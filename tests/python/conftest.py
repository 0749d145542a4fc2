"""Fixtures for the Python compatibility suite: one real holdfast server per session, and
boto3 clients speaking each of the two SQS wire protocols to it.

Environment:
  HOLDFAST_BIN      the binary to run (default <repo>/target/debug/holdfast)
  HOLDFAST_STORAGE  passed as `--storage <value>` (default: the server's default, durable SQLite)
  HOLDFAST_URL      use an already running server at this URL instead of spawning one
  HOLDFAST_NODES=N  start N servers on the same storage (a PostgreSQL URL in HOLDFAST_STORAGE)
                    behind a round-robin balancer (balancer.py): every request goes to the next
                    node, so a message sent through one is received and deleted through others
  HOLDFAST_TEST_AUTH=sigv4  start the server with a credentials file holding the suite's key, so
                    every request must carry a valid signature (every client here signs: boto3,
                    the AWS CLI, kombu, and holdfast_testlib's signer for raw HTTP)
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import boto3
import botocore.session
import pytest
from botocore.config import Config

from balancer import Balancer
from holdfast_testlib import ACCESS_KEY, ACCOUNT_ID, EXTRA_KEYS, REGION, SECRET_KEY, unique_name

REPO = Path(__file__).resolve().parents[2]
QUERY_ERA_MODEL = REPO / "crates" / "holdfast-protocol" / "model" / "service-2.query-era.json"
LISTENING = re.compile(r"listening on (http://\S+)")
STARTUP_TIMEOUT = 60
SHUTDOWN_TIMEOUT = 30

# Keep the developer's AWS configuration (profiles, endpoints, real credentials) out of every
# client this process or its subprocesses create.
for _name in [n for n in os.environ if n.startswith("AWS_")]:
    del os.environ[_name]
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
)

# No retries, so an error is seen as the server sent it; read timeout above the longest poll (20 s).
CLIENT_CONFIG = Config(
    retries={"total_max_attempts": 1, "mode": "standard"},
    connect_timeout=5,
    read_timeout=60,
)


@dataclass
class Server:
    url: str  # http://127.0.0.1:<port>, no trailing slash
    process: subprocess.Popen | None
    data_dir: Path | None
    stderr_path: Path | None

    def queue_url(self, name: str) -> str:
        return f"{self.url}/{ACCOUNT_ID}/{name}"

    @staticmethod
    def queue_arn(name: str) -> str:
        return f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}"

    def stderr_tail(self, limit: int = 4000) -> str:
        if self.stderr_path is None or not self.stderr_path.exists():
            return ""
        return self.stderr_path.read_text(errors="replace")[-limit:]


def _drain(stream, lines: queue.Queue) -> None:
    """Reads the server's stdout to the end, so the pipe never fills and blocks it."""
    for line in stream:
        lines.put(line)
    lines.put(None)


def authenticated() -> bool:
    """Whether this run requires every request to be signed (HOLDFAST_TEST_AUTH=sigv4)."""
    return os.environ.get("HOLDFAST_TEST_AUTH", "") == "sigv4"


def _run_server(base: Path, signed: bool):
    """Runs `holdfast serve` in `base` until the generator is closed, then checks that it shuts
    down gracefully. With `signed`, every request must be signed by a key of the suite's
    credentials file (its root key and EXTRA_KEYS)."""
    binary = Path(os.environ.get("HOLDFAST_BIN") or REPO / "target" / "debug" / "holdfast")
    if not binary.is_file():
        pytest.fail(f"holdfast binary not found at {binary}: run `cargo build -p holdfast` or set HOLDFAST_BIN")

    data_dir = base / "data"
    data_dir.mkdir()
    stderr_path = base / "server.stderr"
    command = [str(binary), "serve", "--bind", "127.0.0.1:0", "--data-dir", str(data_dir)]
    if os.environ.get("HOLDFAST_STORAGE"):
        command += ["--storage", os.environ["HOLDFAST_STORAGE"]]
    if signed:
        credentials = base / "credentials.toml"
        keys = f'[[key]]\naccess_key_id = "{ACCESS_KEY}"\nsecret_access_key = "{SECRET_KEY}"\n'
        credentials.write_text(keys + "".join(key.toml() for key in EXTRA_KEYS.values()))
        command += ["--credentials", str(credentials)]

    with open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_drain, args=(process.stdout, lines), daemon=True).start()

    url = None
    seen = []
    try:
        while url is None:
            line = lines.get(timeout=STARTUP_TIMEOUT)
            if line is None:
                break
            seen.append(line)
            match = LISTENING.search(line)
            if match:
                url = match.group(1).rstrip("/")
    except queue.Empty:
        pass
    srv = Server(url or "", process, data_dir, stderr_path)
    if url is None:
        process.kill()
        process.wait()
        pytest.fail(
            f"holdfast did not print 'listening on http://...' within {STARTUP_TIMEOUT}s "
            f"(exit code {process.returncode}); stdout: {''.join(seen)!r}; stderr tail:\n{srv.stderr_tail()}"
        )

    yield srv

    # Graceful shutdown is part of the contract: SIGTERM, then exit code 0.
    if process.poll() is not None:
        pytest.fail(f"holdfast exited early with code {process.returncode}; stderr tail:\n{srv.stderr_tail()}")
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=SHUTDOWN_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail(f"holdfast did not exit within {SHUTDOWN_TIMEOUT}s of SIGTERM; stderr tail:\n{srv.stderr_tail()}")
    assert code == 0, f"holdfast exited with code {code} after SIGTERM; stderr tail:\n{srv.stderr_tail()}"


def _run_nodes(tmp_path_factory, signed: bool, count: int):
    """`count` servers on the same storage behind a round-robin balancer; the first one stands for
    them all where a test looks at a process or its log."""
    runs = [_run_server(tmp_path_factory.mktemp(f"holdfast-node{i}"), signed) for i in range(count)]
    nodes = [next(run) for run in runs]
    balancer = Balancer([node.url.removeprefix("http://") for node in nodes])
    yield Server(balancer.url, nodes[0].process, nodes[0].data_dir, nodes[0].stderr_path)
    balancer.close()
    for run in runs:
        next(run, None)


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Server:
    external = os.environ.get("HOLDFAST_URL")
    if external:
        yield Server(external.rstrip("/"), None, None, None)
        return
    nodes = int(os.environ.get("HOLDFAST_NODES") or 1)
    if nodes > 1:
        yield from _run_nodes(tmp_path_factory, authenticated(), nodes)
        return
    yield from _run_server(tmp_path_factory.mktemp("holdfast"), authenticated())


@pytest.fixture(scope="session")
def signed_server(server, tmp_path_factory) -> Server:
    """A server that requires signatures, with the suite's credentials file: the session's own in
    authenticated runs, else one started for the tests that need one."""
    if authenticated() or os.environ.get("HOLDFAST_URL"):
        yield server
        return
    yield from _run_server(tmp_path_factory.mktemp("holdfast-signed"), True)


@pytest.fixture(scope="session")
def query_data_path(tmp_path_factory) -> Path:
    """A botocore data directory holding only the Query-era SQS model (botocore 1.34.89), laid
    out as botocore expects: <dir>/sqs/2012-11-05/service-2.json. Put first in a loader's
    search path (or in AWS_DATA_PATH for a subprocess) it makes botocore speak Query/XML."""
    if not QUERY_ERA_MODEL.is_file():
        pytest.fail(f"Query-era model missing: {QUERY_ERA_MODEL}")
    root = tmp_path_factory.mktemp("botocore-query-era")
    target = root / "sqs" / "2012-11-05"
    target.mkdir(parents=True)
    shutil.copyfile(QUERY_ERA_MODEL, target / "service-2.json")
    return root


def _client(
    session: boto3.session.Session,
    server: Server,
    key: str = ACCESS_KEY,
    secret: str = SECRET_KEY,
    region: str = REGION,
):
    return session.client(
        "sqs",
        endpoint_url=server.url,
        region_name=region,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=CLIENT_CONFIG,
    )


@pytest.fixture(scope="session")
def json_client(server):
    client = _client(boto3.session.Session(botocore_session=botocore.session.Session()), server)
    assert client.meta.service_model.protocol == "json"
    return client


@pytest.fixture(scope="session")
def query_client(server, query_data_path):
    core = botocore.session.Session()
    core.get_component("data_loader").search_paths.insert(0, str(query_data_path))
    client = _client(boto3.session.Session(botocore_session=core), server)
    assert client.meta.service_model.protocol == "query"
    return client


@pytest.fixture
def client_as(signed_server, query_data_path):
    """client_as(protocol, name): a client of `signed_server` speaking `protocol` ("json" or
    "query") and signing with the suite's root key (name None) or EXTRA_KEYS[name]."""

    def make(protocol: str, name: str | None = None):
        core = botocore.session.Session()
        if protocol == "query":
            core.get_component("data_loader").search_paths.insert(0, str(query_data_path))
        key, secret = (EXTRA_KEYS[name].access_key_id, EXTRA_KEYS[name].secret) if name else (ACCESS_KEY, SECRET_KEY)
        return _client(boto3.session.Session(botocore_session=core), signed_server, key, secret)

    return make


@pytest.fixture
def client_in(server, query_data_path):
    """client_in(protocol, region): a client of the suite's server that signs for `region`, and
    so acts in it."""

    def make(protocol: str, region: str):
        core = botocore.session.Session()
        if protocol == "query":
            core.get_component("data_loader").search_paths.insert(0, str(query_data_path))
        return _client(boto3.session.Session(botocore_session=core), server, region=region)

    return make


@pytest.fixture(params=["json", "query"])
def sqs(request):
    """The same test once per wire protocol."""
    return request.getfixturevalue(f"{request.param}_client")


@pytest.fixture
def queue_url(sqs):
    """A fresh standard queue with default attributes, deleted afterwards."""
    url = sqs.create_queue(QueueName=unique_name("q"))["QueueUrl"]
    yield url
    try:
        sqs.delete_queue(QueueUrl=url)
    except Exception:
        pass


@pytest.fixture
def make_queue(sqs):
    """A factory for queues with unique names, all deleted afterwards:
    `make_queue("prefix", {"VisibilityTimeout": "5"}, fifo=True)` returns the queue URL (a FIFO
    queue gets the `.fifo` suffix and FifoQueue=true)."""
    created = []

    def make(prefix: str = "q", attributes: dict | None = None, fifo: bool = False) -> str:
        attributes = dict(attributes or {})
        name = unique_name(prefix)
        if fifo:
            name += ".fifo"
            attributes.setdefault("FifoQueue", "true")
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        created.append(url)
        return url

    yield make
    for url in reversed(created):
        try:
            sqs.delete_queue(QueueUrl=url)
        except Exception:
            pass
