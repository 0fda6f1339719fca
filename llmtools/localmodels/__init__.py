"""Local model files: the catalogue of models `llm models pull` knows, finding them, reading
a GGUF file's header, and pulling them.

Model files live in `statedirs.paths().models_dir` (`$XDG_DATA_HOME/llmtools/models`, or
`$LLMTOOLS_HOME/data/models`).

    catalog.py  the catalogue, and which file a `-m local:NAME` or path means
    gguf.py     the GGUF header: refusing non-GGUF files, the trained context length
    download.py pulling a catalogue model from its sources, verified, atomically

The names other code uses are importable from `llmtools.localmodels` itself. Nothing
here imports httpx or llama_cpp at module import: `llm --help` must stay fast.
"""

from typing import TYPE_CHECKING

from llmtools.localmodels.catalog import (
    CATALOG,
    SMOLLM2,
    CatalogModel,
    LocalFile,
    Source,
    WheelSource,
    catalog_model,
    ensure_model_file,
    is_present,
    local_files,
    locate,
    models_dir,
)
from llmtools.localmodels.gguf import check_gguf, context_length, gguf_metadata

if TYPE_CHECKING:
    from llmtools.localmodels.download import Progress, PullResult, is_verified, pull, sha256_of

# Pulling (hashlib, the progress bar) loads when one of its names is first used: a call
# to a local model through the daemon finds the file and reads its header, nothing more.
_FROM_PULL = {"Progress", "PullResult", "is_verified", "pull", "sha256_of"}


def __getattr__(name: str):
    if name in _FROM_PULL:
        from llmtools.localmodels import download

        globals().update({each: getattr(download, each) for each in _FROM_PULL})
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CATALOG", "SMOLLM2", "CatalogModel", "LocalFile", "Progress", "PullResult", "Source",
    "WheelSource", "catalog_model", "check_gguf", "context_length", "ensure_model_file", "gguf_metadata",
    "is_present", "is_verified", "local_files", "locate", "models_dir", "pull", "sha256_of",
]
