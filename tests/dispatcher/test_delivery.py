"""DeliveryClient against real receivers on 127.0.0.1.

Every receiver verifies every request with `layers_webhooks.Webhook`, so each test also
proves signer and verifier agree. Misbehaving peers (garbage, resets, silence) are raw
asyncio servers that read and verify the request before they misbehave.

A process audit hook watches every `socket.connect` and `getaddrinfo` while these tests
run: it records them, and refuses any connection outside loopback and any name lookup, so
a broken guard fails a test instead of sending a packet anywhere.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import email.utils
import secrets as random_secrets
import socket
import ssl
import struct
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from layers_webhooks import Webhook, WebhookVerificationError
from pytest_aiohttp import AiohttpServer

from dispatcher.core.destinations import DestinationPolicy
from dispatcher.core.models import AttemptOutcome, FailureKind
from dispatcher.engine.delivery.client import DeliveryClient, parse_retry_after

USER_AGENT = "layers-webhooks/0.1.0"
EVENT_ID = "evt_01JZ7Q8M3S4T5V6W7X8Y9Z0ABC"
BODY = b'{"id":"evt_01JZ7Q8M3S4T5V6W7X8Y9Z0ABC","type":"content.generated","data":{"n":1}}'
LOOPBACK = DestinationPolicy(allow=(ip_network("127.0.0.0/8"),))
PUBLIC_ONLY = DestinationPolicy()
SHORT = 0.5  # the attempt deadline for tests that wait for it


def new_secret() -> str:
    return "whsec_" + base64.b64encode(random_secrets.token_bytes(32)).decode()


SECRET = new_secret()


# -- the network watch -------------------------------------------------------------------


@dataclass
class NetworkWatch:
    active: bool = False
    connects: list[tuple[str, int]] = field(default_factory=list)
    lookups: list[str] = field(default_factory=list)

    def __call__(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.active:
            return
        if event == "socket.connect" and isinstance(args[1], tuple):
            host, port = args[1][0], args[1][1]
            self.connects.append((host, port))
            if not ip_address(host).is_loopback:
                raise PermissionError(f"test refused a connection to {host}:{port}")
        elif event == "socket.getaddrinfo":
            self.lookups.append(str(args[0]))
            raise socket.gaierror(socket.EAI_NONAME, "name lookups are refused in these tests")


WATCH = NetworkWatch()
sys.addaudithook(WATCH)  # audit hooks cannot be removed; it is inert outside these tests


@pytest.fixture(autouse=True)
def network() -> Iterator[NetworkWatch]:
    """Record (and confine to loopback) every connection the test makes."""
    WATCH.connects.clear()
    WATCH.lookups.clear()
    WATCH.active = True
    try:
        yield WATCH
    finally:
        WATCH.active = False


# -- receivers -----------------------------------------------------------------------------


@dataclass
class Hit:
    method: str
    path: str
    headers: Mapping[str, str]
    raw_header_names: list[str]
    body: bytes


@dataclass
class Verifying:
    """What a receiver saw, each request verified with every one of `secrets`."""

    secrets: list[str]
    hits: list[Hit] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def record(self, hit: Hit) -> None:
        self.hits.append(hit)
        for secret in self.secrets:
            try:
                Webhook(secret).verify(hit.body, hit.headers)
            except WebhookVerificationError as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}")


Respond = Callable[[web.Request], Awaitable[web.StreamResponse]]
Misbehave = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Receiver(Verifying):
    """An aiohttp receiver: verifies, records, then answers with `respond`."""

    url = ""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__(secrets)
        self.respond: Respond = self._no_content

    async def _no_content(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=204)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        names = [name.decode("latin-1").lower() for name, _ in request.raw_headers]
        self.record(Hit(request.method, request.path_qs, request.headers, names, body))
        return await self.respond(request)


StartReceiver = Callable[..., Awaitable[Receiver]]
StartRawServer = Callable[..., Awaitable["RawServer"]]
OpenClient = Callable[..., Awaitable[DeliveryClient]]


@pytest.fixture
async def receivers(aiohttp_server: AiohttpServer) -> AsyncIterator[StartReceiver]:
    """Start verifying aiohttp receivers; after the test, every request must have verified."""
    started: list[Receiver] = []

    async def start(secrets: list[str] | None = None) -> Receiver:
        receiver = Receiver(secrets or [SECRET])
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", receiver.handle)
        server = await aiohttp_server(app)
        receiver.url = str(server.make_url("/hook"))
        started.append(receiver)
        return receiver

    yield start
    assert [r.errors for r in started] == [[] for _ in started]


class RawServer(Verifying):
    """A raw TCP peer: reads and verifies one HTTP request, then runs `misbehave`."""

    def __init__(self, misbehave: Misbehave) -> None:
        super().__init__([SECRET])
        self.misbehave = misbehave
        self.url = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *lines = head.decode("latin-1").split("\r\n")
            pairs = [line.partition(":") for line in lines if line]
            headers = {name.strip().lower(): value.strip() for name, _, value in pairs}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            method, path, _ = request_line.split(" ")
            self.record(Hit(method, path, headers, list(headers), body))
            await self.misbehave(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client gave up first: that is what these tests provoke
        finally:
            writer.close()


@pytest.fixture
async def raw_servers() -> AsyncIterator[StartRawServer]:
    """Start raw misbehaving peers on 127.0.0.1; closed (and checked) after the test."""
    async with AsyncExitStack() as stack:
        started: list[RawServer] = []

        async def start(
            misbehave: Misbehave, ssl_context: ssl.SSLContext | None = None
        ) -> RawServer:
            peer = RawServer(misbehave)
            server = await asyncio.start_server(peer.handle, "127.0.0.1", 0, ssl=ssl_context)
            stack.push_async_callback(server.wait_closed)
            stack.callback(server.close)
            port = server.sockets[0].getsockname()[1]
            peer.url = f"{'https' if ssl_context else 'http'}://127.0.0.1:{port}/hook"
            started.append(peer)
            return peer

        yield start
        assert [p.errors for p in started] == [[] for _ in started]


async def wait_for_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()  # never answer; return once the client hangs up


# -- clients -------------------------------------------------------------------------------


@pytest.fixture
async def open_client() -> AsyncIterator[OpenClient]:
    """Open DeliveryClients (loopback allowed, 2 s deadline unless overridden)."""
    async with AsyncExitStack() as stack:

        async def open_(**overrides: Any) -> DeliveryClient:
            options: dict[str, Any] = {"policy": LOOPBACK, "timeout": 2.0, "user_agent": USER_AGENT}
            client = DeliveryClient(**(options | overrides))
            return await stack.enter_async_context(client)

        yield open_


async def deliver(
    client: DeliveryClient, url: str, *, secrets: list[str] | None = None
) -> AttemptOutcome:
    return await client.send(
        url=url,
        event_id=EVENT_ID,
        body=BODY,
        secrets=secrets or [SECRET],
        timestamp=int(time.time()),
    )


class FakeResolver(AbstractResolver):
    """aiohttp's resolver interface with fixed answers (or a fixed failure)."""

    def __init__(self, answers: Mapping[str, list[str]], error: OSError | None = None) -> None:
        self.answers = answers
        self.error = error
        self.calls: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.calls.append(host)
        if self.error is not None:
            raise self.error
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in self.answers[host]
        ]

    async def close(self) -> None:
        pass


