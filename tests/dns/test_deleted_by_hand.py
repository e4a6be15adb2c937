"""Records someone deletes by hand after a switch, against the Linode emulator: a deletion is a hand change, as
a changed target is. The rollback refuses to undo it without --force, and never makes the record again beside
one a colleague made in its place (two A records for www: the site answering from both servers at random)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from golive.sandbox.linode import LinodeEmulator
from tests.dns.conftest import NEW, NEW6, OLD, OLD6, TOKEN, zone

HAND = "192.0.2.50"


def www_a(emulator: LinodeEmulator) -> list[tuple[int, str]]:
    return [(r["id"], r["target"]) for r in zone(emulator) if (r["name"], r["type"]) == ("www", "A")]


def api(emulator: LinodeEmulator, method: str, path: str, **body: Any) -> dict[str, Any]:
    """What a colleague does in the Linode DNS manager: a request through the API."""
    domain = emulator.store.load()["domains"][0]["id"]
    answer = httpx.request(method, f"{emulator.url}/domains/{domain}/records{path}", json=body or None,
                           headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_a_record_deleted_and_made_again_by_hand_is_refused_and_forced_onto_the_new_one(
        dns_project: Path, emulator: LinodeEmulator, cli) -> None:
    """After the switch a colleague deletes www A (#3) and makes www A -> 192.0.2.50 (#7). The rollback made #3
    again beside #7: two answers for www. Now the plan marks it, the rollback refuses (exit 2, nothing changed,
    the --force command named), and `--force` puts the old target back on the record the colleague made — what a
    release engineer expects from "put it back": www answers the old server, once. #3 itself is not made again,
    and nothing is deleted (golive deletes no record it did not make); what #7 held is said and journaled."""
    assert cli("dns", "switch", "--yes", "--no-ttl-wait").exit_code == 0
    api(emulator, "DELETE", "/3")
    made = api(emulator, "POST", "", type="A", name="www", target=HAND, ttl_sec=300)["id"]
    before = zone(emulator)
    planned = cli("rollback", "--dry-run")
    assert (f"      dns www.example.org A #3 (deleted since the run, #{made} made in its place: only with --force):"
            f" {HAND} -> {OLD}") in planned.lines, planned.stdout
    refused = cli("rollback", "--yes")
    assert (refused.exit_code, refused.stderr) == (2, (
        f"error: 1 DNS record(s) were changed by hand since `dns switch to new`: dns www.example.org A #3 was deleted,"
        f" and #{made} made in its place holds {HAND} (before the run: {OLD}); the undo would overwrite them — nothing"
        " was changed; check them in Linode, then run `golive rollback --yes --force` to put them back as before the run"
        " anyway (what they hold now is written to the journal)\n"))
    assert zone(emulator) == before
    # the dry run shows the whole plan, then is refused as the rollback is: a rehearsal script read exit 0 here
    assert (planned.exit_code, planned.stderr) == (2, refused.stderr.replace(" --yes --force", " --force"))
    forced = cli("rollback", "--yes", "--force")
    assert forced.exit_code == 0, forced.stderr
    assert (f"    ! dns www.example.org A #3: was deleted, and #{made} made in its place holds {HAND}, set by someone"
            f" else since the run, overwritten with {OLD} (--force)") in forced.lines, forced.stdout
    assert www_a(emulator) == [(made, OLD)]  # one answer for www: the old server
    assert {(r["name"], r["type"]): r["target"] for r in zone(emulator) if r["type"] in ("A", "AAAA")} == {
        ("", "A"): OLD, ("", "AAAA"): OLD6, ("www", "A"): OLD, ("www", "AAAA"): OLD6}


def test_a_record_deleted_by_hand_is_made_again_only_with_force(dns_project: Path, emulator: LinodeEmulator,
                                                                cli) -> None:
    assert cli("dns", "switch", "--yes", "--no-ttl-wait").exit_code == 0
    api(emulator, "DELETE", "/3")
    before = zone(emulator)
    refused = cli("rollback", "--yes")
    assert refused.exit_code == 2, refused.stderr
    assert refused.stderr.startswith("error: 1 DNS record(s) were changed by hand since `dns switch to new`: dns"
                                     f" www.example.org A #3 was deleted (before the run: {OLD});"), refused.stderr
    assert zone(emulator) == before
    forced = cli("rollback", "--yes", "--force")
    assert forced.exit_code == 0, forced.stderr
    assert (f"    ! dns www.example.org A #3: deleted by someone else since the run; made again with {OLD} (--force)"
            in forced.lines), forced.stdout
    assert [target for _, target in www_a(emulator)] == [OLD]


def test_a_record_deleted_between_the_plan_and_the_undo_is_left_and_named(dns_project: Path, emulator: LinodeEmulator,
                                                                          cli) -> None:
    """The race: the plan saw #3; it is deleted and made again by hand before the undo reaches it."""
    from tests.dns.test_changed_by_hand import run_held

    assert cli("dns", "switch", "--yes", "--no-ttl-wait").exit_code == 0
    made: list[int] = []

    def by_hand() -> None:
        api(emulator, "DELETE", "/3")
        made.append(api(emulator, "POST", "", type="A", name="www", target=HAND)["id"])

    code, out, err = run_held(dns_project, "1:undo", ["rollback", "--yes"], by_hand)
    assert code == 4, out + err
    assert (f"  by hand: check dns www.example.org A #3 in Linode: it was deleted, and #{made[0]} made in its place"
            f" holds {HAND}, set by hand since the run; set it back to {OLD} if it should be, or run `golive rollback"
            " --yes --force`") in err.splitlines(), err
    assert www_a(emulator) == [(made[0], HAND)]  # not a second www A
    assert {(r["name"], r["type"]): r["target"] for r in zone(emulator) if (r["name"], r["type"]) != ("www", "A")
            and r["type"] in ("A", "AAAA")} == {("", "A"): OLD, ("", "AAAA"): OLD6, ("www", "AAAA"): OLD6}
    assert NEW not in {r["target"] for r in zone(emulator)} and NEW6 not in {r["target"] for r in zone(emulator)}


def test_a_deleted_record_with_two_made_in_its_place_is_refused_even_with_force(
        dns_project: Path, emulator: LinodeEmulator, cli) -> None:
    """Two colleagues each made a www A after #3 was deleted: `rollback --force` put the old target on one and left
    the other, and www answered from two servers, which the README says golive never leaves."""
    assert cli("dns", "switch", "--yes", "--no-ttl-wait").exit_code == 0
    api(emulator, "DELETE", "/3")
    first = api(emulator, "POST", "", type="A", name="www", target=HAND, ttl_sec=300)["id"]
    second = api(emulator, "POST", "", type="A", name="www", target="192.0.2.51", ttl_sec=300)["id"]
    before = zone(emulator)
    for args in (("--yes",), ("--yes", "--force")):
        refused = cli("rollback", *args)
        assert refused.exit_code == 2, refused.stderr
        assert (f"records deleted by hand since `dns switch to new` have more than one record made in their place: dns"
                f" www.example.org A #3 (#{first}, #{second}); golive puts the old value on one and deletes none, so"
                " the name would keep two answers — nothing was changed; delete all but one of them in Linode (or set"
                " them yourself), then run `golive rollback") in refused.stderr, refused.stderr
        assert zone(emulator) == before
    api(emulator, "DELETE", f"/{second}")
    assert cli("rollback", "--yes", "--force").exit_code == 0
    assert www_a(emulator) == [(first, OLD)]
