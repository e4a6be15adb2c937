"""What stops a sync whose mapping or source cannot give one row per key with its parents there, each said as
what to fix: a table listed before its parent, a parent left out of `--tables`, a key the source repeats, a
value a row made in the new application already holds."""

from __future__ import annotations

import psycopg

from tests.sync.test_sync import REPO, Dir


def own_mapping(dirfinal: Dir, text: str) -> None:
    (dirfinal.project / "mapping.toml").write_text(text)
    config = dirfinal.project / "golive.toml"
    config.write_text(config.read_text().replace(str(REPO / "examples" / "dirfinal" / "mapping.toml"),
                                                 str(dirfinal.project / "mapping.toml")))


def example() -> str:
    return (REPO / "examples" / "dirfinal" / "mapping.toml").read_text()


def test_a_table_listed_before_its_parent_is_a_config_error_before_anything_runs(dirfinal: Dir, cli) -> None:
    """It was the orphan check's "fix the source data": the parent's rows were not there yet."""
    mapping = example()
    users = mapping[mapping.index("[[table]]\nsource = \"user\""):mapping.index("[[table]]\nsource = \"entry\"")]
    own_mapping(dirfinal, mapping.replace(users, "") + "\n" + users)
    said = ("error: mapping.toml: table directory_entry is synced before auth_user, which its column owner_id points"
            " at — list the [[table]] of auth_user before that of directory_entry (parents before children)\n")
    for args in (["--dry-run"], ["--yes"]):
        stopped = cli("sync", *args)
        assert (stopped.exit_code, stopped.stderr) == (2, said), args
    assert dirfinal.count("auth_user") == 0
    assert cli("history").stdout.startswith("no runs")


def test_orphans_whose_parent_table_was_left_out_of_tables_say_to_add_it(dirfinal: Dir, cli) -> None:
    stopped = cli("sync", "--yes", "--tables", "entry")
    assert stopped.exit_code == 1
    assert ("table directory_entry, column owner_id: rows with key 1, 2, 3, 4, 5, … point at auth_user rows that do"
            " not exist (orphans); auth_user is mapped but not in this sync: add it to --tables") in stopped.stderr
    assert cli("sync", "--yes", "--tables", "user,entry").exit_code == 0


def test_a_key_the_source_has_twice_is_named(dirfinal: Dir, cli) -> None:
    """It was PostgreSQL's "duplicate key value violates unique constraint" naming no key, or a failed
    verification blaming the transforms."""
    mapping = example()
    own_mapping(dirfinal, mapping.replace('source = "family"\n', 'query = "SELECT id, name FROM family UNION ALL'
                                          ' SELECT id, name FROM family WHERE id = 3"\n', 1))
    stopped = cli("sync", "--yes")
    assert stopped.exit_code == 1
    assert stopped.stderr.startswith(
        "error: step sync all tables failed: table query -> directory_family: the source has key id = 3 more than"
        " once; nothing was written — a [[table]] key must name each source row once: fix `key` in mapping.toml (or"
        " the query) — rolled back 1 step(s)"), stopped.stderr
    assert dirfinal.count("auth_user") == 0


def test_a_value_a_row_of_the_new_application_holds_is_named_not_a_raw_constraint_error(dirfinal: Dir, cli) -> None:
    with psycopg.connect(dirfinal.target_url, autocommit=True) as app:  # signed up in the new site, not synced
        app.execute("INSERT INTO auth_user (id, username, password, email, first_name, last_name, is_superuser,"
                    " is_staff, is_active, date_joined) VALUES (9001, 'taken', '!', 'x@example.org', '', '', false,"
                    " false, true, now())")
    dirfinal.source_sql("UPDATE user SET username = 'taken' WHERE id = 4")
    stopped = cli("sync", "--yes")
    assert stopped.exit_code == 1
    assert stopped.stderr.startswith(
        "error: step sync all tables failed: 1 pre-check problem(s); first: table auth_user, column username: the"
        " same value once transformed: 4=taken; 9001=taken (a row golive did not sync, made in the new application:"
        " change the value there or in the source) — fix each where it says: the source data, the mapping, or rows"
        " made in the new database; nothing was written — rolled back 1 step(s)"), stopped.stderr


def test_usernames_equal_but_for_the_case_of_a_letter_beyond_ascii_are_caught(dirfinal: Dir, cli) -> None:
    """The target's lower() folds only ASCII under the C locale: ÉMILE and émile passed as two users."""
    dirfinal.source_sql("UPDATE user SET username = 'émile' WHERE id = 2")
    dirfinal.source_sql("UPDATE user SET username = 'ÉMILE' WHERE id = 5")
    stopped = cli("sync", "--yes")
    assert stopped.exit_code == 1
    assert "first: table auth_user, column username: values equal but for case: 2=émile; 5=ÉMILE" in stopped.stderr
    assert dirfinal.count("auth_user") == 0


