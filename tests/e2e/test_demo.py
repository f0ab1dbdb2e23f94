"""`webhooks demo` runs the whole path on the embedded stack and settles by itself."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from devtools.demo import DEMO_EVENTS, run_demo

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


async def test_the_demo_settles_every_delivery_and_prints_the_summary(tmp_path: Path) -> None:
    """Every demo delivery ends succeeded or failed, signatures all verify, and the summary
    shows the always-failing endpoint's failures and the commands to replay them."""
    out = io.StringIO()
    code = await run_demo({}, out, state=tmp_path / "state")
    text = out.getvalue()
    assert code == 0, text
    rows = {
        line.split()[0]: line.split()
        for line in text.splitlines()
        if line.split()
        and line.split()[0] in {"healthy", "flaky", "slow", "always-failing", "parent-firehose"}
    }
    third = DEMO_EVENTS // 3
    assert rows["healthy"][1] == str(third)
    assert rows["flaky"][1] == str(third)
    assert rows["slow"][1] == str(third)
    assert rows["parent-firehose"][1] == str(DEMO_EVENTS)
    assert (rows["always-failing"][1], rows["always-failing"][3]) == ("0", str(third))
    for row in rows.values():
        verified, total = row[-1].split("/")
        assert verified == total
    assert "webhooks replay --endpoint ep_" in text
    assert (tmp_path / "state" / "webhooks.db").exists()
