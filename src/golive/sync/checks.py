"""Pre-checks on the staged rows of a table, before anything is committed: foreign keys that would
dangle, case-insensitive collisions on columns that must be unique (username, email), and the target's
CHECK constraints (Django's PositiveIntegerField is one). Each names the table, the keys and the column."""

from __future__ import annotations

from typing import Any

from golive.errors import ConfigError
from golive.sync.mapping import TableMap
from golive.sync.source import ident
from golive.sync.verify import key_sql

__all__ = ["UNIQUE_INDEXES", "check_violations", "collisions", "foreign_rows", "orphans", "parents_first", "unique_clashes"]

_FKS = """
SELECT a.attname, pt.relname, pa.attname
FROM pg_constraint c
JOIN pg_class t ON t.oid = c.conrelid
JOIN pg_class pt ON pt.oid = c.confrelid
JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
JOIN pg_attribute pa ON pa.attrelid = c.confrelid AND pa.attnum = c.confkey[1]
WHERE c.contype = 'f' AND t.relname = %s AND cardinality(c.conkey) = 1
"""


def parents_first(target: Any, tables: tuple[TableMap, ...] | list[TableMap]) -> None:
    """The mapping syncs tables in the order listed, parents before children: a table listed before one its
    foreign key points at is a config error (its rows' parents would not be there yet for the orphan check).
    Two tables that point at each other can only be listed one way round: left as they are."""
    at = {t.target: i for i, t in enumerate(tables)}
    points = {t.target: {(column, parent) for column, parent, _ in target.execute(_FKS, (t.target,)).fetchall()
                         if column in t.target_columns and parent in at} for t in tables}
    for i, table in enumerate(tables):
        for column, parent in sorted(points[table.target]):
            back = any(p == table.target for _, p in points[parent])
            if at[parent] > i and not back:
                raise ConfigError(f"mapping.toml: table {table.target} is synced before {parent}, which its column"
                                  f" {column} points at", hint=f"list the [[table]] of {parent} before that of"
                                  f" {table.target} (parents before children)")


def orphans(target: Any, table: TableMap, key_sql: str, left_out: frozenset[str] = frozenset()) -> list[str]:
    """One message per foreign key of the staged rows that points at nothing; ``left_out``: the mapped target
    tables this sync does not include (`--tables`), whose rows may be the missing parents."""
    problems = []
    order = ", ".join(f"s.{ident(k)}" for k in table.target_key)
    for column, parent, parent_column in target.execute(_FKS, (table.target,)).fetchall():
        if column not in table.target_columns:
            continue
        rows = target.execute(
            f"SELECT {key_sql} FROM golive_stage s WHERE s.{ident(column)} IS NOT NULL AND NOT EXISTS"
            f" (SELECT 1 FROM {ident(parent)} p WHERE p.{ident(parent_column)} = s.{ident(column)}) ORDER BY {order} LIMIT 6"
        ).fetchall()
        if rows:
            keys = ", ".join(r[0] for r in rows[:5]) + (", …" if len(rows) > 5 else "")
            problems.append(f"table {table.target}, column {column}: rows with key {keys} point at {parent} rows"
                            " that do not exist (orphans)" + (f"; {parent} is mapped but not in this sync: add it to"
                                                              " --tables" if parent in left_out else ""))
    return problems


_CHECKS = """
SELECT c.conname, pg_get_expr(c.conbin, c.conrelid),
       array(SELECT a.attname FROM pg_attribute a WHERE a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
             ORDER BY a.attnum)
FROM pg_constraint c WHERE c.conrelid = %s::regclass AND c.contype = 'c' ORDER BY c.conname
"""


def check_violations(target: Any, table: TableMap, key_sql: str) -> list[str]:
    """One message per CHECK constraint of the target table that staged rows break, naming the keys and their
    values. The staging table has none of the target's constraints, so such a row failed the merge as a bare
    "new row … violates check constraint", naming no row. The rows found are taken out of the staging table, so
    the merge goes on and the other tables' problems are found too (the run stops before its commit). A
    constraint on a column this sync does not write is left to the merge (its value is the target's, not staged)."""
    problems, broken = [], []
    order = ", ".join(f"s.{ident(k)}" for k in table.target_key)
    for name, expression, columns in target.execute(_CHECKS, (ident(table.target),)).fetchall():
        if not columns or not set(columns) <= set(table.target_columns):
            continue
        rows = target.execute(f"SELECT {key_sql}, {_shown(columns)} FROM golive_stage s WHERE ({expression}) IS FALSE"
                              f" ORDER BY {order} LIMIT 6").fetchall()
        if rows:
            keys = "; ".join(f"{key} ({values})" for key, values in rows[:5]) + ("; …" if len(rows) > 5 else "")
            problems.append(f"table {table.target}, column {', '.join(columns)}: rows with key {keys} break the"
                            f" target's check constraint {name}: CHECK {expression}")
            broken.append(expression)
    if broken:  # (after every constraint was asked: taken out at once, one broken constraint hid the others)
        target.execute(f"DELETE FROM golive_stage s WHERE {' OR '.join(f'({e}) IS FALSE' for e in broken)}")
    return problems