# -- success and the wire format --------------------------------------------------------------


async def test_2xx_delivers_the_exact_wire_format(
    receivers: StartReceiver, open_client: OpenClient
) -> None:
    """A 2xx is a success, and the receiver gets exactly the Standard Webhooks headers."""
    receiver = await receivers()
    client = await open_client()
    timestamp = int(time.time())
    outcome = await client.send(
        url=receiver.url, event_id=EVENT_ID, body=BODY, secrets=[SECRET], timestamp=timestamp
    )
    assert outcome.succeeded
    assert outcome.status_code == 204
    assert outcome.failure is None
    [hit] = receiver.hits
    assert hit.method == "POST"
    assert hit.path == "/hook"
    assert hit.body == BODY
    assert sorted(hit.raw_header_names) == sorted(
        [
            "host",
            "content-type",
            "content-length",
            "user-agent",
            "accept",
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
        ]
    )
    assert hit.headers["content-type"] == "application/json"
    assert hit.headers["user-agent"] == USER_AGENT
    assert hit.headers["webhook-id"] == EVENT_ID
    assert hit.headers["webhook-timestamp"] == str(timestamp)
    assert hit.headers["webhook-signature"] == Webhook(SECRET).sign_header(
        EVENT_ID, timestamp, BODY
    )


