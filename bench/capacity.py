"""The receiver's raw capacity: wrk POSTing the same 1 KB signed body to the same receiver.

This is the ceiling every end-to-end figure is compared with ("× receiver"): the same
receiver process, verifying every request, with nothing in front of it but a C load
generator. wrk comes from Debian's `wrk` package; when it is missing and we are root with
apt-get, the benchmark installs it (`apt-get install -y wrk`, after an `apt-get update` if
the first try fails). Without it the capacity is reported as skipped, with the reason.

The Lua script signs one body once (a fixed `webhook-timestamp`, well inside the
receiver's 5-minute tolerance), so wrk spends nothing on HMAC: it measures the receiver.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import time
from typing import TYPE_CHECKING, Any

from layers_webhooks import Webhook

from bench.publisher import EventFactory

if TYPE_CHECKING:
    from bench.stack import Stack

DURATION = 5
CONNECTIONS = 64
THREADS = 1  # two cores: one for wrk, one for the receiver
_RATE = re.compile(r"Requests/sec:\s*([\d.]+)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s*(\d+)")
_LATENCY = re.compile(r"^\s*(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)


def ensure_wrk() -> tuple[str | None, str]:
    """The wrk binary, installing Debian's package if we can; else (None, why)."""
    found = shutil.which("wrk")
    if found:
        return found, "wrk was installed"
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        return None, "wrk is not installed and apt-get is unavailable (not root or not Debian)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [apt, "install", "-y", "-qq", "wrk"]
    for steps in ([install], [[apt, "update", "-qq"], install]):
        for step in steps:
            try:
                subprocess.run(step, env=env, capture_output=True, timeout=300, check=False)
            except subprocess.TimeoutExpired:
                return None, f"{' '.join(step)} timed out"
        found = shutil.which("wrk")
        if found:
            return found, "installed by the benchmark (apt-get install -y wrk)"
    return None, "apt-get install -y wrk failed"


def _script(body: bytes, secret: str) -> str:
    event_id = "evt_01JZ7Q8M3S4T5V6W7X8Y9Z0ABC"
    timestamp = int(time.time())
    signature = Webhook(secret).sign_header(event_id, timestamp, body)
    return "\n".join(
        [
            'wrk.method = "POST"',
            f"wrk.body = [=[{body.decode()}]=]",
            'wrk.headers["content-type"] = "application/json"',
            f'wrk.headers["webhook-id"] = "{event_id}"',
            f'wrk.headers["webhook-timestamp"] = "{timestamp}"',
            f'wrk.headers["webhook-signature"] = "{signature}"',
            "",
        ]
    )


def _milliseconds(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


async def measure_capacity(stack: Stack, *, runs: int) -> dict[str, Any]:
    """`runs` wrk runs of DURATION seconds against endpoint 0 of the receiver."""
    wrk, note = await asyncio.to_thread(ensure_wrk)
    if wrk is None:
        return {"skipped": note}
    version = await asyncio.to_thread(
        subprocess.run, [wrk, "--version"], capture_output=True, text=True, check=False
    )
    _, body = EventFactory(["org_bench000"]).make("org_bench000")
    script = stack.workdir / "capacity.lua"
    script.write_text(_script(body, stack.receiver.secrets[0]))
    samples: list[dict[str, Any]] = []
    for _ in range(runs):
        await stack.receiver.control(reset=True, record=False, default="ok", behaviours={})
        command = [wrk, f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{DURATION}s", "--latency"]
        command += ["-s", str(script), stack.receiver.url(0)]
        done = await asyncio.to_thread(
            subprocess.run, command, capture_output=True, text=True, timeout=DURATION + 30
        )
        stats = await stack.receiver.stats()
        rate = _RATE.search(done.stdout)
        non_2xx = _NON_2XX.search(done.stdout)
        latency = {f"p{p}_ms": _milliseconds(v, u) for p, v, u in _LATENCY.findall(done.stdout)}
        samples.append(
            {
                "requests_per_s": float(rate.group(1)) if rate else 0.0,
                "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
                "verified_ok": stats["ok_total"],
                "invalid": stats["invalid"],
                **latency,
            }
        )
    first_line = (version.stdout or version.stderr).splitlines()[:1]
    return {
        "tool": first_line[0] if first_line else "wrk",
        "note": note,
        "command": f"wrk -t{THREADS} -c{CONNECTIONS} -d{DURATION}s --latency -s capacity.lua URL",
        "samples": samples,
    }
