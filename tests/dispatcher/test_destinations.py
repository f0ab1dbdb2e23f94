"""The destination guard as a table: which URLs and addresses are refused, and why.

Policy checks only: nothing here resolves a name or opens a socket.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network

import pytest

from dispatcher.core.destinations import (
    REFUSED_NETWORKS,
    DestinationPolicy,
    ParsedDestination,
    parse_cidr_list,
    validate_url,
)
from dispatcher.errors import ConfigurationError, DestinationError

POLICY = DestinationPolicy()


def _first_address(cidr: str) -> str:
    network = ip_network(cidr)
    return str(network[1] if network.num_addresses > 2 else network[0])


@pytest.mark.parametrize(("cidr", "what"), REFUSED_NETWORKS)
def test_every_table_row_refuses_its_first_address(cidr: str, what: str) -> None:
    """An address inside each refused network is refused, and the reason names a network."""
    address = _first_address(cidr)
    reason = POLICY.check_address(ip_address(address))
    assert reason is not None
    assert reason.startswith(f"{ip_address(address)} ")
    assert reason.endswith(")")


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("0.0.0.0", "0.0.0.0 is in the 'this network' range (0.0.0.0/8)"),
        ("10.0.0.1", "10.0.0.1 is in a private network (10.0.0.0/8)"),
        ("100.64.0.1", "100.64.0.1 is in the carrier-grade NAT range (100.64.0.0/10)"),
        ("100.127.255.254", "100.127.255.254 is in the carrier-grade NAT range (100.64.0.0/10)"),
        ("100.100.100.200", "100.100.100.200 is a cloud metadata address (100.100.100.200/32)"),
        ("127.0.0.1", "127.0.0.1 is in the loopback range (127.0.0.0/8)"),
        ("127.255.255.254", "127.255.255.254 is in the loopback range (127.0.0.0/8)"),
        ("169.254.169.254", "169.254.169.254 is a cloud metadata address (169.254.169.254/32)"),
        ("169.254.1.1", "169.254.1.1 is in the link-local range (169.254.0.0/16)"),
        ("168.63.129.16", "168.63.129.16 is a cloud platform address (168.63.129.16/32)"),
        ("172.16.0.1", "172.16.0.1 is in a private network (172.16.0.0/12)"),
        ("172.31.255.255", "172.31.255.255 is in a private network (172.16.0.0/12)"),
        ("192.0.0.8", "192.0.0.8 is in the IETF protocol assignments range (192.0.0.0/24)"),
        ("192.0.2.1", "192.0.2.1 is in a documentation range (192.0.2.0/24)"),
        ("192.88.99.1", "192.88.99.1 is in the 6to4 relay anycast range (192.88.99.0/24)"),
        ("192.168.1.1", "192.168.1.1 is in a private network (192.168.0.0/16)"),
        ("198.19.0.1", "198.19.0.1 is in the benchmarking range (198.18.0.0/15)"),
        ("198.51.100.7", "198.51.100.7 is in a documentation range (198.51.100.0/24)"),
        ("203.0.113.9", "203.0.113.9 is in a documentation range (203.0.113.0/24)"),
        ("224.0.0.251", "224.0.0.251 is in the multicast range (224.0.0.0/4)"),
        ("240.0.0.1", "240.0.0.1 is in the reserved range (240.0.0.0/4)"),
        (
            "255.255.255.255",
            "255.255.255.255 is the limited broadcast address (255.255.255.255/32)",
        ),
        ("::", ":: is the unspecified address (::/128)"),
        ("::1", "::1 is the loopback address (::1/128)"),
        ("::7f00:1", "::7f00:1 is in the IPv4-compatible range (::/96)"),
        ("64:ff9b:1::1", "64:ff9b:1::1 is in the local-use NAT64 range (64:ff9b:1::/48)"),
        ("100::1", "100::1 is in the discard-only range (100::/64)"),
        ("2001::1", "2001::1 is in the Teredo range (2001::/32)"),
        ("2001:2::1", "2001:2::1 is in the IETF protocol assignments range (2001::/23)"),
        ("2001:db8::1", "2001:db8::1 is in a documentation range (2001:db8::/32)"),
        ("2002:7f00:1::1", "2002:7f00:1::1 is in the 6to4 range (2002::/16)"),
        ("2002:808:808::1", "2002:808:808::1 is in the 6to4 range (2002::/16)"),
        ("3fff::1", "3fff::1 is in a documentation range (3fff::/20)"),
        ("fd00:ec2::254", "fd00:ec2::254 is a cloud metadata address (fd00:ec2::254/128)"),
        ("fd12:3456::1", "fd12:3456::1 is in a unique local network (fc00::/7)"),
        ("fe80::1", "fe80::1 is in the link-local range (fe80::/10)"),
        ("fec0::1", "fec0::1 is in the site-local range (fec0::/10)"),
        ("ff02::1", "ff02::1 is in the multicast range (ff00::/8)"),
        ("4000::1", "4000::1 is outside global unicast space (2000::/3)"),
        ("fe80::1%eth0", "fe80::1%eth0 has a scope id (link-local)"),
    ],
)
def test_non_public_addresses_are_refused_with_a_precise_reason(address: str, reason: str) -> None:
    """Each non-public address is refused with a reason naming its network."""
    assert POLICY.check_address(ip_address(address)) == reason


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("::ffff:127.0.0.1", "::ffff:7f00:1 embeds 127.0.0.1, which is in the loopback range"),
        ("::ffff:7f00:1", "::ffff:7f00:1 embeds 127.0.0.1, which is in the loopback range"),
        ("::ffff:10.0.0.1", "::ffff:a00:1 embeds 10.0.0.1, which is in a private network"),
        ("::ffff:169.254.169.254", "::ffff:a9fe:a9fe embeds 169.254.169.254, which is a cloud"),
        ("64:ff9b::10.0.0.1", "64:ff9b::a00:1 embeds 10.0.0.1, which is in a private network"),
        ("64:ff9b::127.0.0.1", "64:ff9b::7f00:1 embeds 127.0.0.1, which is in the loopback"),
    ],
)
def test_embedded_ipv4_is_judged_by_the_ipv4_address(address: str, reason: str) -> None:
    """IPv4-mapped and NAT64 addresses are refused when the IPv4 address they carry is."""
    refusal = POLICY.check_address(ip_address(address))
    assert refusal is not None
    assert refusal.startswith(reason)


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "93.184.215.14",
        "100.63.255.255",  # just below CGNAT
        "100.128.0.0",  # just above CGNAT
        "172.15.255.255",  # just below 172.16/12
        "172.32.0.0",  # just above 172.16/12
        "192.169.0.1",
        "223.255.255.254",
        "2606:4700:4700::1111",
        "2a00:1450:4001::200e",
        "::ffff:8.8.8.8",  # IPv4-mapped public
        "64:ff9b::8.8.8.8",  # NAT64 of a public address
    ],
)
def test_public_addresses_are_allowed(address: str) -> None:
    """Globally routable addresses, including mapped forms of them, pass the guard."""
    assert POLICY.check_address(ip_address(address)) is None


def test_allow_list_lets_loopback_through() -> None:
    """WEBHOOKS_ALLOW_PRIVATE_NETWORKS=127.0.0.0/8 allows loopback, and only loopback."""
    policy = DestinationPolicy(allow=parse_cidr_list("127.0.0.0/8"))
    assert policy.check_address(IPv4Address("127.0.0.1")) is None
    assert policy.check_address(IPv4Address("127.9.9.9")) is None
    assert policy.check_address(IPv6Address("::ffff:127.0.0.1")) is None
    assert policy.check_address(IPv4Address("10.0.0.1")) is not None
    assert policy.check_address(IPv6Address("::1")) is not None


def test_allow_list_applies_to_ip_literal_urls() -> None:
    """An allowed IP literal URL passes `check_url`; the same URL is refused without it."""
    url = "http://127.0.0.1:8080/hook"
    allowed = DestinationPolicy(allow=(ip_network("127.0.0.0/8"),)).check_url(url)
    assert allowed.ip == IPv4Address("127.0.0.1")
    with pytest.raises(DestinationError) as refused:
        POLICY.check_url(url)
    assert str(refused.value) == "url: host 127.0.0.1 is in the loopback range (127.0.0.0/8)"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://10.0.0.1/", "url: host 10.0.0.1 is in a private network (10.0.0.0/8)"),
        (
            "http://169.254.169.254/latest/meta-data/",
            "url: host 169.254.169.254 is a cloud metadata address (169.254.169.254/32)",
        ),
        ("http://100.64.1.2/", "url: host 100.64.1.2 is in the carrier-grade NAT range"),
        ("http://[::1]:9000/", "url: host ::1 is the loopback address (::1/128)"),
        ("http://[::ffff:127.0.0.1]/", "url: host ::ffff:7f00:1 embeds 127.0.0.1"),
        ("http://[::ffff:7f00:1]/", "url: host ::ffff:7f00:1 embeds 127.0.0.1"),
        ("http://[fe80::1]/", "url: host fe80::1 is in the link-local range"),
        ("http://１２７.０.０.１/", "url: host 127.0.0.1 is in the loopback range"),
    ],
)
def test_ip_literal_urls_are_checked_against_the_policy(url: str, message: str) -> None:
    """`check_url` refuses an IP literal URL whose address is not public."""
    with pytest.raises(DestinationError) as refused:
        POLICY.check_url(url)
    assert str(refused.value).startswith(message)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        # unusual IPv4 spellings (all of them mean 127.0.0.1 to some parser)
        ("http://2130706433/", "url: host '2130706433' is an unusual IPv4 spelling"),
        ("http://0177.0.0.1/", "url: host '0177.0.0.1' is an unusual IPv4 spelling"),
        ("http://0x7f.1/", "url: host '0x7f.1' is an unusual IPv4 spelling"),
        ("http://0x7f.0.0.1/", "url: host '0x7f.0.0.1' is an unusual IPv4 spelling"),
        ("http://127.1/", "url: host '127.1' is an unusual IPv4 spelling"),
        ("http://127.0.1/", "url: host '127.0.1' is an unusual IPv4 spelling"),
        ("http://127.000.000.001/", "url: host '127.000.000.001' is an unusual IPv4 spelling"),
        ("http://8.8.8.08/", "url: host '8.8.8.08' is an unusual IPv4 spelling"),
        ("http://0x08080808/", "url: host '0x08080808' is an unusual IPv4 spelling"),
        ("http://example.0x/", "url: host 'example.0x' is an unusual IPv4 spelling"),
        ("http://256.1.1.1/", "url: host '256.1.1.1' is not a valid IPv4 address"),
        ("http://8.8.8.8./", "url: host '8.8.8.8.' is not a valid IPv4 address"),
        # userinfo
        ("http://user@example.com/", "url: must not contain credentials"),
        ("http://user:pw@example.com/", "url: must not contain credentials"),
        ("http://example.com@10.0.0.1/", "url: must not contain credentials"),
        # backslashes, control characters, whitespace
        ("http://example.com\\@10.0.0.1/", "url: contains a backslash at position 18"),
        ("http:\\\\example.com/", "url: contains a backslash at position 5"),
        ("http://example.com/a\\b", "url: contains a backslash at position 20"),
        ("http://example.com/\x00", "url: contains the character '\\x00' at position 19"),
        ("http://exam\nple.com/", "url: contains the character '\\n' at position 11"),
        ("http://example.com/\r\nX-Injected: 1", "url: contains the character '\\r'"),
        ("http://example.com/\x7f", "url: contains the character '\\x7f'"),
        ("http://example.com/\x85", "url: contains the character '\\x85'"),
        ("http://example.com/a b", "url: contains the character ' ' at position 20"),
        (" http://example.com/", "url: contains the character ' ' at position 0"),
        ("http://example.com/\u3000", "url: contains the character '\\u3000'"),
        ("http://example.com/\t", "url: contains the character '\\t'"),
        # scheme, host, port, fragment
        ("ftp://example.com/", "url: must start with http:// or https://"),
        ("file:///etc/passwd", "url: must start with http:// or https://"),
        ("gopher://example.com/", "url: must start with http:// or https://"),
        ("example.com/hook", "url: must start with http:// or https://"),
        ("http:/example.com/", "url: must start with http:// or https://"),
        ("http:///hook", "url: host is missing"),
        ("http://:80/", "url: host is missing"),
        ("http://example.com:0/", "url: port '0' is not a number from 1 to 65535"),
        ("http://example.com:65536/", "url: port '65536' is not a number from 1 to 65535"),
        ("http://example.com:-1/", "url: port '-1' is not a number from 1 to 65535"),
        ("http://example.com:+80/", "url: port '+80' is not a number from 1 to 65535"),
        ("http://example.com:８０/", "url: port '８０' is not a number from 1 to 65535"),
        ("http://example.com:80:81/", "url: port '80:81' is not a number from 1 to 65535"),
        ("http://example.com/#frag", "url: must not contain a fragment"),
        ("http://example.com#", "url: must not contain a fragment"),
        ("http://[::1/", "url: malformed IPv6 address literal"),
        ("http://[::1]x/", "url: malformed IPv6 address literal"),
        ("http://[fe80::1%25eth0]/", "url: IPv6 zone identifiers are not allowed"),
        ("http://[1.2.3.4]/", "url: '1.2.3.4' is not a valid IPv6 address"),
        ("http://exa%6dple.com/", "url: host 'exa%6dple.com' is not a valid host name"),
        ("http://-example.com/", "url: host '-example.com' is not a valid host name"),
        ("http://example..com/", "url: host 'example..com' is not a valid host name"),
        ("http://" + "a" * 64 + ".com/", "is not a valid host name"),
        ("http://ex\u00e4mple.xn--/", "is not a valid IDNA name"),
        ("http://example.com/" + "a" * 2048, "url: longer than 2048 characters"),
        # names that always mean this host or this platform
        ("http://localhost/", "url: host 'localhost' is a local or metadata name"),
        ("http://LOCALHOST./", "url: host 'localhost' is a local or metadata name"),
        ("http://api.localhost/", "url: host 'api.localhost' is refused: loopback names"),
        ("http://metadata.google.internal/", "url: host 'metadata.google.internal' is a local"),
        ("http://metadata/computeMetadata/v1/", "url: host 'metadata' is a local or metadata"),
        ("http://instance-data/", "url: host 'instance-data' is a local or metadata name"),
        ("http://instance-data.ec2.internal/", "is refused: private-use names"),
        ("http://printer.local/", "url: host 'printer.local' is refused: multicast DNS names"),
        ("http://db.cluster.local/", "is refused: multicast DNS names"),
        ("http://nas.home.arpa/", "url: host 'nas.home.arpa' is refused: home network names"),
        ("http://box.localdomain/", "is refused: local-only names"),
        ("http://redis:6379/", "url: host 'redis' is a single-label name"),
    ],
)
def test_malformed_or_dangerous_urls_are_refused(url: str, message: str) -> None:
    """Each URL is refused at validation with a message naming the problem."""
    with pytest.raises(DestinationError) as refused:
        validate_url(url)
    assert message in str(refused.value)
    assert str(refused.value).startswith("url: ")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://hooks.example.com/layers",
            ParsedDestination(
                scheme="https", host="hooks.example.com", port=443, target="/layers", ip=None
            ),
        ),
        (
            "HTTP://Hooks.Example.COM:8080",
            ParsedDestination(
                scheme="http", host="hooks.example.com", port=8080, target="/", ip=None
            ),
        ),
        (
            "http://example.com?x=1",
            ParsedDestination(scheme="http", host="example.com", port=80, target="/?x=1", ip=None),
        ),
        (
            "https://bücher.example/wh/ä?q=ü&r=%20",
            ParsedDestination(
                scheme="https",
                host="xn--bcher-kva.example",
                port=443,
                target="/wh/%C3%A4?q=%C3%BC&r=%20",
                ip=None,
            ),
        ),
        (
            "http://example.com./",
            ParsedDestination(scheme="http", host="example.com.", port=80, target="/", ip=None),
        ),
        (
            "http://8.8.8.8:8080/x",
            ParsedDestination(
                scheme="http", host="8.8.8.8", port=8080, target="/x", ip=IPv4Address("8.8.8.8")
            ),
        ),
        (
            "http://[2606:4700:4700:0:0:0:0:1111]/",
            ParsedDestination(
                scheme="http",
                host="2606:4700:4700::1111",
                port=80,
                target="/",
                ip=IPv6Address("2606:4700:4700::1111"),
            ),
        ),
        (
            "https://_hooks.example.com/a<b>",
            ParsedDestination(
                scheme="https", host="_hooks.example.com", port=443, target="/a%3Cb%3E", ip=None
            ),
        ),
    ],
)
def test_valid_urls_are_canonicalised(url: str, expected: ParsedDestination) -> None:
    """Valid URLs come back lower-cased, IDNA-encoded, with explicit port and encoded target."""
    assert validate_url(url) == expected


def test_canonical_url_round_trips() -> None:
    """`ParsedDestination.url` is itself a valid URL with the same meaning."""
    for url in ("https://bücher.example/ä?q=1", "http://[2606:4700::1]:81/x", "http://8.8.8.8/"):
        parsed = validate_url(url)
        assert validate_url(parsed.url) == parsed


def test_public_name_passes_the_policy_without_resolving() -> None:
    """A host name passes `check_url` on shape alone; its addresses are checked when dialled."""
    assert POLICY.check_url("https://hooks.example.com/x").ip is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ()),
        (" , ", ()),
        ("127.0.0.0/8", (ip_network("127.0.0.0/8"),)),
        ("127.0.0.0/8, ::1/128", (ip_network("127.0.0.0/8"), ip_network("::1/128"))),
        ("10.1.2.3", (ip_network("10.1.2.3/32"),)),
    ],
)
def test_parse_cidr_list(text: str, expected: tuple[object, ...]) -> None:
    """The allow-list is a comma-separated CIDR list; empty means none."""
    assert parse_cidr_list(text) == expected


def test_parse_cidr_list_reports_every_bad_entry() -> None:
    """Every malformed entry is named in one error."""
    with pytest.raises(ConfigurationError, match=r"is not a CIDR network") as bad:
        parse_cidr_list("127.0.0.1/8, 10.0.0.0/8, nope")
    assert str(bad.value).startswith("'127.0.0.1/8' is not a CIDR network")
    assert "'nope' is not a CIDR network" in str(bad.value)
    assert "10.0.0.0/8" not in str(bad.value)