async def test_rotated_endpoint_gets_one_signature_per_secret(
    receivers: StartReceiver, open_client: OpenClient
) -> None:
    """With two active secrets the header carries two `v1,` entries and each one verifies."""
    old, new = new_secret(), new_secret()
    receiver = await receivers([old, new])  # verifies with each secret alone
    client = await open_client()
    outcome = await deliver(client, receiver.url, secrets=[new, old])
    assert outcome.succeeded
    [hit] = receiver.hits
    entries = hit.headers["webhook-signature"].split(" ")
    assert len(entries) == 2
    assert all(entry.startswith("v1,") for entry in entries)


async def test_success_keeps_an_excerpt_of_the_body(
    receivers: StartReceiver, open_client: OpenClient
) -> None:
    """The response body of a success is kept as the excerpt."""
    receiver = await receivers()

    async def ok(request: web.Request) -> web.StreamResponse:
        return web.json_response({"received": True})

    receiver.respond = ok
    outcome = await deliver(await open_client(), receiver.url)
    assert outcome.succeeded
    assert outcome.status_code == 200
    assert outcome.response_excerpt == b'{"received": true}'


async def test_attempts_to_one_host_reuse_a_pooled_connection(
    receivers: StartReceiver, open_client: OpenClient, network: NetworkWatch
) -> None:
    """Consecutive attempts to the same host ride one keep-alive connection."""
    receiver = await receivers()
    client = await open_client()
    outcomes = [await deliver(client, receiver.url) for _ in range(3)]
    assert [o.succeeded for o in outcomes] == [True, True, True]
    assert len(receiver.hits) == 3
    assert len(network.connects) == 1


# -- HTTP failures -----------------------------------------------------------------------------


async def test_500_is_an_http_status_failure_with_excerpt(
    receivers: StartReceiver, open_client: OpenClient
) -> None:
    """A 500 fails with its status code and keeps the body excerpt."""
    receiver = await receivers()

    async def boom(request: web.Request) -> web.StreamResponse:
        return web.Response(status=500, text="database is on fire")

    receiver.respond = boom
    outcome = await deliver(await open_client(), receiver.url)
    assert outcome.failure is FailureKind.HTTP_STATUS
    assert outcome.status_code == 500
    assert outcome.response_excerpt == b"database is on fire"
    assert outcome.detail == "HTTP 500 Internal Server Error"
    assert SECRET not in outcome.detail


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_redirects_fail_and_are_never_followed(
    status: int, receivers: StartReceiver, open_client: OpenClient
) -> None:
    """A 3xx is a failure; its Location is not requested."""
    receiver, target = await receivers(), await receivers()

    async def redirect(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, headers={"location": target.url})

    receiver.respond = redirect
    outcome = await deliver(await open_client(), receiver.url)
    assert outcome.failure is FailureKind.HTTP_STATUS
    assert outcome.status_code == status
    assert "redirects are not followed" in outcome.detail
    assert target.url in outcome.detail
    assert len(receiver.hits) == 1
    assert target.hits == []


async def test_redirect_to_a_private_address_is_not_followed(
    receivers: StartReceiver, open_client: OpenClient, network: NetworkWatch
) -> None:
    """A redirect to the metadata service fails without any connection beyond the receiver."""
    receiver = await receivers()

    async def redirect(request: web.Request) -> web.StreamResponse:
        return web.Response(status=302, headers={"location": "http://169.254.169.254/latest"})

    receiver.respond = redirect
    outcome = await deliver(await open_client(), receiver.url)
    assert outcome.failure is FailureKind.HTTP_STATUS
    assert outcome.status_code == 302
    assert {host for host, _ in network.connects} == {"127.0.0.1"}


