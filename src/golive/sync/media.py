"""Media folders copied with a manifest (path, size, sha256): incremental, verified, never deleting.

A file is copied when the destination lacks it or holds other bytes; a file whose size and mtime
match the manifest is not hashed again. Every copy is read back and its sha256 checked.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from golive.errors import GoliveError

__all__ = ["MediaResult", "sha256", "sync_media"]


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


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.golive-tmp")
    shutil.copy2(src, tmp)
    os.replace(tmp, dst)


def sync_media(source: Path, destination: Path, manifest_path: Path) -> MediaResult:
    if not source.is_dir():
        raise GoliveError(f"media folder {source} does not exist", hint="check [[sync.media]] from")
    manifest: dict[str, dict[str, object]] = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    result = MediaResult(str(source))
    for src in sorted(p for p in source.rglob("*") if p.is_file()):
        rel = src.relative_to(source).as_posix()
        stat = src.stat()
        known = manifest.get(rel)
        if known and known["size"] == stat.st_size and known["mtime_ns"] == stat.st_mtime_ns:
            digest = str(known["sha256"])
        else:
            digest = sha256(src)
        dst = destination / rel
        result.files += 1
        if dst.exists() and dst.stat().st_size == stat.st_size and sha256(dst) == digest:
            result.unchanged += 1
        else:
            _copy(src, dst)
            if sha256(dst) != digest:
                result.verified = False
                raise GoliveError(f"media file {rel}: the copy in {destination} does not match its source",
                                  hint="check the destination disk; re-run the sync")
            result.copied += 1
            result.bytes_copied += stat.st_size
        manifest[rel] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest}
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return result
