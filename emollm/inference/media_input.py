"""Ad-hoc media for chat, predict and the server: file paths, base64 data and uploads -> a ``Sample``.

Everything a user hands over (a path on the command line, a base64 data URL in an HTTP request, an
uploaded file, a path on the server) ends up as a plain file whose kind (video, audio, image) is
known, checked with ``emollm.media.probe`` (decodable, has the needed stream, not too long) and
wrapped in a ``Sample`` with absolute paths, so it goes through the same ``Featurizer`` /
``MediaBundle`` / feature cache as training and evaluation.

    kind = kind_for_path("clip.mp4")                          # "video" (by suffix)
    mime, data = parse_data_url("data:video/mp4;base64,AAAA")
    with MediaWorkspace() as ws:                              # per-request temp folder, removed on exit
        p = ws.write("video", data, mime_suffix("video", mime))
        check_media(p, "video", max_seconds=60)               # MediaInputError when unusable
        sample = make_sample({"video": p}, subtitle="I'm fine.")
    p = resolve_in_root("clips/a.mp4", media_root)            # server-side paths: symlinks resolved, no escapes
    store = UploadStore(tmp / "uploads"); f = store.add("a.mp4", data, "video/mp4")

Errors are ``MediaInputError`` (a ``ValueError``) carrying an HTTP status and a short machine code, so
the server can answer with a 4xx JSON error and the CLI prints one ``error:`` line.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from emollm.data.sample import Sample
from emollm.media.image import IMAGE_SUFFIXES

MEDIA_KINDS = ("video", "audio", "image")
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".flv", ".mpg", ".mpeg"})
AUDIO_SUFFIXES = frozenset({".wav", ".mp3", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".aac"})
SUFFIXES: dict[str, frozenset[str]] = {"video": VIDEO_SUFFIXES, "audio": AUDIO_SUFFIXES, "image": IMAGE_SUFFIXES}

MIME_SUFFIX: dict[str, tuple[str, str]] = {
    "video/mp4": ("video", ".mp4"),
    "video/x-m4v": ("video", ".m4v"),
    "video/quicktime": ("video", ".mov"),
    "video/x-matroska": ("video", ".mkv"),
    "video/webm": ("video", ".webm"),
    "video/x-msvideo": ("video", ".avi"),
    "video/avi": ("video", ".avi"),
    "video/msvideo": ("video", ".avi"),
    "video/x-flv": ("video", ".flv"),
    "video/mpeg": ("video", ".mpg"),
    "audio/wav": ("audio", ".wav"),
    "audio/x-wav": ("audio", ".wav"),
    "audio/wave": ("audio", ".wav"),
    "audio/vnd.wave": ("audio", ".wav"),
    "audio/mpeg": ("audio", ".mp3"),
    "audio/mp3": ("audio", ".mp3"),
    "audio/flac": ("audio", ".flac"),
    "audio/x-flac": ("audio", ".flac"),
    "audio/ogg": ("audio", ".ogg"),
    "audio/opus": ("audio", ".opus"),
    "audio/mp4": ("audio", ".m4a"),
    "audio/x-m4a": ("audio", ".m4a"),
    "audio/m4a": ("audio", ".m4a"),
    "audio/aac": ("audio", ".aac"),
    "audio/webm": ("audio", ".webm"),
    "image/png": ("image", ".png"),
    "image/jpeg": ("image", ".jpg"),
    "image/jpg": ("image", ".jpg"),
    "image/bmp": ("image", ".bmp"),
    "image/webp": ("image", ".webp"),
    "image/gif": ("image", ".gif"),
    "image/tiff": ("image", ".tif"),
}
"""Accepted MIME types -> (media kind, file suffix the file is stored under)."""

AUDIO_FORMATS = {"wav": ".wav", "mp3": ".mp3", "flac": ".flac", "ogg": ".ogg", "opus": ".opus", "m4a": ".m4a"}
"""OpenAI ``input_audio.format`` values -> suffix."""

_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(?:;[\w.+-]+=[^;,]*)*)(?P<b64>;base64)?,")


class MediaInputError(ValueError):
    """Unusable user media; ``status`` is the HTTP status the server answers with, ``code`` a short tag."""

    def __init__(self, message: str, code: str = "invalid_media", status: int = 400, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.param = param


# ------------------------------------------------------------------------------------------ kinds


def kind_for_path(path: str | os.PathLike[str]) -> str:
    """Media kind from a file suffix (``.mp4`` -> video, ``.wav`` -> audio, ``.png`` -> image)."""
    suf = Path(path).suffix.lower()
    for kind, sufs in SUFFIXES.items():
        if suf in sufs:
            return kind
    known = sorted(VIDEO_SUFFIXES | AUDIO_SUFFIXES | IMAGE_SUFFIXES)
    raise MediaInputError(
        f"{path}: unsupported media suffix {suf or '(none)'!r}; expected one of {' '.join(known)}",
        code="unsupported_media_type",
        status=415,
    )


def mime_suffix(kind: str | None, mime: str, where: str = "media") -> tuple[str, str]:
    """``(kind, suffix)`` for a MIME type; ``kind`` (when given) must match the MIME type's kind."""
    m = mime.lower().strip()
    hit = MIME_SUFFIX.get(m)
    if hit is None:
        raise MediaInputError(
            f"{where}: unsupported media type {mime!r}; accepted: {', '.join(sorted(MIME_SUFFIX))}",
            code="unsupported_media_type",
            status=415,
        )
    if kind is not None and hit[0] != kind and not (kind == "audio" and hit[0] == "video"):
        raise MediaInputError(
            f"{where}: a {kind} part carries {mime!r} ({hit[0]}); send {kind} data or use a {hit[0]} part",
            code="unsupported_media_type",
            status=415,
        )
    return (kind or hit[0], hit[1])


