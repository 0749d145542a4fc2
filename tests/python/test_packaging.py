"""The packaging files, checked as far as a machine without a container engine can.

No Docker or Podman engine runs where this suite runs, so the image itself is never built here.
What is checked instead, with the real binary:
- the Dockerfile's shape: a multi-stage build of the `dist` profile, a final stage that runs as
  user 65532 with a volume, a port and a HEALTHCHECK that is a `holdfast` command;
- the final stage's premises, by running it as a root file system of its own: the binary with
  only the shared libraries the distroless `cc` base image provides (glibc, libgcc), chrooted, as
  user 65532 with no capabilities, with the image's environment and compose's, a volume directory
  it owns and the compose file's init directory; its HEALTHCHECK command passes, the init
  declarations are applied, and a message sent survives `kill -9`;
- compose's form and worker services, run with their exact commands and environment against that
  server (only host names and published ports are mapped to this machine), store a lead in
  PostgreSQL (SQLite where no PostgreSQL is given; under CI=true, PostgreSQL is required);
- the Dockerfile's final stage, built into a real OCI image by buildah: its own instructions
  (COPY, ENV, USER, VOLUME, EXPOSE, HEALTHCHECK, ENTRYPOINT, CMD) on a stand-in for the base image
  (`FROM scratch` plus what distroless `cc` holds: glibc, libgcc, CA certificates, the `nonroot`
  user), then the image's entrypoint and HEALTHCHECK run in it;
- the systemd units, with `systemd-analyze verify`.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import boto3
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").lower() == "true"
# What gcr.io/distroless/cc-debian12 ships besides glibc: libgcc_s (and libstdc++, unused).
BASE_IMAGE_LIBRARIES = {"libc.so.6", "libm.so.6", "libgcc_s.so.1", "libpthread.so.0", "libdl.so.2", "librt.so.1"}
IMAGE_USER = 65532


def need(condition: bool, reason: str) -> None:
    if not condition:
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)


def holdfast_bin() -> Path:
    path = Path(os.environ.get("HOLDFAST_BIN", REPO / "target" / "debug" / "holdfast"))
    if not path.exists():
        pytest.fail(f"holdfast binary not found at {path}")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- the Dockerfile ----


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile as stages of (instruction, arguments), continuation lines joined."""
    text = (REPO / "Dockerfile").read_text()
    joined = re.sub(r"\\\n", " ", text)
    stages: list[list[tuple[str, str]]] = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, arguments = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), arguments.strip()))
    return stages


def final_stage() -> dict[str, list[str]]:
    stage = dockerfile_stages()[-1]
    found: dict[str, list[str]] = {}
    for instruction, arguments in stage:
        found.setdefault(instruction, []).append(arguments)
    return found


def image_environment() -> dict[str, str]:
    env = {}
    for arguments in final_stage().get("ENV", []):
        for pair in shlex.split(arguments):
            key, _, value = pair.partition("=")
            env[key] = value
    return env


def exec_form(arguments: str) -> list[str]:
    """A JSON-array instruction argument (`["a", "b"]`) as a list."""
    import json

    value = json.loads(arguments)
    assert isinstance(value, list), arguments
    return value


def healthcheck_command() -> list[str]:
    (healthcheck,) = final_stage()["HEALTHCHECK"]
    command = healthcheck.split(" CMD ", 1)[1]
    return exec_form(command)


def test_the_dockerfile_builds_small_and_runs_unprivileged():
    stages = dockerfile_stages()
    assert len(stages) >= 2, "a multi-stage build: the toolchain stays out of the image"
    build = " ".join(arguments for _, arguments in stages[0])
    assert "--profile dist" in build and "--locked" in build, build
    cargo = (REPO / "Cargo.toml").read_text()
    dist = cargo.split("[profile.dist]", 1)[1].split("[", 1)[0]
    assert "strip = true" in dist and 'lto = "fat"' in dist, dist

    final = final_stage()
    assert "distroless/cc" in final["FROM"][0], final["FROM"]
    assert final["USER"] == [f"{IMAGE_USER}:{IMAGE_USER}"]
    assert exec_form(final["VOLUME"][0]) == ["/var/lib/holdfast"]
    assert final["EXPOSE"] == ["9324"]
    assert image_environment()["HOLDFAST_DATA_DIR"] == "/var/lib/holdfast"
    assert healthcheck_command()[:2] == ["/usr/local/bin/holdfast", "health"]
    assert exec_form(final["ENTRYPOINT"][0]) == ["/usr/local/bin/holdfast"]