async def test_429_retry_after_seconds(receivers: StartReceiver, open_client: OpenClient) -> None:
    """`Retry-After: 7` on a 429 becomes retry_after=7.0."""
    receiver = await receivers()

    async def slow_down(request: web.Request) -> web.StreamResponse:
        return web.Response(status=429, headers={"retry-after": "7"})

    receiver.respond = slow_down
    outcome = await deliver(await open_client(), receiver.url)
    assert outcome.failure is FailureKind.HTTP_STATUS
    assert outcome.status_code == 429
    assert outcome.retry_after == 7.0


async def test_retry_after_http_date_is_relative_to_the_clock(
    receivers: StartReceiver, open_client: OpenClient
) -> None:
    """An HTTP-date Retry-After is converted to seconds from the injected clock's now."""
    now = 1_800_000_000.0
    receiver = await receivers()

    async def unavailable(request: web.Request) -> web.StreamResponse:
        when = email.utils.formatdate(now + 90, usegmt=True)
        return web.Response(status=503, headers={"retry-after": when})

    receiver.respond = unavailable
    outcome = await deliver(await open_client(clock=lambda: now), receiver.url)
    assert outcome.status_code == 503
    assert outcome.retry_after == 90.0


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        ("0", 0.0),
        ("120", 120.0),
        (" 7 ", 7.0),
        ("Wed, 15 Jan 2027 08:00:30 GMT", 30.0),
        ("Wed, 15 Jan 2027 07:59:00 GMT", 0.0),  # in the past
        ("Wed, 15 Jan 2027 08:01:00 -0000", 60.0),
        ("-5", None),
        ("1.5", None),
        ("soon", None),
        ("", None),
        ("٣", None),  # a non-ASCII digit
    ],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    """Retry-After is delta-seconds or an HTTP-date; anything else is ignored."""
    now = dt.datetime(2027, 1, 15, 8, 0, tzinfo=dt.UTC).timestamp()
    assert parse_retry_after(value, now) == seconds


# -- deadlines, bodies, broken peers -----------------------------------------------------------


async def test_silent_receiver_times_out(
    raw_servers: StartRawServer, open_client: OpenClient
) -> None:
    """A peer that accepts the request and never answers is a TIMEOUT at the deadline."""
    peer = await raw_servers(wait_for_eof)
    outcome = await deliver(await open_client(timeout=SHORT), peer.url)
    assert outcome.failure is FailureKind.TIMEOUT
    assert outcome.status_code is None
    assert outcome.detail == "no complete response within 0.5 s"
    assert len(peer.hits) == 1


async def test_dripping_body_times_out_by_the_total_deadline(
    raw_servers: StartRawServer, open_client: OpenClient
) -> None:
    """Headers in time but a body dripping a byte at a time still hits the total deadline."""

    async def drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n")
        for _ in range(1000):
            writer.write(b".")
            await writer.drain()
            await asyncio.sleep(0.05)

    peer = await raw_servers(drip)
    outcome = await deliver(await open_client(timeout=SHORT), peer.url)
    assert outcome.failure is FailureKind.TIMEOUT


