"""Media folders: an incremental copy reads only what changed (size and mtime of both sides against the
manifest), an edited copy is someone else's (the sync stops, or keeps it and copies again with
--source-wins), links to folders are followed (loops made again, not followed), a sync that fails after the
copy puts the folder back, and progress is reported in files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from golive.errors import GoliveError
from golive.sync import media
from golive.sync.media import sync_media
from tests.sync.test_sync import Dir


def test_an_incremental_media_sync_reads_only_what_changed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source, destination, manifest = tmp_path / "static", tmp_path / "media", tmp_path / "manifest.json"
    for i in range(20):
        (source / "photos").mkdir(parents=True, exist_ok=True)
        (source / "photos" / f"{i}.jpg").write_bytes(bytes([i]) * 4096)
    hashed: list[Path] = []
    real = media.sha256
    monkeypatch.setattr(media, "sha256", lambda path: hashed.append(path) or real(path))  # (counts the reads)
    seen: list[tuple[int, int]] = []

    first = sync_media(source, destination, manifest, lambda done, total: seen.append((done, total)))
    assert (first.files, first.copied, len(hashed)) == (20, 20, 40)  # each source, and each copy read back
    assert seen[-1] == (20, 20)

    hashed.clear()
    second = sync_media(source, destination, manifest)
    assert (second.unchanged, second.copied, hashed) == (20, 0, [])  # both sides as last verified: nothing read

    edited = destination / "photos" / "7.jpg"
    edited.write_bytes(b"\xff" * 4096)  # same size, other bytes (and a new mtime)
    os.utime(edited, ns=(edited.stat().st_atime_ns, edited.stat().st_mtime_ns + 10**9))
    hashed.clear()
    third = sync_media(source, destination, manifest, source_wins=True, kept=tmp_path / "kept")
    assert (third.unchanged, third.copied) == (19, 1)
    # found different, copied again and read back (the copy before it is renamed into place)
    assert hashed == [edited, edited.with_name(".7.jpg.golive-tmp")]
    assert edited.read_bytes() == bytes([7]) * 4096


def tree(folder: Path) -> dict[str, bytes | str]:
    """Each file's bytes and each link's target, by path under ``folder`` (links not followed)."""
    found: dict[str, bytes | str] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_symlink():
            found[rel] = os.readlink(path)
        elif path.is_file():
            found[rel] = path.read_bytes()
    return found


def test_files_under_a_linked_folder_are_copied_and_a_loop_is_made_again_not_followed(tmp_path: Path) -> None:
    source, destination, manifest = tmp_path / "old_media", tmp_path / "new_media", tmp_path / "manifest.json"
    (source / "photos").mkdir(parents=True)
    (source / "photos" / "a.jpg").write_bytes(b"A")
    (tmp_path / "bigdisk" / "uploads" / "2024").mkdir(parents=True)
    (tmp_path / "bigdisk" / "uploads" / "2024" / "b.jpg").write_bytes(b"B")
    (source / "uploads").symlink_to(tmp_path / "bigdisk" / "uploads")  # the uploads on another disk
    (source / "photos" / "all").symlink_to(source)  # a loop: `media/photos/all/photos/all/…`
    (source / "uploads" / "2024" / "back").symlink_to(tmp_path / "bigdisk" / "uploads")  # a loop through the link
    (source / "up").symlink_to(tmp_path)  # a folder the media folder is inside of

    result = sync_media(source, destination, manifest)
    assert (result.files, result.copied) == (2, 2)
    assert result.notes == ["up links to a folder the media folder is inside of: not followed, not copied"]
    assert tree(destination) == {"photos/a.jpg": b"A", "photos/all": "..", "uploads/2024/b.jpg": b"B",
                                 "uploads/2024/back": ".."}
    assert (destination / "photos" / "all" / "uploads" / "2024" / "back" / "2024" / "b.jpg").read_bytes() == b"B"
    assert media.pending(source, destination, manifest) == (2, 0, [])
    again = sync_media(source, destination, manifest)  # (the links made are there already: nothing to do)
    assert (again.unchanged, again.copied) == (2, 0)


def test_a_link_to_a_file_outside_the_media_folder_stops_the_sync_naming_it(tmp_path: Path) -> None:
    """A link to a file elsewhere (a 0600 key) is not copied into the new site, nor silently left out (a row's
    path found in `from` would be missing in `to`): the sync stops before copying anything, naming the link and
    its target, and the plan says so first. Links to files inside the folders walked work as before."""
    source, destination, manifest = tmp_path / "old_media", tmp_path / "new_media", tmp_path / "manifest.json"
    (source / "photos").mkdir(parents=True)
    (source / "photos" / "a.jpg").write_bytes(b"A")
    (source / "photos" / "latest.jpg").symlink_to("a.jpg")
    (tmp_path / "bigdisk" / "uploads").mkdir(parents=True)
    (tmp_path / "bigdisk" / "uploads" / "b.jpg").write_bytes(b"B")
    (source / "uploads").symlink_to(tmp_path / "bigdisk" / "uploads")  # followed: its files are copied anyway
    (source / "photos" / "b.jpg").symlink_to(tmp_path / "bigdisk" / "uploads" / "b.jpg")
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "key").write_bytes(b"-----BEGIN PRIVATE KEY-----")
    (tmp_path / "secret" / "key").chmod(0o600)
    (source / "photos" / "key.jpg").symlink_to("../../secret/key")
    (source / "photos" / "z.jpg").write_bytes(b"Z")

    for attempt in (lambda: sync_media(source, destination, manifest), lambda: media.pending(source, destination, manifest),
                    lambda: media.verify_media(source, destination, manifest)):
        with pytest.raises(GoliveError) as stopped:
            attempt()
        assert stopped.value.message == (f"1 media file(s) in {source} link to a file outside it (and the folders it"
                                         f" links to): photos/key.jpg -> {tmp_path / 'secret' / 'key'}; golive copies"
                                         " no such file, nothing was copied")
        assert stopped.value.hint == ("if the old site serves it, put a copy of the file in the link's place"
                                      ' (`cp --remove-destination "$(readlink -f LINK)" LINK`); else remove the link;'
                                      " then run the sync again")
    assert not destination.exists() and not manifest.exists()

    (source / "photos" / "key.jpg").unlink()
    result = sync_media(source, destination, manifest)
    assert (result.files, result.copied) == (5, 5)
    assert tree(destination) == {"photos/a.jpg": b"A", "photos/b.jpg": b"B", "photos/latest.jpg": b"A",
                                 "photos/z.jpg": b"Z", "uploads/b.jpg": b"B"}


def test_the_plan_names_a_link_to_a_file_outside_the_media_folder(dirfinal: Dir, cli, tmp_path: Path) -> None:
    static = tmp_path / "flask-static"
    photos_for(dirfinal, static)
    (tmp_path / "id_ed25519").write_bytes(b"-----BEGIN OPENSSH PRIVATE KEY-----")
    (static / "photos" / "2.jpg").symlink_to(tmp_path / "id_ed25519")
    planned = cli("sync", "--dry-run")
    assert planned.exit_code == 1
    assert (f"1 media file(s) in {static} link to a file outside it (and the folders it links to): photos/2.jpg ->"
            f" {tmp_path / 'id_ed25519'}; golive copies no such file, nothing was copied") in planned.stderr
    assert not (tmp_path / "django-media").exists()


def test_a_file_edited_in_the_destination_stops_the_sync_before_anything_is_copied(tmp_path: Path) -> None:
    source, destination, manifest = tmp_path / "old_media", tmp_path / "new_media", tmp_path / "manifest.json"
    source.mkdir()
    (source / "a.jpg").write_bytes(b"old app's photo")
    sync_media(source, destination, manifest)
    (destination / "a.jpg").write_bytes(b"retouched by hand in the new site")
    (destination / "own.jpg").write_bytes(b"the new site's own")  # never golive's: another file at a source path
    (source / "own.jpg").write_bytes(b"the old site's")
    (source / "new.jpg").write_bytes(b"new")
    before = manifest.read_text()

    with pytest.raises(GoliveError) as stopped:
        sync_media(source, destination, manifest)
    assert stopped.value.message == (f"2 media file(s) in {destination} changed since golive copied them (or not"
                                     " copied by golive) would be overwritten: a.jpg, own.jpg; nothing was copied")
    assert "`golive sync --source-wins` overwrites them" in (stopped.value.hint or "")
    assert tree(destination) == {"a.jpg": b"retouched by hand in the new site", "own.jpg": b"the new site's own"}
    assert manifest.read_text() == before

    kept = tmp_path / "state" / "overwritten" / "stamp" / "media"
    result = sync_media(source, destination, manifest, source_wins=True, kept=kept)
    assert (result.copied, result.overwritten) == (3, ["a.jpg", "own.jpg"])
    assert tree(destination) == {"a.jpg": b"old app's photo", "new.jpg": b"new", "own.jpg": b"the old site's"}
    assert tree(kept) == {"a.jpg": b"retouched by hand in the new site", "own.jpg": b"the new site's own"}
    assert {(p.stat().st_mode & 0o777) for p in kept.iterdir()} == {0o600}


def test_undo_puts_the_destination_back_as_it_was(tmp_path: Path) -> None:
    source, destination, manifest = tmp_path / "old_media", tmp_path / "new_media", tmp_path / "manifest.json"
    (source / "photos").mkdir(parents=True)
    (source / "photos" / "a.jpg").write_bytes(b"A")
    (source / "photos" / "b.jpg").write_bytes(b"B")
    sync_media(source, destination, manifest)
    (destination / "photos" / "b.jpg").write_bytes(b"B retouched")
    (source / "photos" / "a.jpg").write_bytes(b"A, a newer version")
    (source / "photos" / "c.jpg").write_bytes(b"C")
    (source / "loop").symlink_to(".")
    was, listed = tree(destination), manifest.read_text()
    kept = tmp_path / "overwritten" / "stamp" / "media"
    undo = media.MediaUndo(tmp_path / "media-undo" / "0", kept=kept)

    sync_media(source, destination, manifest, source_wins=True, kept=kept, undo=undo)
    assert tree(destination)["photos/b.jpg"] == b"B" and "photos/c.jpg" in tree(destination)
    assert undo.put_back() == []
    assert (tree(destination), manifest.read_text()) == (was, listed)
    assert not (tmp_path / "overwritten" / "stamp").exists() and not (tmp_path / "media-undo" / "0").exists()


@pytest.mark.parametrize("becomes", ["folder", "file"])
def test_a_file_that_became_a_folder_or_back_is_one_line_naming_it(tmp_path: Path, becomes: str) -> None:
    source, destination, manifest = tmp_path / "old_media", tmp_path / "new_media", tmp_path / "manifest.json"
    (source / "photos").mkdir(parents=True)
    (source / "photos" / "a.jpg").write_bytes(b"A")
    (source / "photos" / "b").mkdir()
    (source / "photos" / "b" / "1.jpg").write_bytes(b"B1")
    sync_media(source, destination, manifest)
    (source / "photos" / "z.jpg").write_bytes(b"Z")  # (nothing is copied when the sync stops)
    if becomes == "folder":
        (source / "photos" / "a.jpg").unlink()
        (source / "photos" / "a.jpg").mkdir()
        (source / "photos" / "a.jpg" / "x.jpg").write_bytes(b"X")
        part, says = "photos/a.jpg", "a folder there now, {d} still a file"
    else:
        (source / "photos" / "b" / "1.jpg").unlink()
        (source / "photos" / "b").rmdir()
        (source / "photos" / "b").write_bytes(b"b")
        part, says = "photos/b", "a file there now, {d} still a folder"
    with pytest.raises(GoliveError) as stopped:
        sync_media(source, destination, manifest)
    assert stopped.value.message == (f"media path {part}: the old application's media folder has"
                                     f" {says.format(d=destination)} ({destination / part}); golive deletes nothing")
    assert stopped.value.hint == (f"move {destination / part} out of the way (or delete it if no row refers to it),"
                                  " then run the sync again")
    assert not (destination / "photos" / "z.jpg").exists()


def photos_for(dirfinal: Dir, folder: Path) -> None:
    """The seed's photos (odd entries have one), and the config's [[sync.media]] from ``folder``."""
    for i in range(1, 61, 2):
        (folder / "photos").mkdir(parents=True, exist_ok=True)
        (folder / "photos" / f"{i}.jpg").write_bytes(bytes([i]) * 100)
    config = dirfinal.project / "golive.toml"
    published = folder.parent / "django-media"
    config.write_text(config.read_text() + f'\n[[sync.media]]\nfrom = "{folder}"\nto = "{published}"\n')


def test_photos_under_a_linked_folder_reach_the_new_site(dirfinal: Dir, cli, tmp_path: Path) -> None:
    static = tmp_path / "flask-static"
    photos_for(dirfinal, tmp_path / "bigdisk")
    static.mkdir()
    (static / "photos").symlink_to(tmp_path / "bigdisk" / "photos")  # the photos on another disk
    config = dirfinal.project / "golive.toml"
    config.write_text(config.read_text().replace(f'from = "{tmp_path / "bigdisk"}"', f'from = "{static}"'))
    result = cli("sync", "--yes")
    assert result.exit_code == 0, result.stderr
    published = tmp_path / "django-media"
    assert sorted(p.name for p in (published / "photos").iterdir()) == sorted(f"{i}.jpg" for i in range(1, 61, 2))
    assert (published / "photos" / "7.jpg").read_bytes() == bytes([7]) * 100


def test_a_sync_that_fails_its_pre_checks_puts_the_media_back(dirfinal: Dir, cli, tmp_path: Path) -> None:
    static, published, state = tmp_path / "flask-static", tmp_path / "django-media", dirfinal.project / ".golive"
    photos_for(dirfinal, static)
    assert cli("sync", "--yes").exit_code == 0
    (published / "photos" / "7.jpg").write_bytes(b"retouched by hand in the new site")
    (static / "photos" / "9.jpg").write_bytes(b"a newer 9")
    (static / "photos" / "99.jpg").write_bytes(b"new")
    (static / "photos" / "11.jpg").unlink()  # entry 11's photo: the database's pre-checks fail
    was, listed = tree(published), (state / "media-manifest-0.json").read_text()

    failed = cli("sync", "--yes", "--full", "--source-wins")
    assert failed.exit_code == 1
    assert "file photos/11.jpg is in none of the media folders" in failed.stderr
    assert (tree(published), (state / "media-manifest-0.json").read_text()) == (was, listed)
    assert not list(state.glob("overwritten/*/media")) and not list(state.glob("media-undo/0/*"))

    (static / "photos" / "11.jpg").write_bytes(bytes([11]) * 100)
    stopped = cli("sync", "--yes")
    assert stopped.exit_code == 1
    assert (f"error: step sync all tables failed: 1 media file(s) in {published} changed since golive copied them (or"
            " not copied by golive) would be overwritten: photos/7.jpg; nothing was copied") in stopped.stderr
    assert tree(published) == was

    done = cli("sync", "--yes", "--source-wins")
    assert done.exit_code == 0, done.stderr
    assert (published / "photos" / "7.jpg").read_bytes() == bytes([7]) * 100
    [kept] = state.glob("overwritten/*/media/photos/7.jpg")
    assert (kept.read_bytes(), kept.stat().st_mode & 0o777) == (b"retouched by hand in the new site", 0o600)
    assert (f"media {published}: 1 file(s) changed there since golive copied them were overwritten (--source-wins);"
            f" their versions are kept in {kept.parents[1]}") in done.stdout + done.stderr


def test_the_plan_names_the_files_edited_in_the_new_site_before_the_freeze_window_is_spent(dirfinal: Dir, cli,
                                                                                         tmp_path: Path) -> None:
    """The sync stops at a file someone else changed in `to`; the plan (`--dry-run`, before the freeze) says so,
    as it does for rows. A file only touched (same bytes) is not someone else's."""
    static, published = tmp_path / "flask-static", tmp_path / "django-media"
    photos_for(dirfinal, static)
    assert cli("sync", "--yes").exit_code == 0
    (published / "photos" / "7.jpg").write_bytes(b"retouched by hand in the new site")
    os.utime(published / "photos" / "9.jpg", ns=(1, 1))  # touched, the same bytes
    (published / "photos" / "100.jpg").write_bytes(b"uploaded in the new site, not in the old one")  # not synced
    edited = f"1 file(s) in {published} changed since golive copied them (or not golive's): photos/7.jpg — "
    planned = cli("sync", "--dry-run")
    assert planned.exit_code == 0, planned.stderr
    assert edited + "the sync stops before copying (--source-wins overwrites them, keeping theirs first)" in \
        planned.stdout, planned.stdout
    assert edited + "overwritten, theirs kept first" in cli("sync", "--dry-run", "--source-wins").stdout
    stopped = cli("sync", "--yes")
    assert stopped.exit_code == 1 and "photos/7.jpg" in stopped.stderr