# ---- the final stage, run as a root file system of its own ----


def shared_libraries(binary: Path) -> list[Path]:
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True).stdout
    libraries = []
    for line in out.splitlines():
        match = re.search(r"(/\S+)\s+\(0x", line)
        if match:
            libraries.append(Path(match.group(1)))
    return libraries


class ImageRoot:
    """A directory laid out as the image's file system, and the server run inside it."""

    def __init__(self, root: Path, port: int):
        self.root = root
        self.port = port
        self.process: subprocess.Popen | None = None
        binary = holdfast_bin()
        target = root / "usr/local/bin/holdfast"
        target.parent.mkdir(parents=True)
        shutil.copy2(binary, target)
        for library in shared_libraries(binary):
            destination = root / str(library).lstrip("/")
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(library.resolve(), destination)
        # What the base image has: /tmp, and the volume directory owned by the image's user.
        (root / "tmp").mkdir(mode=0o1777)
        data = root / "var/lib/holdfast"
        data.mkdir(parents=True, mode=0o700)
        os.chown(data, IMAGE_USER, IMAGE_USER)
        # compose.yaml mounts packaging/init.d read-only at /etc/holdfast/init.d.
        shutil.copytree(REPO / "packaging/init.d", root / "etc/holdfast/init.d")
        self.log = root.parent / "image-server.log"

    def environment(self, service: dict) -> dict[str, str]:
        env = {"PATH": "/usr/local/bin"}
        env.update(image_environment())
        env.update({k: str(v) for k, v in (service.get("environment") or {}).items()})
        # The published port, on loopback (the container's 0.0.0.0 is this test's own).
        env["HOLDFAST_BIND"] = f"127.0.0.1:{self.port}"
        return env

    def run_as_image_user(self, argv: list[str], env: dict[str, str]):
        """`argv` inside the root, as the image's user: chroot needs root, then drops to 65532,
        which leaves no capabilities; no-new-privs keeps it that way."""
        setpriv, chroot = shutil.which("setpriv"), shutil.which("chroot")
        command = [setpriv, "--no-new-privs", chroot, f"--userspec={IMAGE_USER}:{IMAGE_USER}", str(self.root), *argv]
        return command, env

    def start(self, service: dict) -> None:
        entrypoint = exec_form(final_stage()["ENTRYPOINT"][0])
        cmd = exec_form(final_stage()["CMD"][0])
        argv, env = self.run_as_image_user(entrypoint + cmd, self.environment(service))
        log = open(self.log, "a")
        self.process = subprocess.Popen(
            argv,
            env=env, cwd=self.root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def healthcheck(self, service: dict) -> int:
        command = [a.replace("127.0.0.1:9324", f"127.0.0.1:{self.port}") for a in healthcheck_command()]
        argv, env = self.run_as_image_user(command, self.environment(service))
        return subprocess.run(argv, env=env, capture_output=True, timeout=30).returncode

    def kill9(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=40)


def compose() -> dict:
    return yaml.safe_load((REPO / "compose.yaml").read_text())


def wait_until(what: str, condition, seconds: float = 30, log: Path | None = None) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            detail = log.read_text()[-3000:] if log and log.exists() else ""
            raise AssertionError(f"timed out waiting for {what}\n{detail}")
        time.sleep(0.2)


@pytest.fixture
def image_server(tmp_path):
    need(os.geteuid() == 0, "running the image's file system needs root (chroot)")
    need(shutil.which("chroot") is not None and shutil.which("setpriv") is not None, "chroot/setpriv missing")
    image = ImageRoot(tmp_path / "rootfs", free_port())
    service = compose()["services"]["holdfast"]
    image.start(service)
    wait_until("the image's HEALTHCHECK to pass", lambda: image.healthcheck(service) == 0, log=image.log)
    yield image, service
    image.stop()


def sqs_client(port: int):
    return boto3.client(
        "sqs", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test",
    )


def test_the_final_stage_runs_unprivileged_on_the_base_images_libraries(image_server):
    image, service = image_server
    names = {library.name for library in shared_libraries(holdfast_bin()) if "ld-linux" not in library.name}
    assert names <= BASE_IMAGE_LIBRARIES, f"the binary needs more than the base image has: {names - BASE_IMAGE_LIBRARIES}"

    sqs = sqs_client(image.port)
    # The init directory compose mounts declared the form's queues.
    url = sqs.get_queue_url(QueueName="leads")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert "leads-dlq" in attributes["RedrivePolicy"] and attributes["VisibilityTimeout"] == "30"
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"app": "forms"}

    # The volume is the image user's, and what was acknowledged survives kill -9 there.
    sqs.send_message(QueueUrl=url, MessageBody='{"kept": true}')
    data = image.root / "var/lib/holdfast"
    assert all(path.stat().st_uid == IMAGE_USER for path in [data, *data.iterdir()])
    image.kill9()
    image.start(service)
    wait_until("the restarted server", lambda: image.healthcheck(service) == 0, log=image.log)
    got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2).get("Messages", [])
    assert [m["Body"] for m in got] == ['{"kept": true}']


