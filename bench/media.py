"""Media sync: an incremental run over a folder where nothing changed, against reading every copy once
(what each run did before the quick check: every destination file hashed again), in one run.

300 files of 1 MiB by default (`bench/media.py [FILES] [MIB]`). Prints seconds and the ratio.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from golive.sync.media import sha256, sync_media


def main(files: int = 300, mib: int = 1) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        source, destination, manifest = Path(tmp) / "static", Path(tmp) / "media", Path(tmp) / "manifest.json"
        (source / "photos").mkdir(parents=True)
        for i in range(files):
            (source / "photos" / f"{i}.jpg").write_bytes(os.urandom(mib << 20))
        started = time.monotonic()
        sync_media(source, destination, manifest)
        t_first = time.monotonic() - started
        started = time.monotonic()
        again = sync_media(source, destination, manifest)
        t_again = time.monotonic() - started
        started = time.monotonic()
        for path in destination.rglob("*.jpg"):
            sha256(path)
        t_read = time.monotonic() - started
    print(f"files: {files} x {mib} MiB; unchanged on the second run: {again.unchanged}")
    print(f"first sync (copy, read back):         {t_first:7.3f} s")
    print(f"reading every copy once (reference):  {t_read:7.3f} s")
    print(f"incremental sync, nothing changed:    {t_again:7.3f} s   ratio to the reference: {t_again / t_read:.3f}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