async def test_huge_response_is_read_up_to_the_cap(
    receivers: StartReceiver, open_client: OpenClient
) -> None:
    """A 10 MB answer succeeds with a 4 KiB excerpt."""
    receiver = await receivers()
    huge = bytes(range(256)) * (10 * 1024 * 1024 // 256)

    async def flood(request: web.Request) -> web.StreamResponse:
        return web.Response(body=huge)

    receiver.respond = flood
    outcome = await deliver(await open_client(), receiver.url)
    assert outcome.succeeded
    assert outcome.response_excerpt == huge[:4096]


async def test_endless_response_stops_at_the_cap(
    raw_servers: StartRawServer, open_client: OpenClient
) -> None:
    """A body that never ends still succeeds: reading stops at max_response_bytes."""

    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        chunk = b"x" * 16384
        while True:
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()

    peer = await raw_servers(endless)
    outcome = await deliver(await open_client(max_response_bytes=65536), peer.url)
    assert outcome.succeeded
    assert outcome.response_excerpt == b"x" * 4096


async def test_connection_refused_is_connect(open_client: OpenClient) -> None:
    """A closed port on 127.0.0.1 is a CONNECT failure."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    outcome = await deliver(await open_client(), f"http://127.0.0.1:{port}/hook")
    assert outcome.failure is FailureKind.CONNECT
    assert outcome.detail.startswith(f"cannot connect to 127.0.0.1:{port}: ")


async def test_reset_connection_is_connect(
    raw_servers: StartRawServer, open_client: OpenClient
) -> None:
    """A peer that resets the connection after reading the request is a CONNECT failure."""

    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    peer = await raw_servers(reset)
    outcome = await deliver(await open_client(), peer.url)
    assert outcome.failure is FailureKind.CONNECT
    assert len(peer.hits) == 1


async def test_hang_up_without_answer_is_connect(
    raw_servers: StartRawServer, open_client: OpenClient
) -> None:
    """A peer that closes the connection without answering is a CONNECT failure."""

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    peer = await raw_servers(hang_up)
    outcome = await deliver(await open_client(), peer.url)
    assert outcome.failure is FailureKind.CONNECT
    assert outcome.detail == "the server closed the connection without answering"


@pytest.mark.parametrize(
    "answer",
    [
        b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
        b"HTTP/1.1 abc Nope\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: nope\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort",
    ],
)
async def test_garbage_http_is_invalid_response(
    answer: bytes, raw_servers: StartRawServer, open_client: OpenClient
) -> None:
    """A peer that does not speak HTTP properly is an INVALID_RESPONSE."""

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(answer)
        await writer.drain()

    peer = await raw_servers(garbage)
    outcome = await deliver(await open_client(), peer.url)
    assert outcome.failure is FailureKind.INVALID_RESPONSE
    assert outcome.detail.startswith("malformed HTTP response: ")
    assert SECRET not in outcome.detail


async def test_untrusted_certificate_is_tls(
    raw_servers: StartRawServer, open_client: OpenClient, tmp_path: Path
) -> None:
    """An HTTPS peer with a self-signed certificate is a TLS failure."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ip_address("127.0.0.1"))]), False
        )
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    peer = await raw_servers(wait_for_eof, ssl_context=context)
    outcome = await deliver(await open_client(), peer.url)
    assert outcome.failure is FailureKind.TLS
    assert "certificate verify failed" in outcome.detail
    assert peer.hits == []


# -- the destination guard -----------------------------------------------------------------


@pytest.mark.parametrize("address", ["10.0.0.5", "169.254.169.254", "fd00:ec2::254", "::1"])
async def test_name_resolving_to_a_private_address_is_blocked_before_dialling(
    address: str, open_client: OpenClient, network: NetworkWatch
) -> None:
    """A host name whose answer is not public is refused without any connection attempt."""
    resolver = FakeResolver({"hooks.example.com": [address]})
    client = await open_client(policy=PUBLIC_ONLY, resolver=resolver)
    outcome = await deliver(client, "https://hooks.example.com/hook")
    assert outcome.failure is FailureKind.BLOCKED_DESTINATION
    assert outcome.detail.startswith(
        f"url: host hooks.example.com resolves to a refused address: {address} "
    )
    assert resolver.calls == ["hooks.example.com"]
    assert network.connects == []


async def test_name_with_one_private_answer_among_public_ones_is_blocked(
    open_client: OpenClient, network: NetworkWatch
) -> None:
    """If any answer is not public, the name is refused (DNS rebinding, mixed records)."""
    resolver = FakeResolver({"hooks.example.com": ["93.184.215.14", "127.0.0.1"]})
    client = await open_client(policy=PUBLIC_ONLY, resolver=resolver)
    outcome = await deliver(client, "https://hooks.example.com/hook")
    assert outcome.failure is FailureKind.BLOCKED_DESTINATION
    assert "127.0.0.1 is in the loopback range (127.0.0.0/8)" in outcome.detail
    assert network.connects == []


