"""Media folders copied with a manifest (path, size, sha256): incremental, verified, never deleting.

The files are those the old application's web server serves: links to folders are followed (uploads kept
on another disk), and a link to a folder it is inside of (a loop) is not followed but made again in the
destination, pointing at the same folder there; so every path that is a file under ``from`` is a file
under ``to`` once the copy is done, and a row's media path found in ``from`` is there for the new
application too. A link to a folder *above* ``from`` is named and left out (it would copy that folder). A
link to a *file* outside ``from`` and the folders it links to (a key file elsewhere) stops the sync before
anything is copied, naming the link and its target: the web server may not serve it, golive's user can
read it, and skipping it would leave a row's media path found in ``from`` missing from ``to``.

A file is copied when the destination lacks it or holds other bytes. An incremental sync trusts the stat:
a source file whose size, mtime and ctime match the manifest is not hashed again, nor is its copy when
its size, mtime and ctime are those recorded when it was last verified (a quick check, as git's index: an
incremental sync of a large folder reads only what changed). The ctime is what catches a file replaced by
one of the same size and mtime (``cp -p``, ``rsync -a``, ``tar x`` set the mtime back, not the ctime);
a manifest written before golive recorded it is trusted on size and mtime until the next sync records it.
``full`` trusts nothing: every source file and every copy is read and hashed again. Every copy is read
back and its sha256 checked before it is renamed into place; a source file that changes while it is
copied is copied again, and named if it keeps changing. Only bytes are carried: a file's mode is copied
with it (``copystat``), a later ``chmod`` in ``from`` is not (nor is a deletion) — owners are not carried,
so modes do not mean the same in the new site, and a mode fixed by hand in ``to`` for the new
application's user must not be undone by each sync.

:func:`verify_media` (``--verify-only``) compares without writing: every file under ``from`` against its
copy, by the stat as recorded (bytes read only where it moved), or with ``deep`` by the bytes of both sides.

A destination file holding neither the source's bytes nor those golive last put there (the manifest) is
someone else's — edited by hand in the new site, or never copied by golive — and is treated as a row the
new application changed (golive.sync.conflicts): the sync stops before it copies anything and names them;
with ``source_wins`` their versions are kept first (0600, under ``kept``), then copied over. A file where
the source now has a folder (or the other way round) stops it the same way, naming the path.

Before a destination file is replaced, its bytes go into a :class:`MediaUndo`, with the files added and
the manifest as it was: a sync that fails after the copy (the database's pre-checks) puts it all back.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import stat as stat_mode
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

from golive.errors import ConfigError, GoliveError
from golive.private import open_private

__all__ = ["MediaCheck", "MediaResult", "MediaUndo", "pending", "sha256", "sync_media", "verify_media", "walk"]


@dataclass
class MediaResult:
    folder: str
    files: int = 0
    copied: int = 0
    unchanged: int = 0
    bytes_copied: int = 0
    verified: bool = True
    overwritten: list[str] = field(default_factory=list)  # someone else's files copied over (source_wins), kept first
    notes: list[str] = field(default_factory=list)  # links to folders the copy did not follow, for the operator

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class Tree:
    files: list[tuple[str, Path]] = field(default_factory=list)  # (path under the folder, posix; the file)
    loops: list[tuple[str, str]] = field(default_factory=list)  # (a link, the folder it is inside of and points at)
    above: list[str] = field(default_factory=list)  # links to a folder the media folder is inside of


def walk(source: Path) -> Tree:
    """The files under ``source`` as a web server serves them: links to folders followed, loops not; a link
    to a file outside the folders walked is a named error."""
    tree, top = Tree(), source.stat()
    outside = {(s.st_dev, s.st_ino) for s in (p.stat() for p in source.resolve().parents)}
    walked: set[str] = set()  # (the folders' real paths)
    links: list[tuple[str, str]] = []  # (a link to a file, the file it ends at)

    def visit(folder: Path, rel: str, inside: dict[tuple[int, int], str]) -> None:
        walked.add(os.path.realpath(folder))
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            raise GoliveError(f"media folder {folder} cannot be read ({exc.strerror})",
                              hint="let golive's user read it (or remove the link to it), then run the sync again") from None
        for entry in entries:
            name = rel + entry.name
            if entry.is_dir():  # (links followed)
                found = entry.stat()
                at = (found.st_dev, found.st_ino)
                if at in inside:
                    tree.loops.append((name, inside[at]))
                elif at in outside:
                    tree.above.append(name)
                else:
                    visit(Path(entry.path), name + "/", {**inside, at: name})
            elif entry.is_file():
                tree.files.append((name, Path(entry.path)))
                if entry.is_symlink():
                    links.append((name, os.path.realpath(entry.path)))

    visit(source, "", {(top.st_dev, top.st_ino): ""})
    outward = [(name, target) for name, target in links if os.path.dirname(target) not in walked]
    if outward:
        raise _outward(source, outward)
    return tree


def _outward(source: Path, links: list[tuple[str, str]]) -> GoliveError:
    shown = ", ".join(f"{name} -> {target}" for name, target in links[:5])
    more = f", … ({len(links)} in all)" if len(links) > 5 else ""
    return GoliveError(f"{len(links)} media file(s) in {source} link to a file outside it (and the folders it links"
                       f" to): {shown}{more}; golive copies no such file, nothing was copied",
                       hint="if the old site serves it, put a copy of the file in the link's place (`cp"
                            " --remove-destination \"$(readlink -f LINK)\" LINK`); else remove the link; then run"
                            " the sync again")


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


def _load(manifest_path: Path) -> dict[str, dict[str, object]]:
    manifest: dict[str, dict[str, object]] = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    return manifest


def pending(source: Path, destination: Path, manifest_path: Path) -> tuple[int, int, list[str]]:
    """For a plan, in one walk: the files in ``source``; how many of them are not in the manifest as they are
    now (new, or changed since the last copy: by ``stat`` alone, as an incremental sync tells); and the files
    in ``destination`` a sync would stop at (changed since golive copied them, or never golive's), told apart
    as the sync does — only files with one there already that is not golive's copy as last verified are read."""
    if not source.is_dir():
        raise ConfigError(f"[[sync.media]] from {source} does not exist",
                          hint="set from to the old application's media folder")
    manifest = _load(manifest_path)
    files = walk(source).files
    fresh, theirs = 0, []
    for rel, path in files:
        stat, known = path.stat(), manifest.get(rel) or {}
        fresh += not _same(stat, known)
        there = _there(destination / rel, rel, destination)
        if there is not None and _verdict(_file(rel, path, destination, known, there), known) == "theirs":
            theirs.append(rel)
    return len(files), fresh, theirs


@dataclass
class MediaUndo:
    """What a media sync changed in its destination, to put back when the run it is part of fails: the files
    it replaced (their bytes before, under ``saved``), the files and links it added, the manifest before, and
    the versions it kept of someone else's files (not needed once those are back). Folders it made stay."""
    saved: Path
    replaced: list[tuple[Path, Path]] = field(default_factory=list)  # (a file, its bytes before)
    added: list[Path] = field(default_factory=list)
    manifest: tuple[Path, str | None] | None = None
    kept: Path | None = None

    def save(self, dst: Path, rel: str) -> None:
        copy = self.saved / rel
        copy.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            os.link(dst, copy)  # (the same disk: nothing read; the new copy goes in under another inode)
        except OSError:
            shutil.copy2(dst, copy)
        self.replaced.append((dst, copy))

    def put_back(self) -> list[str]:
        """The destination as it was, newest change first; what could not be put back, one line each."""
        problems = []
        for path in reversed(self.added):
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                problems.append(f"{path} ({exc.strerror})")
        for dst, copy in reversed(self.replaced):
            try:
                _restore(copy, dst)
            except OSError as exc:
                problems.append(f"{dst} ({exc.strerror})")
        if self.manifest is not None:
            path, text = self.manifest
            if text is None:
                path.unlink(missing_ok=True)
            else:
                path.write_text(text)
        if not problems:
            if self.kept is not None:  # (nothing was overwritten after all)
                shutil.rmtree(self.kept, ignore_errors=True)
                with contextlib.suppress(OSError):
                    self.kept.parent.rmdir()
            self.discard()
        return problems

    def discard(self) -> None:
        shutil.rmtree(self.saved, ignore_errors=True)


def _restore(copy: Path, dst: Path) -> None:
    try:
        os.replace(copy, dst)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        tmp = dst.with_name(f".{dst.name}.golive-tmp")
        shutil.copy2(copy, tmp)
        os.replace(tmp, dst)


def _keep(dst: Path, kept: Path) -> None:
    """Someone else's version of a destination file, before it is overwritten: 0600 from its first byte."""
    with dst.open("rb") as fh, open_private(kept, "wb") as out:
        shutil.copyfileobj(fh, out, 1 << 20)


def _shape_error(part: str, destination: Path, source_has: str) -> GoliveError:
    there = destination / part
    has = "a folder" if source_has == "file" else "a file"
    return GoliveError(f"media path {part}: the old application's media folder has a {source_has} there now, {destination}"
                       f" still {has} ({there}); golive deletes nothing",
                       hint=f"move {there} out of the way (or delete it if no row refers to it), then run the sync again")


def _there(dst: Path, rel: str, destination: Path) -> os.stat_result | None:
    """The destination file's stat, None when there is none; a folder where a file goes (or the other way
    round along its path) is a named error."""
    try:
        there = dst.stat()
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        part = next((str(p) for p in reversed(PurePosixPath(rel).parents) if (destination / p).is_file()), rel)
        raise _shape_error(part, destination, "folder") from None
    if stat_mode.S_ISDIR(there.st_mode):
        raise _shape_error(rel, destination, "file")
    return there


@dataclass
class _File:
    rel: str
    src: Path
    dst: Path
    stat: os.stat_result  # the source's
    digest: str  # the source's bytes
    there: os.stat_result | None  # the destination's (None: it has none)


def _same(stat: os.stat_result, known: dict[str, object], side: str = "") -> bool:
    """Whether a file's stat is the one the manifest recorded for that ``side`` (``""``: the source; ``"dst_"``:
    its copy) — size, mtime and ctime, the ctime only once recorded (an older golive's manifest)."""
    recorded = (known.get(f"{side}size"), known.get(f"{side}mtime_ns"), known.get(f"{side}ctime_ns", stat.st_ctime_ns))
    return "sha256" in known and recorded == (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


def _file(rel: str, src: Path, destination: Path, known: dict[str, object], there: os.stat_result | None,
          trust: bool = True) -> _File:
    """One source file and its place in the destination; its bytes are read only if changed since the manifest
    (always, unless ``trust``)."""
    stat = src.stat()
    digest = str(known["sha256"]) if trust and _same(stat, known) else sha256(src)
    return _File(rel, src, destination / rel, stat, digest, there)


def _verdict(f: _File, known: dict[str, object], trust: bool = True) -> str:
    """'unchanged', 'copy' (new, or golive's own copy of an older version) or 'theirs' (someone else's bytes);
    the copy's bytes are read unless its stat is the one last verified and ``trust``."""
    there = f.there
    if there is None:
        return "copy"
    if trust and _same(there, known, "dst_"):
        return "unchanged" if known["sha256"] == f.digest else "copy"  # golive's copy as last verified: not read
    if not known and there.st_size != f.stat.st_size:
        return "theirs"  # (never golive's, and other bytes: not read)
    bytes_there = sha256(f.dst)
    if bytes_there == f.digest:
        return "unchanged"
    return "copy" if bytes_there == known.get("sha256") else "theirs"


def _check_links(tree: Tree, destination: Path, result: MediaResult) -> list[tuple[Path, str]]:
    """The loops to make again in the destination (link, what it points at), none of them in the way of
    something else there; the links above the media folder, named in the result's notes."""
    todo = []
    for rel, folder in tree.loops:
        dst = destination / rel
        want = os.path.relpath(destination / folder, dst.parent)
        if dst.is_symlink() and os.readlink(dst) == want:
            continue
        if os.path.lexists(dst):
            raise _shape_error(rel, destination, f"link to its folder {folder or '.'}")
        todo.append((dst, want))
    result.notes += [f"{rel} links to a folder the media folder is inside of: not followed, not copied"
                     for rel in tree.above]
    return todo


def _conflicts(theirs: list[str], destination: Path) -> GoliveError:
    shown = ", ".join(theirs[:5]) + (f", … ({len(theirs)} in all)" if len(theirs) > 5 else "")
    return GoliveError(f"{len(theirs)} media file(s) in {destination} changed since golive copied them (or not copied"
                       f" by golive) would be overwritten: {shown}; nothing was copied",
                       hint="after the cutover the new site is the truth: do not sync into it again; before it,"
                            " `golive sync --source-wins` overwrites them, keeping their versions in"
                            " <state_dir>/overwritten/")


def sync_media(source: Path, destination: Path, manifest_path: Path,
               progress: Callable[[int, int], None] | None = None, *, source_wins: bool = False,
               kept: Path | None = None, undo: MediaUndo | None = None, full: bool = False) -> MediaResult:
    """Copy ``source`` into ``destination``; ``progress(files done, files in all)`` as it goes. Everything is
    looked at before anything is written; what is replaced or added is recorded in ``undo``. Incremental
    (``full`` false): a file whose stat on both sides is the one the manifest recorded (size, mtime, ctime)
    is trusted, not read. ``full``: every source file and every copy is hashed again, and what differs copied
    (or, someone else's, stops the sync as always)."""
    if not source.is_dir():
        raise GoliveError(f"media folder {source} does not exist", hint="check [[sync.media]] from")
    manifest, tree = _load(manifest_path), walk(source)
    result = MediaResult(str(source), files=len(tree.files))
    count = _counter(progress, len(tree.files))
    links, todo, theirs = _check_links(tree, destination, result), [], []
    for rel, src in tree.files:
        known = manifest.get(rel) or {}
        f = _file(rel, src, destination, known, _there(destination / rel, rel, destination), trust=not full)
        verdict = _verdict(f, known, trust=not full)
        if verdict == "unchanged":
            manifest[rel] = _entry(f)
            result.unchanged += 1
            count()
        else:
            todo.append((f, verdict == "theirs"))
            theirs += [rel] if verdict == "theirs" else []
    if theirs and not source_wins:
        raise _conflicts(theirs, destination)
    if undo is not None:
        undo.manifest = (manifest_path, manifest_path.read_text() if manifest_path.exists() else None)
    _make_links(links, undo)
    for f, other in todo:
        _copy_one(f, other, destination, kept or manifest_path.parent / "overwritten" / "media", undo, result)
        manifest[f.rel] = _entry(f)
        count()
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return result


@dataclass
class MediaCheck:
    """A media folder against its copy, nothing written (``--verify-only``): each file under ``from`` must be
    in ``to`` with the same bytes, each loop made again there."""
    folder: str
    deep: bool = False  # both sides' bytes read; else each side's stat against the manifest, bytes where it moved
    files: int = 0
    read: int = 0  # files whose bytes were read on either side
    differ: list[str] = field(default_factory=list)  # "path (how)": the files in path order, then the links

    @property
    def verified(self) -> bool:
        return not self.differ

    @property
    def checked(self) -> str:
        return "every file, both sides" if self.deep else f"stat, {self.read} file(s) read"

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "checked": self.checked, "verified": self.verified}


def verify_media(source: Path, destination: Path, manifest_path: Path, deep: bool = False,
                 progress: Callable[[int, int], None] | None = None) -> MediaCheck:
    """``source`` against ``destination`` as they are now. Quick: a side whose stat is the one the manifest
    recorded (as an incremental sync trusts it) has the bytes recorded, the other side is read; ``deep``: the
    bytes of both sides, every file. Files only in ``destination`` are not differences (golive deletes nothing)."""
    if not source.is_dir():
        raise GoliveError(f"media folder {source} does not exist", hint="check [[sync.media]] from")
    manifest, tree = _load(manifest_path), walk(source)
    check, count = MediaCheck(str(source), deep, len(tree.files)), _counter(progress, len(tree.files))
    for rel, src in tree.files:
        how = _differs(src, destination / rel, manifest.get(rel) or {}, check, trust=not deep)
        check.differ += [f"{rel} ({how})"] if how else []
        count()
    for rel, folder in tree.loops:
        dst = destination / rel
        if not (dst.is_symlink() and os.readlink(dst) == os.path.relpath(destination / folder, dst.parent)):
            check.differ.append(f"{rel} (its link to {folder or '.'} not made again in to)")
    return check


def _differs(src: Path, dst: Path, known: dict[str, object], check: MediaCheck, trust: bool) -> str | None:
    """How the copy ``dst`` differs from ``src``; None when it holds the same bytes."""
    try:
        there = dst.stat()
    except (FileNotFoundError, NotADirectoryError):
        return "missing in to"
    if not stat_mode.S_ISREG(there.st_mode):
        return "not a file in to"
    trusted = (trust and _same(src.stat(), known), trust and _same(there, known, "dst_"))
    ours = str(known["sha256"]) if "sha256" in known else None
    in_from, in_to = (ours if ok else sha256(path) for ok, path in zip(trusted, (src, dst), strict=True))
    check.read += not all(trusted)
    if in_from == in_to:
        return None
    if in_to == ours:
        return "changed in from since the last sync"
    return "changed in to since golive copied it" if in_from == ours else "other bytes in to, not golive's copy"


def _copy_one(f: _File, other: bool, destination: Path, kept: Path, undo: MediaUndo | None,
              result: MediaResult) -> None:
    """Copy one file into place (keeping someone else's version first); ``f`` then holds what was copied."""
    if f.there is not None:
        if other:
            _keep(f.dst, kept / f.rel)
            result.overwritten.append(f.rel)
        if undo is not None:
            undo.save(f.dst, f.rel)
    elif undo is not None:
        undo.added.append(f.dst)
    f.digest, f.stat = _copy(f.src, f.dst, f.rel, destination)  # (the source as copied: it may have changed since)
    f.there = f.dst.stat()
    result.copied += 1
    result.bytes_copied += f.stat.st_size


def _make_links(links: list[tuple[Path, str]], undo: MediaUndo | None) -> None:
    for dst, want in links:
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(want, dst)
        if undo is not None:
            undo.added.append(dst)


def _entry(f: _File) -> dict[str, object]:
    """The manifest's entry: the source as copied, and the copy as verified."""
    there = f.there or f.dst.stat()
    return {"size": f.stat.st_size, "mtime_ns": f.stat.st_mtime_ns, "ctime_ns": f.stat.st_ctime_ns, "sha256": f.digest,
            "dst_size": there.st_size, "dst_mtime_ns": there.st_mtime_ns, "dst_ctime_ns": there.st_ctime_ns}


def _counter(progress: Callable[[int, int], None] | None, total: int) -> Callable[[], None]:
    """One more file done: ``progress`` at most every 0.1 s, and at the last one."""
    done, shown = 0, time.monotonic()

    def count() -> None:
        nonlocal done, shown
        done += 1
        if progress is not None and (done == total or time.monotonic() - shown > 0.1):
            progress(done, total)
            shown = time.monotonic()

    return count
