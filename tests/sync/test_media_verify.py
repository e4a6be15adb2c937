"""Media files replaced by others of the same size and mtime (``cp -p``, ``rsync -a``, ``tar x``): the
incremental sync sees them by their ctime, ``full`` reads every file on both sides again, and
``verify_media`` (``--verify-only [--deep]``) names each file whose copy differs, nothing written."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from golive.errors import GoliveError
from golive.sync import media
from golive.sync.media import sync_media, verify_media
from tests.sync.test_media import tree


def replace_keeping_mtime(path: Path, data: bytes) -> None:
    """Other bytes of the same size, the mtime set back: what `cp -p`, `rsync -a` and `tar x` leave."""
    was = path.stat()
    path.write_bytes(data)
    os.utime(path, ns=(was.st_atime_ns, was.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (was.st_size, was.st_mtime_ns)


def photos(tmp_path: Path) -> tuple[Path, Path, Path]:
    source, destination, manifest = tmp_path / "static", tmp_path / "media", tmp_path / "manifest.json"
    (source / "photos").mkdir(parents=True)
    for i in range(1, 6):
        (source / "photos" / f"{i}.jpg").write_bytes(f"JPEG-{i}\n".encode())
    sync_media(source, destination, manifest)
    return source, destination, manifest


def test_a_file_replaced_with_the_same_size_and_mtime_is_copied_by_the_next_incremental_sync(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source, destination, manifest = photos(tmp_path)
    five = source / "photos" / "5.jpg"
    replace_keeping_mtime(five, b"JPEG-9\n")
    hashed: list[Path] = []
    real = media.sha256
    monkeypatch.setattr(media, "sha256", lambda path: hashed.append(path) or real(path))  # (counts the reads)

    again = sync_media(source, destination, manifest)
    assert (again.copied, again.unchanged) == (1, 4)
    assert (destination / "photos" / "5.jpg").read_bytes() == b"JPEG-9\n"
    assert hashed == [five, destination / "photos" / ".5.jpg.golive-tmp"]  # (the others: by their stat)

    # a chmod moves the ctime too: the file is read again, and only its bytes are carried (the same: no copy)
    mode = (destination / "photos" / "4.jpg").stat().st_mode & 0o777
    (source / "photos" / "4.jpg").chmod(0o600)
    hashed.clear()
    chmodded = sync_media(source, destination, manifest)
    assert (chmodded.copied, chmodded.unchanged, hashed) == (0, 5, [source / "photos" / "4.jpg"])
    assert (destination / "photos" / "4.jpg").stat().st_mode & 0o777 == mode != 0o600


def test_full_reads_every_file_on_both_sides_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A manifest an older golive wrote has no ctimes: the incremental sync trusts size and mtime there, as its
    docstring says; ``full`` trusts nothing, and ``--verify-only --deep`` names what ``full`` would copy."""
    source, destination, manifest = photos(tmp_path)
    older = {rel: {k: v for k, v in entry.items() if "ctime" not in k}
             for rel, entry in json.loads(manifest.read_text()).items()}
    manifest.write_text(json.dumps(older))
    replace_keeping_mtime(source / "photos" / "5.jpg", b"JPEG-9\n")
    replace_keeping_mtime(destination / "photos" / "2.jpg", b"edited\n")  # someone else's, by `tar x` in to

    assert verify_media(source, destination, manifest).differ == []  # (by the stat: both trusted)
    deep = verify_media(source, destination, manifest, deep=True)
    assert (deep.verified, deep.checked, deep.read) == (False, "every file, both sides", 5)
    assert deep.differ == ["photos/2.jpg (changed in to since golive copied it)",
                           "photos/5.jpg (changed in from since the last sync)"]

    hashed: list[Path] = []
    real = media.sha256
    monkeypatch.setattr(media, "sha256", lambda path: hashed.append(path) or real(path))  # (counts the reads)
    with pytest.raises(GoliveError) as stopped:
        sync_media(source, destination, manifest, full=True)
    assert "would be overwritten: photos/2.jpg; nothing was copied" in stopped.value.message
    assert sorted(hashed) == sorted([*(source / "photos").iterdir(), *(destination / "photos").iterdir()])

    (destination / "photos" / "2.jpg").write_bytes(b"JPEG-2\n")  # (put back)
    done = sync_media(source, destination, manifest, full=True)
    assert (done.copied, done.unchanged) == (1, 4)
    assert tree(destination) == tree(source) and tree(destination)["photos/5.jpg"] == b"JPEG-9\n"
    assert verify_media(source, destination, manifest, deep=True).verified


def test_verify_names_each_file_whose_copy_differs_reading_only_what_moved(tmp_path: Path) -> None:
    source, destination, manifest = photos(tmp_path)
    (source / "loop").symlink_to(".")
    sync_media(source, destination, manifest)
    quick = verify_media(source, destination, manifest)
    assert (quick.verified, quick.files, quick.checked) == (True, 5, "stat, 0 file(s) read")

    (source / "photos" / "1.jpg").write_bytes(b"a newer one\n")
    (destination / "photos" / "2.jpg").write_bytes(b"retouched\n")
    (destination / "photos" / "3.jpg").unlink()
    os.utime(destination / "photos" / "4.jpg", ns=(1, 1))  # touched, the same bytes: no difference
    (source / "photos" / "5.jpg").write_bytes(b"five, newer\n")
    (destination / "photos" / "5.jpg").write_bytes(b"five, retouched\n")
    (source / "photos" / "6.jpg").write_bytes(b"not copied yet\n")
    (destination / "photos" / "new.jpg").write_bytes(b"the new site's own\n")  # only in to: no difference
    (destination / "loop").unlink()
    was = tree(destination), manifest.read_text()

    seen: list[tuple[int, int]] = []
    check = verify_media(source, destination, manifest, progress=lambda done, total: seen.append((done, total)))
    assert check.differ == ["photos/1.jpg (changed in from since the last sync)",
                            "photos/2.jpg (changed in to since golive copied it)",
                            "photos/3.jpg (missing in to)",
                            "photos/5.jpg (other bytes in to, not golive's copy)",
                            "photos/6.jpg (missing in to)",
                            "loop (its link to . not made again in to)"]
    assert (check.checked, seen[-1]) == ("stat, 4 file(s) read", (6, 6))  # 1, 2, 4 and 5: their stat moved
    assert check.as_dict()["verified"] is False
    assert (tree(destination), manifest.read_text()) == was  # nothing written
