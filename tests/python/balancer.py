"""A round-robin HTTP/1.1 balancer for running the suite against several holdfast nodes at once.

Each request (not each connection) goes to the next node in turn, so one client's send, receive
and delete land on different nodes, as they would behind a load balancer with many clients. The
web console is the exception: its sessions live in the node that signed the user in, so its pages
all go to the first node, as a sticky-session rule in a real balancer would send them. It
understands just enough HTTP for SQS clients, the CLI and the console: Content-Length and chunked
bodies, keep-alive, no upgrades. Loopback test use only.
"""

from __future__ import annotations

import asyncio
import itertools
import threading

MAX_HEAD = 64 * 1024


async def _read_head(reader: asyncio.StreamReader) -> bytes | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    if len(head) > MAX_HEAD:
        return None
    return head


def _header(head: bytes, name: bytes) -> bytes | None:
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip()
    return None


async def _read_body(reader: asyncio.StreamReader, head: bytes, response_to_head: bool = False) -> bytes:
    """The body that follows `head`, exactly as it was framed."""
    if response_to_head:
        return b""
    status = head.split(b" ", 2)[1] if head.startswith(b"HTTP/") else b""
    if status in (b"204", b"304") or status.startswith(b"1"):
        return b""
    if (_header(head, b"transfer-encoding") or b"").lower() == b"chunked":
        body = bytearray()
        while True:
            size_line = await reader.readuntil(b"\r\n")
            body += size_line
            size = int(size_line.split(b";")[0].strip(), 16)
            chunk = await reader.readexactly(size + 2)
            body += chunk
            if size == 0:
                return bytes(body)
    length = _header(head, b"content-length")
    if length is not None:
        return await reader.readexactly(int(length))
    if head.startswith(b"HTTP/"):
        # A response without framing ends when the connection does.
        return await reader.read()
    return b""


class Balancer:
    """Listens on 127.0.0.1:<port> and spreads requests over `nodes` ("host:port" strings)."""

    def __init__(self, nodes: list[str]):
        self.nodes = [tuple(n.rsplit(":", 1)) for n in nodes]
        self._turn = itertools.cycle(range(len(nodes)))
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.port = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        backends: dict[int, tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}
        try:
            while True:
                head = await _read_head(reader)
                if head is None:
                    return
                body = await _read_body(reader, head)
                path = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else b""
                node = 0 if path.startswith(b"/console") else next(self._turn)
                response_head = None
                # A kept-alive upstream connection the node has closed for idleness answers
                # nothing: the request goes again on a fresh connection, once.
                for fresh in (False, True):
                    if fresh or node not in backends:
                        if node in backends:
                            backends.pop(node)[1].close()
                        host, port = self.nodes[node]
                        backends[node] = await asyncio.open_connection(host, int(port))
                    up_reader, up_writer = backends[node]
                    try:
                        up_writer.write(head + body)
                        await up_writer.drain()
                        response_head = await _read_head(up_reader)
                    except ConnectionError:
                        response_head = None
                    if response_head is not None:
                        break
                if response_head is None:
                    return
                is_head = head.split(b" ", 1)[0] == b"HEAD"
                response_body = await _read_body(up_reader, response_head, is_head)
                writer.write(response_head + response_body)
                await writer.drain()
                if (_header(response_head, b"connection") or b"").lower() == b"close":
                    backends.pop(node)[1].close()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            if not self._loop.is_closed():
                for _, up_writer in backends.values():
                    up_writer.close()
                writer.close()