def test_compose_form_and_worker_store_a_lead(image_server, tmp_path):
    image, _ = image_server
    services = compose()["services"]
    assert set(services) == {"holdfast", "form", "worker", "db"}
    database = os.environ.get("HOLDFAST_TEST_POSTGRES_URL")
    need(database is not None, "HOLDFAST_TEST_POSTGRES_URL is not set (eval \"$(scripts/forms-deps.sh)\")")
    form_port = free_port()
    sqs_url = f"http://127.0.0.1:{image.port}"
    table = f"leads_{os.getpid()}_{int(time.time())}"

    def mapped(service: dict) -> tuple[list[str], dict[str, str]]:
        """The service's command and environment, with compose's host names and ports mapped here."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HOLDFAST_", "AWS_", "DATABASE_URL"))}
        for key, value in (service.get("environment") or {}).items():
            value = str(value).replace("http://holdfast:9324", sqs_url)
            if key == "DATABASE_URL":
                assert value.startswith("postgres://"), value
                value = database
            env[key] = value
        argv = [str(holdfast_bin())] + [str(a).replace("0.0.0.0:8080", f"127.0.0.1:{form_port}") for a in service["command"]]
        return argv, env

    processes = []
    try:
        argv, env = mapped(services["form"])
        processes.append(subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "form.log", "w")))
        health = [a.replace("127.0.0.1:8080", f"127.0.0.1:{form_port}") for a in services["form"]["healthcheck"]["test"][1:]]
        health[0] = str(holdfast_bin())
        wait_until("the form's healthcheck", lambda: subprocess.run(health, capture_output=True).returncode == 0,
                    log=tmp_path / "form.log")
        body = urllib.parse.urlencode({"name": "Compose Test", "email": "c@example.com", "message": "hello"}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{form_port}/", data=body,
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200

        argv, env = mapped(services["worker"])
        argv += ["--table", table, "--exit-when-empty", "--wait-time", "1", "--scale-interval", "1"]
        worker = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
        assert worker.returncode == 0, worker.stderr[-3000:]
        assert "stored 1," in worker.stderr, worker.stderr[-3000:]
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)
    sqs = sqs_client(image.port)
    url = sqs.get_queue_url(QueueName="leads")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "0"


def test_the_systemd_units_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    need(analyze is not None, "systemd-analyze is missing (apt-get install systemd)")
    units = sorted((REPO / "packaging/systemd").glob("*.service"))
    assert [u.name for u in units] == ["holdfast-worker.service", "holdfast.service"]
    copies = []
    for unit in units:
        # verify checks that ExecStart's program exists: point it at this build.
        text = unit.read_text().replace("/usr/local/bin/holdfast", str(holdfast_bin()))
        assert "NoNewPrivileges=yes" in text and "ProtectSystem=strict" in text and "DynamicUser=yes" in text
        copy = tmp_path / unit.name
        copy.write_text(text)
        copies.append(str(copy))
    result = subprocess.run([analyze, "verify", *copies], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


# ---- the final stage, built into an image with buildah ----


def buildah(*args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    command = ["buildah", "--storage-driver", "vfs", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, **kwargs)
    if check:
        assert result.returncode == 0, f"{' '.join(command)}: {result.stderr[-3000:]}"
    return result


def base_image_stand_in(base: Path) -> None:
    """What gcr.io/distroless/cc-debian12:nonroot holds that the binary can use."""
    for library in shared_libraries(holdfast_bin()):
        destination = base / str(library).lstrip("/")
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(library.resolve(), destination)
    certificates = Path("/etc/ssl/certs/ca-certificates.crt")
    need(certificates.exists(), "no CA bundle to stand in for the base image's (apt-get install ca-certificates)")
    (base / "etc/ssl/certs").mkdir(parents=True)
    shutil.copy2(certificates, base / "etc/ssl/certs/ca-certificates.crt")
    (base / "etc/passwd").write_text("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")
    (base / "etc/group").write_text("root:x:0:\nnonroot:x:65532:\n")
    (base / "tmp").mkdir(mode=0o1777)
    os.chmod(base / "tmp", 0o1777)


def final_stage_containerfile() -> str:
    """The Dockerfile's final stage on the stand-in base, its build-stage copies taken from the
    context (`out/`, laid out as the build stage's `/out`)."""
    lines = ["FROM scratch", "COPY base/ /"]
    for instruction, arguments in dockerfile_stages()[-1][1:]:
        if instruction == "COPY" and "--from=build" in arguments:
            arguments = re.sub(r"(^|\s)/out/", r"\1out/", re.sub(r"--from=build\s+", "", arguments))
        lines.append(f"{instruction} {arguments}")
    return "\n".join(lines) + "\n"


def test_the_final_stage_builds_into_an_image_that_runs(tmp_path):
    need(shutil.which("buildah") is not None, "buildah is missing (apt-get install buildah)")
    need(os.geteuid() == 0, "buildah with the vfs driver and chroot isolation needs root here")
    context = tmp_path / "context"
    base_image_stand_in(context / "base")
    # What the build stage leaves in /out.
    (context / "out/usr/local/bin").mkdir(parents=True)
    shutil.copy2(holdfast_bin(), context / "out/usr/local/bin/holdfast")
    (context / "out/var/lib/holdfast").mkdir(parents=True, mode=0o700)
    containerfile = final_stage_containerfile()
    assert "COPY out/usr/local/bin/holdfast /usr/local/bin/holdfast" in containerfile, containerfile
    (context / "Containerfile").write_text(containerfile)
    tag = f"localhost/holdfast-packaging-test:{os.getpid()}"
    buildah("bud", "--isolation", "chroot", "--format", "docker", "-f", str(context / "Containerfile"), "-t", tag, str(context))
    container = None
    server = None
    try:
        import json

        config = json.loads(buildah("inspect", "--type", "image", tag).stdout)["Docker"]["config"]
        assert config["User"] == f"{IMAGE_USER}:{IMAGE_USER}"
        assert config["Healthcheck"]["Test"][:3] == ["CMD", "/usr/local/bin/holdfast", "health"]
        assert "/var/lib/holdfast" in config["Volumes"] and "9324/tcp" in config["ExposedPorts"]
        assert "HOLDFAST_DATA_DIR=/var/lib/holdfast" in config["Env"]

        container = buildah("from", tag).stdout.strip()
        port = free_port()
        run = ["buildah", "--storage-driver", "vfs", "run", "--isolation", "chroot",
               "-e", "HOLDFAST_AUTH=off", "-e", f"HOLDFAST_BIND=127.0.0.1:{port}", container, "--"]
        log = tmp_path / "image.log"
        server = subprocess.Popen(run + config["Entrypoint"] + config["Cmd"], stdout=open(log, "w"),
                                  stderr=subprocess.STDOUT, start_new_session=True)
        health = [a.replace("127.0.0.1:9324", f"127.0.0.1:{port}") for a in config["Healthcheck"]["Test"][1:]]
        wait_until("the image's HEALTHCHECK", lambda: subprocess.run(run + health, capture_output=True).returncode == 0, log=log)
        sqs = sqs_client(port)
        url = sqs.create_queue(QueueName="from-the-image")["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="hello")
        # The CLI inside the image reaches it too (it needs the CA bundle the base image has).
        listed = subprocess.run(run + ["/usr/local/bin/holdfast", "queue", "list", "--endpoint-url", f"http://127.0.0.1:{port}"],
                                capture_output=True, text=True, timeout=60)
        assert listed.returncode == 0 and "from-the-image" in listed.stdout, listed.stderr[-2000:]
        # The server runs as the image's user (found by the address it was given).
        marker = f"HOLDFAST_BIND=127.0.0.1:{port}".encode()
        uids = []
        for proc in Path("/proc").iterdir():
            try:
                if proc.name.isdigit() and (proc / "exe").resolve().name == "holdfast" and marker in (proc / "environ").read_bytes():
                    status = (proc / "status").read_text()
                    uids.append(int(re.search(r"^Uid:\s+(\d+)", status, re.M).group(1)))
            except OSError:
                continue
        assert uids and set(uids) == {IMAGE_USER}, uids
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=40)
        if container:
            buildah("umount", container, check=False)
            buildah("rm", container, check=False)
        buildah("rmi", "--force", tag, check=False)
