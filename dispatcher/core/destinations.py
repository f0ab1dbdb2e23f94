"""Where tenant traffic may go: the destination guard (docs/design.md §8). Pure: no I/O.

Tenants choose webhook URLs, so the sender must never become a path into private networks.
Two checks share this module:

- `validate_url` — the URL's *shape*, at registration and again before every attempt: http(s)
  only, a host, no userinfo, no backslashes, no control characters or whitespace, no
  fragment, a sane port, no unusual IP spellings (`2130706433`, `0177.0.0.1`, `0x7f.1`,
  `127.1`), IDNA names normalised to A-labels, and reserved names (`localhost`,
  `metadata.google.internal`, `*.internal`, …) refused by name.
- `DestinationPolicy.check_address` — an *address*: refused when it falls in a row of
  `REFUSED_NETWORKS`, an explicit table owned here (`ipaddress.is_global` is not enough,
  and differs between Python versions), unless `WEBHOOKS_ALLOW_PRIVATE_NETWORKS` lists it.
  The delivery client applies it to the address actually dialled, every attempt.

Every refusal is a `DestinationError` whose message is fit for a 422:
`url: host 10.0.0.1 is in a private network (10.0.0.0/8)`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_network
from urllib.parse import quote

import idna

from dispatcher.errors import ConfigurationError, DestinationError

Network = IPv4Network | IPv6Network
Address = IPv4Address | IPv6Address

MAX_URL_LENGTH = 2048

# Non-public networks. The first row containing an address names it, so specific rows come
# before the ranges that contain them. IPv4-mapped, NAT64 and IPv4-compatible IPv6 addresses
# are judged by the IPv4 address they embed (see `_embedded_ipv4`) before this table.
REFUSED_NETWORKS: tuple[tuple[str, str], ...] = (
    # IPv4
    ("0.0.0.0/8", "is in the 'this network' range"),  # RFC 791; 0.0.0.0 dials localhost on Linux
    ("10.0.0.0/8", "is in a private network"),  # RFC 1918
    ("100.100.100.200/32", "is a cloud metadata address"),  # Alibaba Cloud metadata
    ("100.64.0.0/10", "is in the carrier-grade NAT range"),  # RFC 6598 shared address space
    ("127.0.0.0/8", "is in the loopback range"),  # RFC 1122
    ("169.254.169.254/32", "is a cloud metadata address"),  # AWS, GCP, Azure, OCI metadata
    ("169.254.0.0/16", "is in the link-local range"),  # RFC 3927
    ("168.63.129.16/32", "is a cloud platform address"),  # Azure WireServer (public, internal)
    ("172.16.0.0/12", "is in a private network"),  # RFC 1918
    ("192.0.0.0/24", "is in the IETF protocol assignments range"),  # RFC 6890
    ("192.0.2.0/24", "is in a documentation range"),  # RFC 5737 TEST-NET-1
    ("192.88.99.0/24", "is in the 6to4 relay anycast range"),  # RFC 7526 (deprecated)
    ("192.168.0.0/16", "is in a private network"),  # RFC 1918
    ("198.18.0.0/15", "is in the benchmarking range"),  # RFC 2544
    ("198.51.100.0/24", "is in a documentation range"),  # RFC 5737 TEST-NET-2
    ("203.0.113.0/24", "is in a documentation range"),  # RFC 5737 TEST-NET-3
    ("224.0.0.0/4", "is in the multicast range"),  # RFC 5771
    ("255.255.255.255/32", "is the limited broadcast address"),  # RFC 919
    ("240.0.0.0/4", "is in the reserved range"),  # RFC 1112 class E
    # IPv6
    ("::/128", "is the unspecified address"),  # RFC 4291
    ("::1/128", "is the loopback address"),  # RFC 4291
    ("::/96", "is in the IPv4-compatible range"),  # RFC 4291 (deprecated)
    ("::ffff:0:0/96", "is in the IPv4-mapped range"),  # RFC 4291; judged by its IPv4 first
    ("64:ff9b::/96", "is in the NAT64 range"),  # RFC 6052; judged by its IPv4 first
    ("64:ff9b:1::/48", "is in the local-use NAT64 range"),  # RFC 8215
    ("100::/64", "is in the discard-only range"),  # RFC 6666
    ("2001::/32", "is in the Teredo range"),  # RFC 4380: tunnels to arbitrary IPv4
    ("2001::/23", "is in the IETF protocol assignments range"),  # RFC 2928
    ("2001:db8::/32", "is in a documentation range"),  # RFC 3849
    ("2002::/16", "is in the 6to4 range"),  # RFC 3056: tunnels to arbitrary IPv4, refused
    ("3fff::/20", "is in a documentation range"),  # RFC 9637
    ("fd00:ec2::254/128", "is a cloud metadata address"),  # AWS IMDS over IPv6
    ("fc00::/7", "is in a unique local network"),  # RFC 4193 ULA
    ("fe80::/10", "is in the link-local range"),  # RFC 4291
    ("fec0::/10", "is in the site-local range"),  # RFC 3879 (deprecated)
    ("ff00::/8", "is in the multicast range"),  # RFC 4291
)

# Everything public in IPv6 lives in global unicast space; the rest is unassigned.
_GLOBAL_UNICAST = IPv6Network("2000::/3")
_NAT64 = IPv6Network("64:ff9b::/96")


@dataclass(frozen=True, slots=True)
class _Row:
    network: Network
    what: str
    net: int
    mask: int


def _rows(version: int) -> tuple[_Row, ...]:
    rows = []
    for cidr, what in REFUSED_NETWORKS:
        network = ip_network(cidr)
        if network.version == version:
            rows.append(_Row(network, what, int(network.network_address), int(network.netmask)))
    return tuple(rows)


_ROWS_V4 = _rows(4)
_ROWS_V6 = _rows(6)

# Names refused before resolution: they always mean "this host" or "this platform".
REFUSED_NAMES = frozenset({"localhost", "metadata.google.internal", "metadata", "instance-data"})
REFUSED_SUFFIXES: tuple[tuple[str, str], ...] = (
    (".localhost", "loopback names (RFC 6761)"),
    (".local", "multicast DNS names (RFC 6762)"),
    (".internal", "private-use names (cloud and cluster internal DNS)"),
    (".localdomain", "local-only names"),
    (".home.arpa", "home network names (RFC 8375)"),
)

_SCHEMES = {"http": 80, "https": 443}
_FORBIDDEN_CHAR = re.compile(r"[\x00-\x20\x7f-\x9f\\]|\s")
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
_CANONICAL_OCTET = re.compile(r"0|[1-9][0-9]{0,2}")
# Everything that may appear unescaped in a path or query; the rest is percent-encoded.
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedDestination:
    """A URL that passed `validate_url`, in canonical form."""

    scheme: str  # "http" or "https"
    host: str  # lower-case A-label name, dotted-quad IPv4 or compressed IPv6 (no brackets)
    port: int  # explicit or the scheme's default
    target: str  # path and query, percent-encoded, starting with "/"
    ip: Address | None  # set when the host is an IP literal

    @property
    def url(self) -> str:
        """The canonical URL: what the delivery client requests (default port omitted)."""
        host = f"[{self.host}]" if self.ip is not None and self.ip.version == 6 else self.host
        port = "" if self.port == _SCHEMES[self.scheme] else f":{self.port}"
        return f"{self.scheme}://{host}{port}{self.target}"


@dataclass(frozen=True, slots=True)
class DestinationPolicy:
    """The guard: refuse non-public addresses, except the explicitly allowed networks."""

    allow: tuple[Network, ...] = ()

    def check_address(self, ip: Address) -> str | None:
        """Why `ip` is refused (`"10.0.0.5 is in a private network (10.0.0.0/8)"`), or None."""
        refusal = self._refusal(ip)
        return None if refusal is None else f"{ip} {refusal}"

    def _refusal(self, ip: Address) -> str | None:
        if any(ip in network for network in self.allow):
            return None
        if ip.version == 6:
            embedded = _embedded_ipv4(ip)
            if embedded is not None:
                refusal = self._refusal(embedded)
                return None if refusal is None else f"embeds {embedded}, which {refusal}"
            if ip.scope_id:
                return "has a scope id (link-local)"
        value = int(ip)
        for row in _ROWS_V4 if ip.version == 4 else _ROWS_V6:
            if value & row.mask == row.net:
                return f"{row.what} ({row.network})"
        if ip.version == 6 and ip not in _GLOBAL_UNICAST:
            return f"is outside global unicast space ({_GLOBAL_UNICAST})"
        if not ip.is_global:  # a backstop should the registry grow; the table is the policy
            return "is not globally routable"
        return None

    def check_url(self, url: str) -> ParsedDestination:
        """`validate_url`, plus the address check when the host is an IP literal."""
        destination = validate_url(url)
        if destination.ip is not None:
            reason = self.check_address(destination.ip)
            if reason is not None:
                raise DestinationError(f"url: host {reason}")
        return destination


def _embedded_ipv4(ip: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv4-mapped (::ffff:a.b.c.d) or NAT64 (64:ff9b::a.b.c.d) holds."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def parse_cidr_list(text: str) -> tuple[Network, ...]:
    """`WEBHOOKS_ALLOW_PRIVATE_NETWORKS`: `"127.0.0.0/8, ::1/128"` → networks (empty → none).

    A bare address means that one address. Every bad entry is reported in one ValueError.
    """
    networks: list[Network] = []
    errors: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            networks.append(ip_network(part, strict=True))
        except ValueError as exc:
            errors.append(f"{part!r} is not a CIDR network ({exc})")
    if errors:
        raise ConfigurationError("; ".join(errors))
    return tuple(networks)


def validate_url(url: str) -> ParsedDestination:
    """Check the shape of a webhook URL and return it in canonical form.

    Raises `DestinationError` with a message naming the problem.
    """
    if len(url) > MAX_URL_LENGTH:
        raise DestinationError(f"url: longer than {MAX_URL_LENGTH} characters")
    bad = _FORBIDDEN_CHAR.search(url)
    if bad is not None:
        what = "a backslash" if bad.group() == "\\" else f"the character {bad.group()!r}"
        raise DestinationError(f"url: contains {what} at position {bad.start()}")
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in _SCHEMES:
        raise DestinationError("url: must start with http:// or https://")
    if "#" in rest:
        raise DestinationError("url: must not contain a fragment ('#…' is never sent)")
    end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    authority, target = rest[:end], rest[end:]
    if "@" in authority:
        raise DestinationError("url: must not contain credentials (user@ or user:password@)")
    host, ip, port = _split_authority(authority, default_port=_SCHEMES[scheme])
    return ParsedDestination(
        scheme=scheme, host=host, port=port, target=_canonical_target(target), ip=ip
    )


def _split_authority(authority: str, *, default_port: int) -> tuple[str, Address | None, int]:
    if authority.startswith("["):
        literal, bracket, port_text = authority[1:].partition("]")
        if not bracket or (port_text and not port_text.startswith(":")):
            raise DestinationError("url: malformed IPv6 address literal")
        return _ipv6_literal(literal), IPv6Address(literal), _port(port_text[1:], default_port)
    name, colon, port_text = authority.partition(":")
    port = _port(port_text, default_port) if colon else default_port
    if not name:
        raise DestinationError("url: host is missing")
    host, ip = _hostname(name)
    return host, ip, port


def _port(text: str, default: int) -> int:
    if text == "":
        return default
    if not text.isascii() or not text.isdigit() or len(text) > 5 or not 0 < int(text) < 65536:
        raise DestinationError(f"url: port {text!r} is not a number from 1 to 65535")
    return int(text)


def _ipv6_literal(literal: str) -> str:
    if "%" in literal:
        raise DestinationError("url: IPv6 zone identifiers are not allowed")
    try:
        return IPv6Address(literal).compressed
    except ValueError:
        raise DestinationError(f"url: {literal!r} is not a valid IPv6 address") from None


def _hostname(name: str) -> tuple[str, IPv4Address | None]:
    """Lower-case A-label form of a host name or IPv4 literal; refuses odd spellings."""
    if name.isascii():
        host = name.lower()
    else:
        try:
            host = idna.encode(name, uts46=True, transitional=False).decode("ascii")
        except idna.IDNAError as exc:
            raise DestinationError(f"url: host {name!r} is not a valid IDNA name ({exc})") from None
    bare = host[:-1] if host.endswith(".") else host
    labels = bare.split(".")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):  # WHATWG parses these hosts as IPv4
        if len(labels) != 4 or not all(_CANONICAL_OCTET.fullmatch(x) for x in labels):
            raise DestinationError(f"url: host {name!r} is an unusual IPv4 spelling")
        if any(int(x) > 255 for x in labels) or host != bare:
            raise DestinationError(f"url: host {name!r} is not a valid IPv4 address")
        return bare, IPv4Address(bare)
    if len(bare) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise DestinationError(f"url: host {name!r} is not a valid host name")
    _check_name(bare)
    return host, None


def _check_name(bare: str) -> None:
    if bare in REFUSED_NAMES:
        raise DestinationError(f"url: host {bare!r} is a local or metadata name")
    for suffix, what in REFUSED_SUFFIXES:
        if bare.endswith(suffix):
            raise DestinationError(f"url: host {bare!r} is refused: {what}")
    if "." not in bare:
        raise DestinationError(
            f"url: host {bare!r} is a single-label name (it could resolve through the "
            "sender's search domains); use a fully-qualified name"
        )


def _canonical_target(target: str) -> str:
    path, question, query = target.partition("?")
    path = quote(path or "/", safe=_PATH_SAFE)
    return f"{path}?{quote(query, safe=_QUERY_SAFE)}" if question else path
