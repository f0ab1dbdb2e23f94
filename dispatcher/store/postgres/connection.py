"""What every PostgreSQL query module shares about a pooled asyncpg connection: the `Conn`
type the query functions take (they run on a connection `PostgresStore._run` lends them,
which maps its faults), and the two readings of what a connection returns that they all use,
`same` for timestamptz values and `count` for a command status.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from asyncpg import Record
    from asyncpg.pool import PoolConnectionProxy

    Conn: TypeAlias = PoolConnectionProxy[Record]


def same(value: Any) -> datetime:
    """asyncpg already returns aware UTC datetimes for timestamptz."""
    moment: datetime = value
    return moment


def count(status: str) -> int:
    """Rows affected, from a command status such as 'UPDATE 3'."""
    return int(status.rpartition(" ")[2] or 0)
