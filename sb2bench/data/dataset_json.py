"""SBv2's official COCO-2014 prompt list, ``dataset.json``, pinned to one commit of its repository.

The SBv2 authors publish the 30K evaluation prompts as ``dataset.json`` (``{"labels": [[path, caption], ...]}``,
40,504 entries, the first 30,000 are the prompts; BSD-3) in their evaluation code's first commit (aae9d41,
"init: swiftbrushv2", 2024-08-26). Pinning the commit and the SHA-256 means every run scores the same
captions; a file with another hash is refused before any job rather than silently changing the prompts.
"""
from __future__ import annotations

import urllib.error
from pathlib import Path

from sb2bench._infra.hashing import sha256_file

COMMIT = "aae9d417658b1aacee27f66017593e8bacfc819f"
URL = f"https://raw.githubusercontent.com/VinAIResearch/SwiftBrushV2/{COMMIT}/dataset.json"
SHA256 = "94a4cf8ccda5fa251960a9bad3e09c06988e49ac7da98f57c167f37c77e7ed12"
SIZE = 3_377_276


class DatasetJsonError(ValueError):
    pass


def where_to_get(path: str | Path, url: str | None, sha256: str | None) -> str:
    """The fix for a missing or wrong file: where it goes, where it comes from, what it hashes to."""
    src = f"download {url}" if url else "copy SBv2's dataset.json"
    check = f" and check `sha256sum {path}` prints {sha256}" if sha256 else ""
    return f"{src} to {path}{check} (evaluation.coco.dataset_json / dataset_json_url / dataset_json_sha256)"


def check_file(path: str | Path, sha256: str | None) -> None:
    """Refuse a dataset.json whose SHA-256 is not the pinned one (a different prompt list)."""
    if sha256 is None:
        return
    got = sha256_file(path)
    if got != sha256:
        raise DatasetJsonError(f"{path}: SHA-256 {got} is not the pinned {sha256}, so its prompts are not SBv2's "
                               f"list; delete it and {where_to_get(path, URL if sha256 == SHA256 else None, sha256)}, "
                               f"or set evaluation.coco.dataset_json_sha256: null to use your own list")


def fetch(dest: str | Path, url: str | None, sha256: str | None) -> Path:
    """``dest`` verified, downloading it (resumable, verified) when it is missing; offline, say what to do."""
    from sb2bench.data.download import download

    dest = Path(dest)
    if dest.exists():
        check_file(dest, sha256)
        return dest
    if not url:
        raise DatasetJsonError(f"{dest} does not exist and no dataset_json_url is set: "
                               f"{where_to_get(dest, None, sha256)}")
    try:
        return download(url, dest, sha256)
    except (urllib.error.URLError, OSError) as exc:
        raise DatasetJsonError(f"could not download {url} ({exc}); offline, {where_to_get(dest, url, sha256)}") from exc
