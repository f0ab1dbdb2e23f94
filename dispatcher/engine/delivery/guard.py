"""The destination guard on the address actually dialled, at every attempt.

1. `DeliveryClient.send` re-validates the URL shape and checks IP-literal hosts (aiohttp
   does not resolve those, so the resolver below never sees them);
2. `GuardedResolver` resolves names, refuses the name if *any* answer is not public, and
   hands aiohttp only the vetted addresses, so it connects to exactly what was checked
   (the connector's short DNS cache only ever holds vetted answers);
3. `guarded_socket_factory` re-checks the address of every socket the connector opens — a
   backstop should an address ever reach it by another path.

The rules themselves are the pure `core.destinations.DestinationPolicy`.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from ipaddress import ip_address

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.connector import AddrInfoType

from dispatcher.core.destinations import DestinationPolicy
from dispatcher.errors import DestinationError


class GuardedResolver(AbstractResolver):
    """Resolves through `inner`, then refuses the name if any answer is not public."""

    def __init__(
        self, policy: DestinationPolicy, inner: AbstractResolver, *, owns_inner: bool
    ) -> None:
        self._policy = policy
        self._inner = inner
        self._owns_inner = owns_inner  # an injected resolver stays its owner's to close

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        if not answers:
            raise OSError(f"{host} has no addresses")
        return [self._vet(host, answer) for answer in answers]

    def _vet(self, host: str, answer: ResolveResult) -> ResolveResult:
        try:
            ip = ip_address(answer["host"])
        except ValueError:
            raise DestinationError(
                f"url: host {host} resolved to {answer['host']!r}, not an IP address"
            ) from None
        reason = self._policy.check_address(ip)
        if reason is not None:
            raise DestinationError(f"url: host {host} resolves to a refused address: {reason}")
        return ResolveResult(
            hostname=answer["hostname"],
            host=str(ip),  # the address checked is the address dialled
            port=answer["port"],
            family=socket.AF_INET if ip.version == 4 else socket.AF_INET6,
            proto=answer["proto"],
            flags=answer["flags"],
        )

    async def close(self) -> None:
        if self._owns_inner:
            await self._inner.close()


class DialRefusedError(OSError):
    """The socket factory refused an address the guard had not vetted (a backstop)."""


def guarded_socket_factory(policy: DestinationPolicy) -> Callable[[AddrInfoType], socket.socket]:
    """aiohttp's `socket_factory`: opens a socket only to an address the policy allows."""

    def open_socket(addr_info: AddrInfoType) -> socket.socket:
        family, type_, proto, _, address = addr_info
        reason = policy.check_address(ip_address(address[0]))
        if reason is not None:
            raise DialRefusedError(f"url: refused to dial {reason}")
        return socket.socket(family, type_, proto)

    return open_socket
