"""Values made to fit each binary-COPY column type, as PostgreSQL's text input would have read them,
then sent by binary COPY to a real PostgreSQL and read back."""

from __future__ import annotations

import datetime
import uuid
from decimal import Decimal
from zoneinfo import ZoneInfo

import psycopg

from golive.sync.pgtypes import ColumnType, fit_column

KINDS = [ColumnType("j", "jsonb"), ColumnType("js", "json"), ColumnType("n", "numeric"), ColumnType("f", "float8"),
         ColumnType("u", "uuid"), ColumnType("d", "date"), ColumnType("b", "bytea"), ColumnType("ts", "timestamp"),
         ColumnType("tz", "timestamptz"), ColumnType("s", "int2"), ColumnType("v", "varchar", 3), ColumnType("ok", "bool")]
DDL = ("CREATE TABLE fit (j jsonb, js json, n numeric(10,2), f float8, u uuid, d date, b bytea, ts timestamp,"
       " tz timestamptz, s int2, v varchar(3), ok bool)")
U = uuid.UUID("12345678-1234-5678-1234-567812345678")
ROWS = [
    [{"a": [1, 2]}, '{"b": 1}', 5, 3, str(U), "2020-02-03", b"\x00\x01", "2020-01-01 10:00:00+02:00",
     "2020-01-01 10:00:00", "12", 7, "1"],
    ["[1]", [2], "1.25", 2.5, U, datetime.datetime(2020, 1, 1, 5), memoryview(b"x"), datetime.datetime(2020, 1, 1),
     datetime.datetime(2020, 1, 1, 10, tzinfo=datetime.UTC), 3, "abc", 0],
]


def fitted(rows: list[list[object]], zone: str = "Europe/Paris") -> tuple[list[tuple[object, ...]], list[tuple[int, str]]]:
    bad: list[tuple[int, str]] = []
    columns = [fit_column(list(col), kind, ZoneInfo(zone), lambda i, reason: bad.append((i, reason)))
               for col, kind in zip(zip(*rows, strict=True), KINDS, strict=True)]
    return list(zip(*columns, strict=True)), bad


def test_values_fit_each_type_and_round_trip_through_binary_copy(pg_cluster) -> None:
    name = f"fit_{uuid.uuid4().hex[:8]}"
    url = pg_cluster.create_database(name)
    pg_cluster.psql(DDL, name)
    rows, bad = fitted(ROWS)
    assert bad == []
    with psycopg.connect(url) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        with conn.cursor().copy("COPY fit FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types([k.typname for k in KINDS])
            for row in rows:
                copy.write_row(row)
        back = conn.execute("SELECT * FROM fit").fetchall()
    utc = datetime.UTC
    assert back == [
        ({"a": [1, 2]}, {"b": 1}, Decimal("5.00"), 3.0, U, datetime.date(2020, 2, 3), b"\x00\x01",
         datetime.datetime(2020, 1, 1, 8), datetime.datetime(2020, 1, 1, 9, tzinfo=utc), 12, "7", True),
        ([1], [2], Decimal("1.25"), 2.5, U, datetime.date(2020, 1, 1), b"x", datetime.datetime(2020, 1, 1),
         datetime.datetime(2020, 1, 1, 10, tzinfo=utc), 3, "abc", False),
    ]  # a naive time stamp read in the source zone (Paris, UTC+1 in January); an offset converted to UTC


def test_values_that_cannot_fit_are_named() -> None:
    rows = [[None] * len(KINDS) for _ in range(2)]
    for i, value in enumerate(["{oops", None, "1,5", "x", "not-a-uuid", "2020-13-01", "text", "yesterday", 42,
                               70000, "abcd", "maybe"]):
        rows[1][i] = value
    _, bad = fitted(rows)
    assert bad == [(1, "not valid JSON (Expecting property name enclosed in double quotes)"), (1, "'1,5' is not a number"),
                   (1, "'x' is not a number"), (1, "'not-a-uuid' is not a UUID"), (1, "'2020-13-01' is not a date"),
                   (1, "'text' is not binary data"), (1, "'yesterday' is not a date-time"), (1, "42 is not a date-time"),
                   (1, "70000 is out of range for int2"), (1, "4 characters, longer than varchar(3)"),
                   (1, "'maybe' is not a boolean (0/1, true/false, t/f)")]
