"""Media folders copied with a manifest (path, size, sha256): incremental, verified, never deleting.

A file is copied when the destination lacks it or holds other bytes; a source file whose size and
mtime match the manifest is not hashed again, nor is its copy when its size and mtime are those
recorded when it was last verified (a quick check, as rsync's: an incremental sync of a large folder
reads only what changed). Every copy is read back and its sha256 checked before it is renamed into place;
a source file that changes while it is copied is copied again, and named if it keeps changing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from golive.errors import ConfigError, GoliveError

__all__ = ["MediaResult", "pending", "sha256", "sync_media"]


@dataclass
class MediaResult:
    folder: str
    files: int = 0
    copied: int = 0
    unchanged: int = 0
    bytes_copied: int = 0
    verified: bool = True

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


TRIES = 3  # copies of a source file that changes while it is copied, before the sync stops


def _copy_once(src: Path, tmp: Path) -> str:
    """Copy ``src`` to ``tmp`` (with its times); the sha256 of the bytes read."""
    h = hashlib.sha256()
    with src.open("rb") as fh, tmp.open("wb") as out:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
            out.write(block)
    shutil.copystat(src, tmp)
    return h.hexdigest()


def _copy(src: Path, dst: Path, rel: str, destination: Path) -> tuple[str, os.stat_result]:
    """Copy ``src`` to ``dst`` through a temporary file that is read back and checked *before* it goes into
    place: a copy that does not match the bytes read is the destination's fault; a source whose size or mtime
    moved during the copy is copied again (``TRIES`` times). The sha256 and the source's stat as copied."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.golive-tmp")
    try:
        for attempt in range(TRIES):
            before = src.stat()
            digest = _copy_once(src, tmp)
            after = src.stat()
            if sha256(tmp) != digest:
                raise GoliveError(f"media file {rel}: the copy in {destination} does not match what was read from"
                                  " its source; it was not put in place", hint="check the destination disk; re-run the sync")
            if (before.st_size, before.st_mtime_ns) == (after.st_size, after.st_mtime_ns):
                os.replace(tmp, dst)
                return digest, after
            time.sleep(0.2 * (attempt + 1))  # the old application is writing it: let it finish
    finally:
        tmp.unlink(missing_ok=True)
    raise GoliveError(f"media file {src} changed while it was copied, {TRIES} times; it was not put in {destination}",
                      hint="stop what writes to it (`golive freeze on` for the old application), then run the sync again")


def pending(source: Path, manifest_path: Path) -> tuple[int, int]:
    """For a plan, by ``stat`` alone: the files in ``source``, and how many of them are not in the manifest as
    they are now (new, or changed since the last copy)."""
    if not source.is_dir():
        raise ConfigError(f"[[sync.media]] from {source} does not exist",
                          hint="set from to the old application's media folder")
    manifest: dict[str, dict[str, object]] = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    files = fresh = 0
    for path in source.rglob("*"):
        if path.is_file():
            files += 1
            stat, known = path.stat(), manifest.get(path.relative_to(source).as_posix()) or {}
            fresh += (known.get("size"), known.get("mtime_ns")) != (stat.st_size, stat.st_mtime_ns)
    return files, fresh


def sync_media(source: Path, destination: Path, manifest_path: Path,
               progress: Callable[[int, int], None] | None = None) -> MediaResult:
    """Copy ``source`` into ``destination``; ``progress(files done, files in all)`` as it goes."""
    if not source.is_dir():
        raise GoliveError(f"media folder {source} does not exist", hint="check [[sync.media]] from")
    manifest: dict[str, dict[str, object]] = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    result = MediaResult(str(source))
    files = sorted(p for p in source.rglob("*") if p.is_file())
    shown = time.monotonic()
    for done, src in enumerate(files, start=1):
        rel = src.relative_to(source).as_posix()
        stat = src.stat()
        known = manifest.get(rel) or {}
        same_source = known.get("size") == stat.st_size and known.get("mtime_ns") == stat.st_mtime_ns
        digest = str(known["sha256"]) if same_source else sha256(src)
        dst = destination / rel
        try:
            there = dst.stat()
        except FileNotFoundError:
            there = None
        result.files += 1
        if same_source and there is not None and (there.st_size, there.st_mtime_ns) == \
                (known.get("dst_size"), known.get("dst_mtime_ns")) and there.st_size == stat.st_size:
            result.unchanged += 1  # both sides as they were when last verified: nothing read
        elif there is not None and there.st_size == stat.st_size and sha256(dst) == digest:
            result.unchanged += 1
        else:
            digest, stat = _copy(src, dst, rel, destination)  # (the source as copied: it may have changed since)
            result.copied += 1
            result.bytes_copied += stat.st_size
            there = dst.stat()
        manifest[rel] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest,
                         "dst_size": there.st_size, "dst_mtime_ns": there.st_mtime_ns}
        if progress is not None and (done == len(files) or time.monotonic() - shown > 0.1):
            progress(done, len(files))
            shown = time.monotonic()
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return result
