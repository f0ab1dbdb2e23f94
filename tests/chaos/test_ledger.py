"""The ledger check itself: a chaos run is only as good as the check that judges it."""

from __future__ import annotations

import pytest

from chaos.endpoints import NO_ANSWER, Arrival
from chaos.ledger import check_pairs, integrity_problems

PUBLISHED = {"evt_1": b'{"id":"evt_1"}', "evt_2": b'{"id":"evt_2"}'}


def arrival(
    webhook_id: str,
    *,
    body: bytes | None = None,
    answer: int = 200,
    verified: bool = True,
    endpoint: str = "a",
) -> Arrival:
    return Arrival(
        endpoint=endpoint,
        webhook_id=webhook_id,
        timestamp="1",
        body=PUBLISHED.get(webhook_id, b"{}") if body is None else body,
        verified=verified,
        error=None if verified else "NoMatchingSignatureError",
        answer=answer,
        at=0.0,
    )


def test_every_pair_accepted_once_passes() -> None:
    """Each published id accepted once, verified, byte-identical: ok, nothing counted."""
    report = check_pairs(PUBLISHED, [arrival("evt_1"), arrival("evt_2")], "a")
    assert report.ok
    assert (report.duplicates, report.refused, report.missing) == (0, 0, frozenset())


def test_duplicates_and_refusals_are_counted_not_failed() -> None:
    """A redelivered id (same bytes) and a refused attempt before acceptance are allowed."""
    arrivals = [arrival("evt_1", answer=503), arrival("evt_1"), arrival("evt_1"), arrival("evt_2")]
    report = check_pairs(PUBLISHED, arrivals, "a")
    assert report.ok
    assert (report.duplicates, report.refused) == (1, 1)


@pytest.mark.parametrize(
    ("arrivals", "field", "expected"),
    [
        ([arrival("evt_1")], "missing", frozenset({"evt_2"})),
        ([arrival("evt_1"), arrival("evt_2", answer=503)], "missing", frozenset({"evt_2"})),
        ([arrival("evt_1"), arrival("evt_2", answer=NO_ANSWER)], "missing", frozenset({"evt_2"})),
        ([arrival("evt_1"), arrival("evt_2", verified=False)], "missing", frozenset({"evt_2"})),
        (
            [arrival("evt_1"), arrival("evt_2"), arrival("evt_9")],
            "unknown",
            frozenset({"evt_9"}),
        ),
        ([arrival("evt_1"), arrival("evt_2"), arrival("evt_2", verified=False)], "unverified", 1),
        ([arrival("evt_1"), arrival("evt_2"), arrival("evt_2", body=b"{}")], "corrupted", 1),
    ],
)
def test_loss_and_damage_fail_the_check(
    arrivals: list[Arrival], field: str, expected: object
) -> None:
    """A missing pair, an unknown id, a bad signature or a changed body fails the ledger."""
    report = check_pairs(PUBLISHED, arrivals, "a")
    assert not report.ok
    assert getattr(report, field) == expected


def test_other_endpoints_do_not_count() -> None:
    """Arrivals at another endpoint never satisfy this endpoint's pairs."""
    report = check_pairs(PUBLISHED, [arrival("evt_1"), arrival("evt_2", endpoint="b")], "a")
    assert report.missing == frozenset({"evt_2"})


def test_integrity_problems_name_every_damaged_arrival() -> None:
    """At failing-by-design endpoints too: unknown ids, bad signatures, changed bodies."""
    problems = integrity_problems(
        PUBLISHED,
        [
            arrival("evt_1"),
            arrival("evt_9"),
            arrival("evt_2", body=b"x"),
            arrival("evt_1", verified=False),
        ],
    )
    assert len(problems) == 3
