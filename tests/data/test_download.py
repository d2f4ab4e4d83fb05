"""Downloads resume with HTTP Range and are verified by SHA-256 (server on loopback)."""
import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sb2bench.data.download import ChecksumError, download

PAYLOAD = bytes(range(256)) * 400  # 102,400 bytes


class RangeHandler(BaseHTTPRequestHandler):
    honour_range = True
    requests: list = []

    def do_GET(self):  # noqa: N802
        rng = self.headers.get("Range")
        type(self).requests.append(rng)
        start = int(rng.split("=")[1].rstrip("-")) if rng and self.honour_range else 0
        if start >= len(PAYLOAD):
            self.send_response(416)
            self.end_headers()
            return
        body = PAYLOAD[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    RangeHandler.requests = []
    RangeHandler.honour_range = True
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/file.bin"
    httpd.shutdown()


SHA = hashlib.sha256(PAYLOAD).hexdigest()


def test_full_download_is_verified(server, tmp_path):
    out = download(server, tmp_path / "f.bin", SHA)
    assert out.read_bytes() == PAYLOAD and not (tmp_path / "f.bin.part").exists()
    download(server, tmp_path / "f.bin", SHA)  # already there: no second request
    assert RangeHandler.requests == [None]


def test_interrupted_download_resumes_with_range(server, tmp_path):
    (tmp_path / "f.bin.part").write_bytes(PAYLOAD[:30_000])
    download(server, tmp_path / "f.bin", SHA)
    assert RangeHandler.requests == ["bytes=30000-"]
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
    RangeHandler.honour_range = False
    (tmp_path / "f.bin.part").write_bytes(b"garbage" * 10)
    download(server, tmp_path / "f.bin", SHA)
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD


def test_bad_checksum_leaves_nothing(server, tmp_path):
    with pytest.raises(ChecksumError, match="does not match"):
        download(server, tmp_path / "f.bin", "0" * 64)
    assert not (tmp_path / "f.bin").exists() and not (tmp_path / "f.bin.part").exists()


def test_complete_part_file_is_finished_without_refetching_bytes(server, tmp_path):
    (tmp_path / "f.bin.part").write_bytes(PAYLOAD)
    download(server, tmp_path / "f.bin", SHA)
    assert RangeHandler.requests == [f"bytes={len(PAYLOAD)}-"]
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD


def _zip_bytes() -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("val2014/COCO_val2014_000000000001.jpg", b"jpeg bytes")
        zf.writestr("val2014/COCO_val2014_000000000002.jpg", b"more bytes")
    return buf.getvalue()


def test_archive_is_verified_then_unpacked_whole(tmp_path, monkeypatch):
    from sb2bench.data.download import fetch_and_extract

    payload = _zip_bytes()
    monkeypatch.setitem(globals(), "PAYLOAD", payload)  # what RangeHandler serves
    RangeHandler.requests = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/val2014.zip"
    try:
        with pytest.raises(ChecksumError, match="no sha256"):
            fetch_and_extract(url, "", tmp_path / "coco", tmp_path / "coco" / "downloads")
        tops = fetch_and_extract(url, hashlib.sha256(payload).hexdigest(), tmp_path / "coco",
                                 tmp_path / "coco" / "downloads")
    finally:
        httpd.shutdown()
    assert tops == [tmp_path / "coco" / "val2014"]
    assert sorted(p.name for p in tops[0].iterdir()) == ["COCO_val2014_000000000001.jpg",
                                                        "COCO_val2014_000000000002.jpg"]
    assert not list((tmp_path / "coco").glob(".extract-*"))