# ------------------------------------------------------------------------------------------ base64


def b64decode_strict(data: str, where: str = "media") -> bytes:
    """Decode standard or URL-safe base64 (whitespace ignored); anything else is a 400 ``invalid_base64``."""
    s = re.sub(r"\s+", "", data)
    if not s:
        raise MediaInputError(f"{where}: empty base64 data", code="invalid_base64")
    try:
        if "-" in s or "_" in s:
            return base64.b64decode(s.translate(str.maketrans("-_", "+/")), validate=True)
        return base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError) as e:
        raise MediaInputError(f"{where}: data is not valid base64 ({e})", code="invalid_base64") from None


def is_data_url(url: str) -> bool:
    return url[:5].lower() == "data:"


def parse_data_url(url: str, where: str = "media") -> tuple[str, bytes]:
    """``data:<mime>[;params];base64,<data>`` -> ``(mime, bytes)``. Only base64 payloads are accepted."""
    m = _DATA_URL.match(url)
    if m is None or not m.group("mime"):
        raise MediaInputError(
            f"{where}: malformed data URL (expected data:<type>/<subtype>;base64,<data>)", code="invalid_data_url"
        )
    if not m.group("b64"):
        raise MediaInputError(f"{where}: data URL must be base64-encoded (';base64,')", code="invalid_data_url")
    return m.group("mime"), b64decode_strict(url[m.end() :], where)


# ------------------------------------------------------------------------------------------ paths


