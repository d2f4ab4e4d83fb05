"""Resumable, checksum-verified downloads (COCO archives, checkpoints) for machines with internet.

Bytes go to ``<dest>.part``; an interrupted download resumes from its size with an HTTP Range
request (or restarts when the server ignores ranges). Only a file whose SHA-256 matches is renamed
to ``dest``, so a truncated or corrupted download never looks finished.
"""
from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

from sb2bench._infra.hashing import sha256_file


class ChecksumError(ValueError):
    pass


def download(url: str, dest: str | Path, sha256: str | None, chunk: int = 1 << 20, timeout: float = 60.0) -> Path:
    """Fetch ``url`` to ``dest`` unless it is already there with the right checksum."""
    dest = Path(dest)
    if dest.exists() and (sha256 is None or sha256_file(dest) == sha256):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code != 416:  # 416: the .part already holds every byte
            raise
        response = None
    if response is not None:
        with response:
            resumed = have and response.status == 206
            with open(part, "ab" if resumed else "wb") as f:
                while block := response.read(chunk):
                    f.write(block)
    got = sha256_file(part)
    if sha256 is not None and got != sha256:
        part.unlink()
        raise ChecksumError(f"{url}: SHA-256 {got} does not match the expected {sha256}; the partial file was "
                            f"removed, run again to download it afresh")
    os.replace(part, dest)
    return dest


def fetch_and_extract(url: str, sha256: str, root: str | Path, downloads: str | Path) -> list[Path]:
    """Download a zip archive (verified, resumable) and unpack its top-level entries into ``root``.

    Unpacking goes to a temporary folder first; each top-level entry is renamed into place only when
    the whole archive extracted, so an interrupted run never leaves a half-filled ``val2014/``."""
    import shutil
    import tempfile
    import zipfile

    if not sha256:
        raise ChecksumError(f"{url}: no sha256 given; every download must name its checksum "
                            f"(evaluation.coco.download.files[].sha256)")
    root = Path(root)
    archive = download(url, Path(downloads) / url.rstrip("/").rsplit("/", 1)[-1], sha256)
    root.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive) as zf:
        tops = sorted({Path(n).parts[0] for n in zf.namelist() if n.strip("/")})
        if all((root / t).exists() for t in tops):
            return [root / t for t in tops]
        tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=root))
        try:
            zf.extractall(tmp)
            for t in tops:
                if (root / t).exists():
                    shutil.rmtree(root / t) if (root / t).is_dir() else (root / t).unlink()
                os.replace(tmp / t, root / t)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return [root / t for t in tops]