async def test_vetted_name_is_dialled_at_the_vetted_address(
    receivers: StartReceiver, open_client: OpenClient, network: NetworkWatch
) -> None:
    """A name whose answers pass the guard is dialled at exactly those addresses."""
    receiver = await receivers()
    port = int(receiver.url.split(":")[2].split("/")[0])
    resolver = FakeResolver({"hooks.example.com": ["127.0.0.1"]})
    client = await open_client(resolver=resolver)
    outcome = await deliver(client, f"http://hooks.example.com:{port}/hook")
    assert outcome.succeeded
    assert receiver.hits[0].headers["host"] == f"hooks.example.com:{port}"
    assert network.connects == [("127.0.0.1", port)]
    assert network.lookups == []


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.5/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://100.64.0.1/",
    ],
)
async def test_private_ip_literal_is_blocked_before_dialling(
    url: str, open_client: OpenClient, network: NetworkWatch
) -> None:
    """An IP-literal URL in a refused range never reaches the connector."""
    outcome = await deliver(await open_client(policy=PUBLIC_ONLY), url)
    assert outcome.failure is FailureKind.BLOCKED_DESTINATION
    assert outcome.detail.startswith("url: host ")
    assert network.connects == []


@pytest.mark.parametrize(
    "url",
    [
        "http://user:pw@hooks.example.com/",
        "http://hooks.example.com\\@10.0.0.5/",
        "http://2130706433/",
        "http://localhost/",
        "http://hooks.example.com/\r\nx-injected: 1",
    ],
)
async def test_malformed_url_is_blocked_before_dialling(
    url: str, open_client: OpenClient, network: NetworkWatch
) -> None:
    """A URL that fails shape validation is refused at every attempt, with no connection."""
    outcome = await deliver(await open_client(policy=PUBLIC_ONLY), url)
    assert outcome.failure is FailureKind.BLOCKED_DESTINATION
    assert outcome.detail.startswith("url: ")
    assert network.connects == []


async def test_loopback_is_blocked_without_the_allow_list(
    receivers: StartReceiver, open_client: OpenClient, network: NetworkWatch
) -> None:
    """127.0.0.1 is refused by the default policy, and the receiver sees nothing."""
    receiver = await receivers()
    outcome = await deliver(await open_client(policy=PUBLIC_ONLY), receiver.url)
    assert outcome.failure is FailureKind.BLOCKED_DESTINATION
    assert outcome.detail == "url: host 127.0.0.1 is in the loopback range (127.0.0.0/8)"
    assert receiver.hits == []
    assert network.connects == []


async def test_loopback_is_delivered_with_the_allow_list(
    receivers: StartReceiver, open_client: OpenClient
) -> None:
    """With allow=(127.0.0.0/8,) the same URL is delivered."""
    receiver = await receivers()
    outcome = await deliver(await open_client(policy=LOOPBACK), receiver.url)
    assert outcome.succeeded
    assert len(receiver.hits) == 1


async def test_proxy_environment_is_ignored(
    receivers: StartReceiver, open_client: OpenClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP(S)_PROXY pointing at a local proxy are ignored: the delivery goes direct."""
    receiver, proxy = await receivers(), await receivers()
    proxy_url = proxy.url.removesuffix("/hook")
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, proxy_url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    outcome = await deliver(await open_client(), receiver.url)
    assert outcome.succeeded
    assert len(receiver.hits) == 1
    assert proxy.hits == []


@pytest.mark.parametrize(
    "error",
    [
        socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
        OSError("no answer"),
    ],
)
async def test_unresolvable_host_is_dns(
    error: OSError, open_client: OpenClient, network: NetworkWatch
) -> None:
    """A name that does not resolve (RFC 6761 `.invalid`) is a DNS failure."""
    resolver = FakeResolver({}, error=error)
    client = await open_client(resolver=resolver)
    outcome = await deliver(client, "https://hooks.example.invalid/hook")
    assert outcome.failure is FailureKind.DNS
    assert outcome.detail.startswith("could not resolve hooks.example.invalid: ")
    assert network.connects == []


async def test_resolver_with_no_answers_is_dns(open_client: OpenClient) -> None:
    """An empty answer is a DNS failure, never a crash."""
    client = await open_client(resolver=FakeResolver({"hooks.example.com": []}))
    outcome = await deliver(client, "https://hooks.example.com/hook")
    assert outcome.failure is FailureKind.DNS