def _shown(columns: list[str], alias: str = "s") -> str:
    """SQL: ``column=value, …`` of a row, for a message (NULL as NULL; a quote in a column's name is a quote)."""
    return " || ', ' || ".join("'" + c.replace("'", "''") + f"=' || coalesce({alias}.{ident(c)}::text, 'NULL')"
                               for c in columns)


UNIQUE_INDEXES = """
SELECT c.relname, array(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY AS k(n, o)
                        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n ORDER BY k.o),
       i.indimmediate
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = %s::regclass AND i.indisunique AND NOT i.indisprimary AND i.indpred IS NULL AND i.indexprs IS NULL
ORDER BY i.indexrelid
"""


def unique_clashes(target: Any, table: TableMap, key_sql: str, gone: set[Any], int_key: bool, synced: Any) -> list[str]:
    """One message per unique index of the target (other than its key's, and than a ``unique_ci`` column's, which
    :func:`collisions` checks) that staged rows would break: two source rows with one value (an email the old app
    let two users share), or a value a target row the sync leaves in place holds — a synced row the source has
    too (it did not change, so the source holds the value twice) or a row of the new application. Found by the
    merge, it was one bare "already exists" blaming the new application. ``gone``: keys the merge deletes first;
    ``synced``: the keys golive synced before (ints with ``int_key``, else canonical text)."""
    problems: list[str] = []
    if target.execute(f"SELECT NOT EXISTS (SELECT 1 FROM {ident(table.target)})").fetchone()[0]:
        return problems  # (into an empty table the merge inserts in one statement, and says which value: merge.py)
    key_o = key_sql.replace("s.", "o.")
    same_key = " AND ".join(f"x.{ident(k)} = o.{ident(k)}" for k in table.target_key)
    for index, columns, _ in target.execute(UNIQUE_INDEXES, (ident(table.target),)).fetchall():
        if not set(columns) <= set(table.target_columns) or set(columns) <= set(table.target_key) or \
                (len(columns) == 1 and columns[0] in table.unique_ci):
            continue  # (a deferrable one too: it must hold at the commit)
        staged = ", ".join(f"s.{ident(c)}" for c in columns)
        values = _shown(columns)
        present = " AND ".join(f"s.{ident(c)} IS NOT NULL" for c in columns)
        for keys, shown in target.execute(
                f"SELECT string_agg({key_sql}, ', ' ORDER BY {key_sql}), min({values}) FROM golive_stage s WHERE {present}"
                f" GROUP BY {staged} HAVING count(*) > 1 ORDER BY 1 LIMIT 5").fetchall():
            problems.append(f"table {table.target}: source rows with key {keys} have the same {shown}, which the"
                            f" target's unique index {index} allows once")
        held = ", ".join(f"o.{ident(c)}" for c in columns)
        query = (f"SELECT {key_sql}, {key_o}, {values} FROM golive_stage s JOIN {ident(table.target)} o ON ({held}) ="
                 f" ({staged}) WHERE NOT EXISTS (SELECT 1 FROM golive_stage x WHERE {same_key})")
        if gone:  # (with a parameter: a "%" in a column's name is written "%%")
            query = query.replace("%", "%%") + \
                f" AND NOT {'o.' + ident(table.target_key[0]) if int_key else key_o} = ANY(%(gone)s)"
        for key, holder, shown in target.execute(query + " ORDER BY 1 LIMIT 5",
                                                 {"gone": sorted(gone)} if gone else None).fetchall():
            mine = (int(holder) if int_key else holder) in synced
            whose = f"synced row {holder}, whose source row has it too" if mine else \
                f"row {holder}, which golive did not sync (made in the new application: change the value there or in" \
                " the source)"
            problems.append(f"table {table.target}: source row {key} has {shown}, which the target's unique index"
                            f" {index} allows once: {whose}")
    return problems


