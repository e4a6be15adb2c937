"""Media folders: an incremental copy reads only what changed (size and mtime of both sides against the
manifest), an edited copy is found and copied again, and progress is reported in files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from golive.sync import media
from golive.sync.media import sync_media


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
    third = sync_media(source, destination, manifest)
    assert (third.unchanged, third.copied) == (19, 1)
    # found different, copied again and read back (the copy before it is renamed into place)
    assert hashed == [edited, edited.with_name(".7.jpg.golive-tmp")]
    assert edited.read_bytes() == bytes([7]) * 4096