def test_usernames_normalised_by_nfkc_log_in_through_djangos_login_form(dirfinal: Dir, cli) -> None:
    """Django's login form normalises what the user types (NFKC) and compares it with the stored username: one
    stored decomposed ("e" + combining acute) or with a ligature never matched. The example maps it through
    `nfkc`, as Django stores usernames."""
    import sqlite3
    import unicodedata

    from tests.sync.test_sync import django

    db = sqlite3.connect(dirfinal.source)
    name = db.execute("SELECT username FROM user WHERE password_hash LIKE 'pbkdf2%' AND active = 1 LIMIT 1").fetchone()[0]
    db.close()
    stored = unicodedata.normalize("NFD", "chloé") + "\ufb01"  # decomposed é, then the ligature "ﬁ"
    dirfinal.source_sql(f"UPDATE user SET username = '{stored}' WHERE username = '{name}'")
    assert cli("sync", "--yes").exit_code == 0
    typed = "chloéfi"  # what the user types, composed: the form normalises it to NFKC either way
    code = ("from django.contrib.auth.forms import AuthenticationForm; "
            f"print('OK' if AuthenticationForm(data={{'username': {typed!r}, 'password': {f'pw-{name}'!r}}}).is_valid()"
            " else 'NO')")
    out = django(dirfinal, "shell", "-c", code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "OK"


def test_a_user_who_left_and_signed_up_again_under_the_same_name_is_synced_not_a_collision(dirfinal: Dir, cli) -> None:
    """The row the incremental sync deletes (the old account) was still counted: "values equal but for case:
    3=goran3; 9999=goran3" stopped the final sync for a source that holds one goran3."""
    assert cli("sync", "--yes").exit_code == 0
    for child in ("score", "family_member"):
        dirfinal.source_sql(f"DELETE FROM {child} WHERE user_id = 3")
    dirfinal.source_sql("UPDATE entry SET owner_id = 1, updated_at = '2099-01-01 00:00:00' WHERE owner_id = 3")
    dirfinal.source_sql("UPDATE user SET username = 'gone' WHERE id = 3")  # (the source's own unique index)
    dirfinal.source_sql("INSERT INTO user SELECT 9999, 'goran3', upper(email), password_hash, active, is_admin,"
                        " created_at, '2099-01-01 00:00:00' FROM user WHERE id = 3")
    dirfinal.source_sql("DELETE FROM user WHERE id = 3")
    synced = cli("sync", "--yes")
    assert synced.exit_code == 0, synced.stderr
    with psycopg.connect(dirfinal.target_url) as conn:
        assert conn.execute("SELECT id, email FROM auth_user WHERE username = 'goran3'").fetchall() == [
            (9999, "goran3@example.org")]
    dirfinal.source_sql("INSERT INTO user SELECT 10000, 'GORAN3', 'other@example.org', password_hash, active,"
                        " is_admin, created_at, '2099-01-01 00:00:00' FROM user WHERE id = 9999")
    stopped = cli("sync", "--yes")  # (a second one alongside it still is one)
    assert stopped.exit_code == 1
    assert "column username: values equal but for case: 10000=GORAN3; 9999=goran3" in stopped.stderr, stopped.stderr


def test_usernames_renamed_in_a_chain_sync_and_an_exchange_is_one_line_naming_the_rows(dirfinal: Dir, cli) -> None:
    """PostgreSQL checks a unique index row by row: user 2 taking the name user 1 gave up failed the update
    ("a synced row would take a value another row of the target already holds … a row made in the new
    application has it") whenever user 2's row came first, though no row of the new application was involved."""
    assert cli("sync", "--yes").exit_code == 0
    for sql in ("UPDATE user SET username = 'farah-renamed', updated_at = '2099-01-01' WHERE id = 1",
                "UPDATE user SET username = 'farah1', updated_at = '2099-01-01' WHERE id = 2"):
        dirfinal.source_sql(sql)
    synced = cli("sync", "--yes")
    assert synced.exit_code == 0, synced.stderr
    with psycopg.connect(dirfinal.target_url) as conn:
        names = dict(conn.execute("SELECT id, username FROM auth_user WHERE id IN (1, 2)").fetchall())
    assert names == {1: "farah-renamed", 2: "farah1"}
    for sql in ("UPDATE user SET username = 'tmp', updated_at = '2099-01-02' WHERE id = 1",
                "UPDATE user SET username = 'farah-renamed', updated_at = '2099-01-02' WHERE id = 2",
                "UPDATE user SET username = 'farah1', updated_at = '2099-01-02' WHERE id = 1"):
        dirfinal.source_sql(sql)
    stopped = cli("sync", "--yes")
    assert stopped.exit_code == 1
    assert stopped.stderr.startswith(
        "error: step sync all tables failed: table auth_user: rows with key 1, 2 exchange values of a column the"
        " target keeps unique; PostgreSQL checks a unique index row by row, so no order of updates gets there;"
        " nothing was written — in the new database, give one of those rows a value no other row holds"), stopped.stderr
    with psycopg.connect(dirfinal.target_url) as conn:
        assert dict(conn.execute("SELECT id, username FROM auth_user WHERE id IN (1, 2)").fetchall()) == names
