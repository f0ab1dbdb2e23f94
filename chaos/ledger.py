"""The ledger check: what was published against what the receivers' own logs say arrived.

Pure: it takes the published events (id → the exact record value) and the receivers'
arrivals, and says, per endpoint that should have accepted every event:

  * missing    — published ids never accepted (verified and answered 2xx): must be none;
  * unknown    — arrivals whose webhook-id was never published: must be none;
  * unverified — arrivals whose signature did not verify: must be none;
  * corrupted  — arrivals whose body is not byte-identical to the published value (which
                 also makes every duplicate byte-identical to the first): must be none;
  * duplicates — accepted again after a first acceptance (at-least-once redelivery the
                 receiver dedupes by webhook-id): allowed, counted;
  * refused    — arrivals the receiver itself did not accept (its 5xx, a reset): the
                 retries it asked for, counted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from chaos.endpoints import Arrival


@dataclass(frozen=True, slots=True, kw_only=True)
class PairReport:
    """The ledger of one endpoint that should have accepted every published event."""

    endpoint: str
    expected: int
    missing: frozenset[str]
    unknown: frozenset[str]
    unverified: int
    corrupted: int
    arrivals: int
    duplicates: int  # accepted arrivals beyond the first accepted one per id
    refused: int  # arrivals the receiver did not accept

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unknown or self.unverified or self.corrupted)

    def describe(self) -> str:
        text = (
            f"{self.endpoint}: {self.expected - len(self.missing)}/{self.expected} accepted, "
            f"{self.arrivals} arrivals, {self.duplicates} duplicates, {self.refused} refused"
        )
        problems = [
            f"{len(self.missing)} MISSING (e.g. {sorted(self.missing)[:3]})"
            if self.missing
            else "",
            f"{len(self.unknown)} UNKNOWN ids (e.g. {sorted(self.unknown)[:3]})"
            if self.unknown
            else "",
            f"{self.unverified} UNVERIFIED" if self.unverified else "",
            f"{self.corrupted} CORRUPTED bodies" if self.corrupted else "",
        ]
        found = ", ".join(p for p in problems if p)
        return f"{text}; {found}" if found else text


def check_pairs(
    published: Mapping[str, bytes], arrivals: Iterable[Arrival], endpoint: str
) -> PairReport:
    """The ledger of `endpoint`, which should have accepted every event in `published`."""
    mine = [a for a in arrivals if a.endpoint == endpoint]
    taken = [a.webhook_id for a in mine if a.accepted]
    accepted = set(taken) & published.keys()
    unknown = frozenset(a.webhook_id for a in mine if a.webhook_id not in published)
    corrupted = sum(
        1 for a in mine if a.webhook_id in published and a.body != published[a.webhook_id]
    )
    return PairReport(
        endpoint=endpoint,
        expected=len(published),
        missing=frozenset(published) - accepted,
        unknown=unknown,
        unverified=sum(1 for a in mine if not a.verified),
        corrupted=corrupted,
        arrivals=len(mine),
        duplicates=len(taken) - len(set(taken)),
        refused=len(mine) - len(taken),
    )


def complete(published: Mapping[str, bytes], arrivals: Iterable[Arrival], endpoint: str) -> bool:
    """Has `endpoint` accepted every published id (the wait condition, cheaper than a report)?"""
    accepted = {a.webhook_id for a in arrivals if a.endpoint == endpoint and a.accepted}
    return accepted >= published.keys()


def arrivals_per_id(arrivals: Iterable[Arrival], endpoint: str) -> Counter[str]:
    """How many times each webhook-id arrived at `endpoint` (answered or not)."""
    return Counter(a.webhook_id for a in arrivals if a.endpoint == endpoint)


def integrity_problems(published: Mapping[str, bytes], arrivals: Iterable[Arrival]) -> list[str]:
    """Problems that are failures at ANY endpoint, failing-by-design ones included: an
    unknown id, a signature that does not verify, a body that is not the published one."""
    problems: list[str] = []
    for arrival in arrivals:
        if arrival.webhook_id not in published:
            problems.append(f"{arrival.endpoint}: unknown webhook-id {arrival.webhook_id!r}")
        elif arrival.body != published[arrival.webhook_id]:
            problems.append(f"{arrival.endpoint}: corrupted body for {arrival.webhook_id}")
        if not arrival.verified:
            problems.append(f"{arrival.endpoint}: unverified {arrival.webhook_id}: {arrival.error}")
    return problems
