"""The README, run as a newcomer runs it: every shell and Python block, top to bottom, in a fresh
directory with a fresh server.

Blocks run in order. An HTML comment just before a block changes how it runs:
- `<!-- readme-test: skip (why) -->`: not run (the two commands that run this very suite);
- `<!-- readme-test: background (why) -->`: each line is a program that keeps running (one per
  terminal); the bare `holdfast` line is the server the tour already started;
- `<!-- readme-test: after an enquiry from "NAME" -->`: the test first sends the form as a visitor
  would, then runs the block until its output shows NAME (the worker takes a moment).

The only change made to the text is the port: the README's 127.0.0.1:9324 and :8080 become free
ports, so the test never collides with a server already running on the machine. Shell blocks run
in one environment: what a block exports, the next one sees, as in one terminal.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

REPO = Path(__file__).resolve().parents[2]
DIRECTIVE = re.compile(r"<!--\s*readme-test:\s*(.*?)\s*-->")
FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass
class Block:
    language: str
    text: str
    directive: str
    line: int


def readme_blocks(text: str) -> list[Block]:
    """The fenced blocks of `text`, each with the directive comment right above it (if any)."""
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    pending = ""
    while i < len(lines):
        line = lines[i]
        directive = DIRECTIVE.search(line)
        if directive:
            pending = directive.group(1)
        fence = FENCE.match(line)
        if fence:
            start = i
            body = []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            blocks.append(Block(fence.group(1), "\n".join(body) + "\n", pending, start + 1))
            pending = ""
        elif line.strip() and not directive:
            pending = ""
        i += 1
    return blocks


def test_blocks_and_directives_are_found():
    text = "intro\n<!-- readme-test: skip (x) -->\n```sh\na\n```\ntext\n```python\nb\n```\n"
    blocks = readme_blocks(text)
    assert [(b.language, b.text, b.directive) for b in blocks] == [("sh", "a\n", "skip (x)"), ("python", "b\n", "")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} did not answer 200 within {seconds} s")
        time.sleep(0.1)


def holdfast_bin() -> Path:
    path = Path(os.environ.get("HOLDFAST_BIN", REPO / "target" / "debug" / "holdfast"))
    if not path.exists():
        pytest.fail(f"holdfast binary not found at {path} (cargo build -p holdfast)")
    return path


class Tour:
    """A fresh directory, a fresh shell environment and the programs the README starts."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.sqs_port = free_port()
        self.form_port = free_port()
        self.processes: list[tuple[str, subprocess.Popen]] = []
        self.transcript: list[str] = []
        binary = holdfast_bin()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "HOLDFAST_"))}
        env.update(
            {
                # `holdfast`, `aws` and `python` as a user who followed the README has them.
                "PATH": os.pathsep.join([str(binary.parent), str(Path(sys.executable).parent), env.get("PATH", "")]),
                "HOME": str(directory),
                "HOLDFAST_BIND": f"127.0.0.1:{self.sqs_port}",
                "HOLDFAST_ENDPOINT_URL": f"http://127.0.0.1:{self.sqs_port}",
                "HOLDFAST_FORM_BIND": f"127.0.0.1:{self.form_port}",
                "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_PAGER": "",
            }
        )
        self.env = env

    def localize(self, text: str) -> str:
        return text.replace("127.0.0.1:9324", f"127.0.0.1:{self.sqs_port}").replace(
            "127.0.0.1:8080", f"127.0.0.1:{self.form_port}"
        )

    def start(self, command: str) -> None:
        log = open(self.directory / f"process-{len(self.processes)}.log", "w")
        process = subprocess.Popen(
            ["bash", "-c", f"exec {command}"],
            cwd=self.directory,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append((command, process))

    def start_server(self) -> None:
        self.start("holdfast")
        wait_for(f"http://127.0.0.1:{self.sqs_port}/health")

    def run_shell(self, block: Block) -> str:
        env_file = self.directory / ".readme-env"
        script = f"set -euo pipefail\n{self.localize(block.text)}\nenv -0 > {shlex.quote(str(env_file))}\n"
        proc = subprocess.run(
            ["bash", "-c", script], cwd=self.directory, env=self.env, capture_output=True, text=True, timeout=120
        )
        self.transcript.append(f"$ README line {block.line}\n{proc.stdout}{proc.stderr}")
        assert proc.returncode == 0, (
            f"README block at line {block.line} failed ({proc.returncode}):\n{block.text}\n"
            f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}\n{self.logs()}"
        )
        self.env = dict(
            item.split("=", 1) for item in env_file.read_text().split("\0") if "=" in item
        )
        return proc.stdout

    def run_python(self, block: Block) -> str:
        proc = subprocess.run(
            [sys.executable, "-c", self.localize(block.text)],
            cwd=self.directory,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        self.transcript.append(f">>> README line {block.line}\n{proc.stdout}{proc.stderr}")
        assert proc.returncode == 0, (
            f"README block at line {block.line} failed:\n{block.text}\n{proc.stderr[-3000:]}\n{self.logs()}"
        )
        return proc.stdout

    def run_background(self, block: Block) -> None:
        for line in block.text.splitlines():
            command = line.split("#", 1)[0].strip()
            if not command:
                continue
            if command == "holdfast":
                # The server from the tour, still running, as the README says.
                assert self.processes and self.processes[0][1].poll() is None, "the tour's server is not running"
                continue
            self.start(command)
        if any("form serve" in command for command, _ in self.processes):
            wait_for(f"http://127.0.0.1:{self.form_port}/ready")

    def send_enquiry(self, name: str) -> None:
        """What a visitor's browser sends when they fill in the form."""
        body = urllib.parse.urlencode(
            {"name": name, "email": "grace@example.com", "message": "A quote for 40 seats, please."}
        ).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.form_port}/",
            data=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200, response.status

    def logs(self) -> str:
        parts = []
        for index, (command, _) in enumerate(self.processes):
            path = self.directory / f"process-{index}.log"
            parts.append(f"--- {command}\n{path.read_text()[-2000:] if path.exists() else ''}")
        return "\n".join(parts)

    def stop(self) -> None:
        for _, process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for _, process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def test_the_readme_runs_top_to_bottom_on_a_fresh_machine(tmp_path):
    blocks = readme_blocks((REPO / "README.md").read_text())
    runnable = [b for b in blocks if b.language in ("sh", "python") and not b.directive.startswith("skip")]
    assert len(runnable) >= 5, "the README lost its tour"
    tour = Tour(tmp_path)
    try:
        # "With the server running": the tour's first instruction.
        tour.start_server()
        outputs = []
        for block in runnable:
            if block.directive.startswith("background"):
                tour.run_background(block)
                continue
            enquiry = re.match(r'after an enquiry from "([^"]+)"', block.directive)
            if enquiry:
                name = enquiry.group(1)
                tour.send_enquiry(name)
                deadline = time.monotonic() + 30
                while name not in (output := tour.run_shell(block)):
                    assert time.monotonic() < deadline, f"{name} never reached the database:\n{tour.logs()}"
                    time.sleep(0.5)
                outputs.append(output)
                continue
            outputs.append(tour.run_python(block) if block.language == "python" else tour.run_shell(block))
        transcript = "\n".join(tour.transcript)

        # What each part of the tour promises a reader.
        assert '"Body": "{\\"name\\":\\"Ada\\"}"' in transcript, transcript  # as the AWS CLI prints it
        assert "order 42" in transcript, transcript
        received = [line for output in outputs for line in output.splitlines()]
        assert all(str(n) in received for n in range(1, 101)), transcript

        sqs = boto3.client(
            "sqs",
            endpoint_url=f"http://127.0.0.1:{tour.sqs_port}",
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

        def counts(name: str) -> tuple[int, int]:
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])

        # The CLI tour drained its queue; the form's worker stored the one enquiry and deleted it,
        # and nothing the tour sent ended up in front of the worker or in its dead-letter queue.
        assert counts("jobs") == (0, 0)
        assert counts("leads") == (0, 0)
        assert counts("leads-dlq") == (0, 0)
        worker_log = tour.logs()
        assert "cannot be stored" not in worker_log, worker_log
    finally:
        tour.stop()