def resolve_in_root(path: str, root: str | os.PathLike[str] | None, where: str = "media") -> Path:
    """A server-side path (relative to ``root``, absolute inside it, or ``file://``) -> resolved file.

    Symlinks are resolved before the containment check, ``..`` components are refused outright, and
    nothing outside ``root`` is ever opened. No ``root`` (server started without ``--media-root``)
    means server-side paths are disabled.
    """
    if root is None:
        raise MediaInputError(
            f"{where}: server-side paths are disabled (start the server with --media-root DIR)",
            code="paths_disabled",
            status=403,
        )
    raw = path
    if raw.lower().startswith("file:"):
        u = urlparse(raw)
        if u.netloc not in ("", "localhost"):
            raise MediaInputError(f"{where}: file URLs must not name a host", code="invalid_path")
        raw = unquote(u.path)
    if not raw or "\x00" in raw:
        raise MediaInputError(f"{where}: empty or invalid path", code="invalid_path")
    p = Path(raw)
    if ".." in p.parts:
        raise MediaInputError(
            f"{where}: '..' is not allowed in media paths", code="path_outside_media_root", status=403
        )
    base = Path(root).resolve()
    full = (p if p.is_absolute() else base / p).resolve()
    if not full.is_relative_to(base):
        raise MediaInputError(
            f"{where}: {path!r} is outside the media root", code="path_outside_media_root", status=403
        )
    if not full.is_file():
        raise MediaInputError(f"{where}: no such file {path!r} under the media root", code="media_not_found")
    return full


# ------------------------------------------------------------------------------------------ checks


def check_media(
    path: str | os.PathLike[str], kind: str, max_seconds: float | None = None, where: str | None = None
) -> Any:
    """Probe ``path`` as ``kind``: decodable, has the stream the kind needs, at most ``max_seconds`` long.

    Returns the ``MediaInfo``; raises ``MediaInputError`` (400) naming ``where`` otherwise.
    """
    from emollm.media.probe import probe

    name = where or Path(path).name
    if kind == "image" and Path(path).suffix.lower() not in IMAGE_SUFFIXES:
        raise MediaInputError(
            f"{name}: an image must be one of {sorted(IMAGE_SUFFIXES)}", code="unsupported_media_type"
        )
    info = probe(path)
    if not info.ok:
        why = (info.error or "unreadable").replace(str(path), "the file")  # never echo server paths
        raise MediaInputError(f"{name}: cannot decode the {kind}: {why}", code="invalid_media", param=where)
    if kind == "video" and not info.has_video:
        raise MediaInputError(f"{name}: has no video stream (send it as audio)", code="invalid_media", param=where)
    if kind == "audio" and not info.has_audio:
        raise MediaInputError(f"{name}: has no audio stream", code="invalid_media", param=where)
    if max_seconds is not None and info.duration is not None and info.duration > max_seconds:
        raise MediaInputError(
            f"{name}: {kind} is {info.duration:.1f} s long; the limit is {max_seconds:g} s",
            code="media_too_long",
            param=where,
        )
    return info


def make_sample(
    media: Mapping[str, str | os.PathLike[str]],
    subtitle: str | None = None,
    sample_id: str | None = None,
    meta: dict[str, Any] | None = None,
) -> Sample:
    """A ``Sample`` with absolute media paths (so it needs no manifest root)."""
    bad = [k for k in media if k not in MEDIA_KINDS]
    if bad:
        raise MediaInputError(f"unknown media kind(s) {bad}; expected some of {MEDIA_KINDS}")
    paths = {k: str(Path(v).expanduser().resolve()) for k, v in media.items()}
    for k, p in paths.items():
        if not Path(p).is_file():
            raise FileNotFoundError(f"{k} file not found: {p}")
    sid = sample_id or next((Path(paths[k]).stem for k in MEDIA_KINDS if k in paths), "") or "chat"
    sub = subtitle.strip() if subtitle and subtitle.strip() else None
    return Sample(id=sid, corpus="adhoc", split="predict", media=paths, subtitle=sub, meta=dict(meta or {}))


# ------------------------------------------------------------------------------------------ temp files


