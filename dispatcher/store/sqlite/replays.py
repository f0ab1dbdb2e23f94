"""Replays on the SQLite backend: resetting deliveries to a fresh ladder (`replay`, for the
on-call replay of chosen deliveries and for each step of a job) and the bulk replay jobs
(create one with a snapshot of the deliveries its filter matches, read them, advance one by
a batch). The bodies of `SQLiteStore`'s replay methods, as functions of the store's worker
helpers (`Runner`), and the functions its worker thread runs inside one transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection
from datetime import datetime
from functools import partial
from typing import Any

from dispatcher.store import schema
from dispatcher.store.records import ReplayFilter, ReplayJobRecord, ReplayJobStatus, ReplayStep
from dispatcher.store.sqlite.encoding import dt, json_list, maybe_us, us
from dispatcher.store.sqlite.reads import MATCHING_DELIVERIES, delivery_filters
from dispatcher.store.sqlite.transactions import Runner

# -- the store's replay methods -------------------------------------------------------------


async def replay_deliveries(
    db: Runner, delivery_ids: Collection[str], *, actor: str, reason: str, now: datetime
) -> int:
    return await db._write(
        partial(replay, delivery_ids=delivery_ids, actor=actor, reason=reason, at=us(now))
    )


async def create_replay_job(
    db: Runner,
    *,
    job_id: str,
    organization_id: str,
    filter: ReplayFilter,
    actor: str,
    reason: str,
    now: datetime,
) -> tuple[ReplayJobRecord, bool]:
    row = {
        "id": job_id,
        "organization_id": organization_id,
        "endpoint_id": filter.endpoint_id,
        "filter_key": schema.replay_filter_key(filter),
        "since": maybe_us(filter.since),
        "until": maybe_us(filter.until),
        "statuses": schema.dump_scopes([s.value for s in filter.statuses]),
        "types": schema.dump_event_types(filter.types),
        "actor": actor,
        "reason": reason,
        "created_at": us(now),
    }
    job, created = await db._write(partial(_create_job, row=row, selection=filter))
    return schema.replay_job_from_row(job, dt), created


async def get_replay_job(db: Runner, job_id: str) -> ReplayJobRecord | None:
    row = await db._one("SELECT * FROM replay_jobs WHERE id = ?", (job_id,))
    return None if row is None else schema.replay_job_from_row(row, dt)


async def list_replay_jobs(
    db: Runner, *, org: str | None, after: str | None, limit: int
) -> list[ReplayJobRecord]:
    rows = await db._all(
        """
        SELECT * FROM replay_jobs
        WHERE (?1 IS NULL OR organization_id = ?1) AND (?2 IS NULL OR id < ?2)
        ORDER BY id DESC LIMIT ?3
        """,
        (org, after, limit),
    )
    return [schema.replay_job_from_row(row, dt) for row in rows]


async def active_replay_jobs(db: Runner) -> list[ReplayJobRecord]:
    rows = await db._all(
        "SELECT * FROM replay_jobs WHERE status IN ('queued', 'running') ORDER BY created_at, id"
    )
    return [schema.replay_job_from_row(row, dt) for row in rows]


async def advance_replay_job(db: Runner, job_id: str, *, limit: int, now: datetime) -> ReplayStep:
    job, processed = await db._write(partial(_advance_job, job_id=job_id, limit=limit, now=us(now)))
    record = None if job is None else schema.replay_job_from_row(job, dt)
    return ReplayStep(job=record, processed=processed)


# -- what the worker thread runs, inside one transaction ------------------------------------


def replay(
    conn: sqlite3.Connection,
    delivery_ids: Collection[str],
    *,
    actor: str,
    reason: str,
    at: int,
    job_id: str | None = None,
) -> int:
    """Restart deliveries' ladders (attempts keep counting) and record the replay; return
    how many existed."""
    replayed = conn.execute(
        """
        UPDATE deliveries SET status = 'pending', reason = NULL, ladder_start = attempts,
            next_attempt_at = ?1, waiting_reason = 'replay_queued', lease_owner = NULL,
            lease_expires_at = NULL,
            updated_at = ?1
        WHERE id IN (SELECT value FROM json_each(?2))
        RETURNING id
        """,
        (at, json_list(delivery_ids)),
    ).fetchall()
    conn.executemany(
        "INSERT INTO replays (delivery_id, actor, reason, at, job_id) VALUES (?, ?, ?, ?, ?)",
        [(row[0], actor, reason, at, job_id) for row in replayed],
    )
    return len(replayed)


def replay_filter_params(selection: ReplayFilter) -> dict[str, Any]:
    return delivery_filters(
        selection.endpoint_id,
        selection.statuses,
        selection.types,
        selection.since,
        selection.until,
    )


def _create_job(
    conn: sqlite3.Connection, *, row: dict[str, Any], selection: ReplayFilter
) -> tuple[sqlite3.Row, bool]:
    """Insert a job and snapshot its deliveries, unless an active job has the same filter.
    One writer at a time (BEGIN IMMEDIATE), so the check and the insert cannot race."""
    existing = conn.execute(_ACTIVE_JOB_BY_FILTER, (row["filter_key"],)).fetchone()
    if existing is not None:
        return existing, False
    conn.execute(_INSERT_REPLAY_JOB, row)
    total = conn.execute(
        "INSERT INTO replay_job_items (job_id, delivery_id) "  # noqa: S608 - constant text
        "SELECT :job_id, d.id FROM deliveries AS d JOIN events AS e ON e.id = d.event_id "
        + MATCHING_DELIVERIES,
        {**replay_filter_params(selection), "job_id": row["id"]},
    ).rowcount
    status = ReplayJobStatus.QUEUED if total else ReplayJobStatus.SUCCEEDED
    conn.execute(
        "UPDATE replay_jobs SET total = ?, status = ?, finished_at = ? WHERE id = ?",
        (total, status.value, None if total else row["created_at"], row["id"]),
    )
    job = conn.execute("SELECT * FROM replay_jobs WHERE id = ?", (row["id"],)).fetchone()
    return job, True


def _advance_job(
    conn: sqlite3.Connection, *, job_id: str, limit: int, now: int
) -> tuple[sqlite3.Row | None, int]:
    job = conn.execute("SELECT * FROM replay_jobs WHERE id = ?", (job_id,)).fetchone()
    if job is None or job["status"] not in (ReplayJobStatus.QUEUED, ReplayJobStatus.RUNNING):
        return job, 0
    ids = [
        row[0]
        for row in conn.execute(
            "SELECT delivery_id FROM replay_job_items WHERE job_id = ? "
            "ORDER BY delivery_id LIMIT ?",
            (job_id, limit),
        )
    ]
    replay(conn, ids, actor=job["actor"], reason=job["reason"], at=now, job_id=job_id)
    conn.execute(
        "DELETE FROM replay_job_items WHERE job_id = ? "
        "AND delivery_id IN (SELECT value FROM json_each(?))",
        (job_id, json_list(ids)),
    )
    more = conn.execute(
        "SELECT 1 FROM replay_job_items WHERE job_id = ? LIMIT 1", (job_id,)
    ).fetchone()
    status = ReplayJobStatus.RUNNING if more else ReplayJobStatus.SUCCEEDED
    conn.execute(
        "UPDATE replay_jobs SET done = done + ?, status = ?, updated_at = ?, finished_at = ? "
        "WHERE id = ?",
        (len(ids), status.value, now, None if more else now, job_id),
    )
    job = conn.execute("SELECT * FROM replay_jobs WHERE id = ?", (job_id,)).fetchone()
    return job, len(ids)


_ACTIVE_JOB_BY_FILTER = (
    "SELECT * FROM replay_jobs WHERE filter_key = ? AND status IN ('queued', 'running')"
)

_INSERT_REPLAY_JOB = """
    INSERT INTO replay_jobs (id, organization_id, endpoint_id, filter_key, since, until,
        statuses, types, status, actor, reason, created_at, updated_at)
    VALUES (:id, :organization_id, :endpoint_id, :filter_key, :since, :until, :statuses,
        :types, 'queued', :actor, :reason, :created_at, :created_at)
"""