def collisions(target: Any, table: TableMap, key_sql: str, gone: set[Any] | None = None, int_key: bool = False,
               synced: Any = ()) -> list[str]:
    """Values of ``unique_ci`` columns that differ only in case, among staged and existing rows. Case is
    folded by Unicode's rules (ICU's root collation where PostgreSQL has it): the database's own ``lower()``
    folds only ASCII under the C locale, and `ÉMILE@…` and `émile@…` passed as different. ``gone``: the keys
    the merge deletes first (ints with ``int_key``, else canonical text) — a user who left and signed up again
    under the same name is one row, not a collision. A target row neither staged nor in ``synced`` (the keys
    golive synced before) is named as the new application's."""
    if not table.unique_ci:
        return []
    problems = []
    same_key = " AND ".join(f"t.{ident(k)} = s.{ident(k)}" for k in table.target_key)
    key_t = key_sql.replace("s.", "t.")
    staying = ""
    if gone:
        gone_t = f"t.{ident(table.target_key[0])}" if int_key else key_t
        staying = f" AND NOT {gone_t} = ANY(%(gone)s)"
    icu = target.execute("SELECT EXISTS (SELECT 1 FROM pg_collation WHERE collname = 'und-x-icu')").fetchone()[0]
    fold = "lower(v COLLATE \"und-x-icu\")" if icu else "lower(v)"
    for column in table.unique_ci:
        head = (f"SELECT {fold}, array_agg(k ORDER BY k), array_agg(v ORDER BY k), array_agg(staged ORDER BY k) FROM ("
                f" SELECT {key_sql} AS k, s.{ident(column)}::text AS v, true AS staged FROM golive_stage s"
                f" UNION ALL SELECT {key_t}, t.{ident(column)}::text, false FROM {ident(table.target)} t"
                f" WHERE NOT EXISTS (SELECT 1 FROM golive_stage s WHERE {same_key})")
        tail = f") AS x WHERE v IS NOT NULL AND v <> '' GROUP BY {fold} HAVING count(*) > 1 ORDER BY 1 LIMIT 5"
        if gone:  # (with a parameter: a "%" in a column's name is written "%%")
            head, tail = head.replace("%", "%%"), tail.replace("%", "%%")
        rows = target.execute(head + staying + tail, {"gone": sorted(gone)} if gone else None).fetchall()
        for _, keys, values, staged in rows:
            theirs = [not fresh and (int(k) if int_key else k) not in synced for k, fresh in zip(keys, staged, strict=True)]
            which = "; ".join(f"{k}={v}" + (" (a row golive did not sync, made in the new application: change the"
                                             " value there or in the source)" if made else "")
                              for k, v, made in zip(keys, values, theirs, strict=True))
            # (the very same value: the mapping's transforms made it so — `lower`, `strip`, `nfkc`)
            alike = "the same value once transformed" if len(set(values)) == 1 else "values equal but for case"
            problems.append(f"table {table.target}, column {column}: {alike}: {which}")
    return problems


def foreign_rows(target: Any, table: TableMap, new_keys: set[Any], int_key: bool, typnames: dict[str, str]) -> list[str]:
    """Staged keys golive never synced that exist in the target all the same: rows of the new app.
    ``new_keys``: ints with ``int_key`` (one integer key column), else canonical text."""
    if not new_keys:
        return []
    tgt = ident(table.target)
    if target.execute(f"SELECT NOT EXISTS (SELECT 1 FROM {tgt})").fetchone()[0]:
        return []  # the usual first sync: nothing there to collide with
    key_t = f"t.{ident(table.target_key[0])}" if int_key else key_sql("t", table.target_key, typnames)
    target.execute(f"CREATE TEMP TABLE golive_new_keys (key {'int8' if int_key else 'text'}) ON COMMIT DROP")
    with target.cursor().copy("COPY golive_new_keys (key) FROM STDIN") as copy:
        for key in sorted(new_keys):
            copy.write_row((key,))
    # planned with the temp table's statistics and without the LIMIT: with them the planner bet on finding six
    # matches early and walked the target's index against every new key (a nested loop: 30,000 rows × 100,000 new
    # keys took 3.5 minutes), when there are usually none at all
    target.execute("ANALYZE golive_new_keys")
    rows = target.execute(f"WITH found AS MATERIALIZED (SELECT {key_t} AS key FROM {tgt} t JOIN golive_new_keys n"
                          f" ON n.key = {key_t}) SELECT key FROM found ORDER BY 1 LIMIT 6").fetchall()
    target.execute("DROP TABLE golive_new_keys")
    if not rows:
        return []
    keys = ", ".join(str(r[0]).replace("\x1f", ",") for r in rows[:5]) + (", …" if len(rows) > 5 else "")
    return [f"table {table.target}: rows with key {keys} exist in the target but were not synced by golive"
            " (made in the new application?); golive never overwrites them: delete them there or give them other keys"
            " (rows made in the new database after a rehearsal take the keys the old application hands out next)"]