class MediaWorkspace:
    """A private temporary folder for one request's media; every file gets a fresh, unique name.

    ``with MediaWorkspace(parent) as ws: ws.write("video", data, ".mp4")``; the folder and its files are
    removed on exit (or by ``close()``), also when the request failed.
    """

    def __init__(self, parent: str | os.PathLike[str] | None = None, prefix: str = "emollm-req-") -> None:
        if parent is not None:
            Path(parent).mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
        self._n = 0

    def write(self, kind: str, data: bytes, suffix: str) -> Path:
        self._n += 1
        p = self.path / f"{kind}-{self._n:02d}-{secrets.token_hex(4)}{suffix}"
        with open(p, "xb") as f:
            f.write(data)
        return p

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> MediaWorkspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class UploadedFile:
    id: str
    path: Path
    kind: str
    filename: str
    bytes: int
    created_at: int
    purpose: str = "user_data"

    def describe(self) -> dict[str, Any]:
        """The OpenAI file object."""
        return {
            "id": self.id,
            "object": "file",
            "bytes": self.bytes,
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "emollm_kind": self.kind,
        }


_FILE_ID = re.compile(r"^file-[0-9a-f]{24}$")


def is_file_id(s: str) -> bool:
    return bool(_FILE_ID.match(s))


class UploadStore:
    """Uploaded media kept on disk under random ids (``file-<24 hex>``), oldest evicted past ``max_files``.

    Thread-safe. The stored name is the id plus the kind's suffix; the client's file name is only
    reported back, never used as a path.
    """

    def __init__(self, root: str | os.PathLike[str], max_files: int = 64) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_files = max_files
        self._files: OrderedDict[str, UploadedFile] = OrderedDict()
        self._lock = threading.Lock()

    def kind_suffix(self, filename: str, content_type: str | None) -> tuple[str, str]:
        ct = (content_type or "").split(";")[0].strip().lower()
        if ct in MIME_SUFFIX:
            return MIME_SUFFIX[ct]
        try:
            kind = kind_for_path(filename)
        except MediaInputError:
            raise MediaInputError(
                f"upload {filename!r}: unsupported media type {content_type or '(none)'!r} and suffix "
                f"{Path(filename).suffix or '(none)'!r}",
                code="unsupported_media_type",
                status=415,
            ) from None
        return kind, Path(filename).suffix.lower()

    def reserve(self, filename: str, content_type: str | None) -> tuple[str, str, Path]:
        """``(id, kind, path)`` for a new upload; write the data to ``path`` then call ``commit``."""
        kind, suffix = self.kind_suffix(filename, content_type)
        fid = "file-" + secrets.token_hex(12)
        return fid, kind, self.root / f"{fid}{suffix}"

    def commit(self, fid: str, kind: str, path: Path, filename: str, purpose: str = "user_data") -> UploadedFile:
        f = UploadedFile(fid, path, kind, Path(filename).name, path.stat().st_size, int(time.time()), purpose)
        with self._lock:
            self._files[fid] = f
            while len(self._files) > self.max_files:
                _, old = self._files.popitem(last=False)
                old.path.unlink(missing_ok=True)
        return f

    def add(
        self, filename: str, data: bytes, content_type: str | None = None, purpose: str = "user_data"
    ) -> UploadedFile:
        fid, kind, path = self.reserve(filename, content_type)
        path.write_bytes(data)
        return self.commit(fid, kind, path, filename, purpose)

    def get(self, fid: str, where: str = "file") -> UploadedFile:
        with self._lock:
            f = self._files.get(fid)
            if f is not None:
                self._files.move_to_end(fid)
        if f is None:
            raise MediaInputError(f"{where}: no uploaded file with id {fid!r}", code="file_not_found", status=404)
        return f

    def delete(self, fid: str) -> UploadedFile:
        with self._lock:
            f = self._files.pop(fid, None)
        if f is None:
            raise MediaInputError(f"no uploaded file with id {fid!r}", code="file_not_found", status=404)
        f.path.unlink(missing_ok=True)
        return f

    def list(self) -> list[UploadedFile]:
        with self._lock:
            return list(self._files.values())
