"""Where llmtools keeps its state: the XDG base directories (config, data, cache, runtime),
or all four under `LLMTOOLS_HOME` (how tests isolate themselves), and private directories
made without following links planted by another user."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import stat
from pathlib import Path

from llmtools.errors import UsageError

APP = "llmtools"


@dataclasses.dataclass(frozen=True)
class Paths:
    config_dir: Path
    data_dir: Path
    cache_dir: Path
    runtime_dir: Path

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def log_db(self) -> Path:
        return self.data_dir / "logs.db"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"


def _private_temp_runtime_dir() -> Path:
    # No XDG_RUNTIME_DIR without a login session (cron, CI, containers): use a directory
    # of our own under the temp dir, named per user so users do not collide.
    import tempfile  # not at module level: only this fallback needs it

    return Path(tempfile.gettempdir()) / f"{APP}-{os.getuid()}"


def paths() -> Paths:
    home = os.environ.get("LLMTOOLS_HOME")
    if home:
        root = Path(home).expanduser()
        return Paths(root / "config", root / "data", root / "cache", root / "run")
    import xdg_base_dirs

    runtime = xdg_base_dirs.xdg_runtime_dir()
    return Paths(
        config_dir=xdg_base_dirs.xdg_config_home() / APP,
        data_dir=xdg_base_dirs.xdg_data_home() / APP,
        cache_dir=xdg_base_dirs.xdg_cache_home() / APP,
        runtime_dir=(runtime / APP) if runtime else _private_temp_runtime_dir(),
    )


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (mode 0700) if needed; refuse anything but a real directory of ours.

    Nothing here follows a link at `path`: in a shared temp dir another user may plant a
    symlink under the name we use, and following it would chmod (and fill) a directory of
    their choosing. The final component is created with mkdir (which never follows) and
    checked through a descriptor opened with O_NOFOLLOW; only a directory this user owns
    has group and other bits taken away, through that same descriptor.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as error:
        raise UsageError(f"{path} is not a real directory (a symlink or a file: {error.strerror}); "
                         "refusing to use it") from None
    try:
        info = os.fstat(descriptor)
        if info.st_uid != os.getuid():
            raise UsageError(f"{path} belongs to another user; refusing to use it")
        mode = stat.S_IMODE(info.st_mode)
        # Only take away what others may do: a directory the user made read-only stays so.
        if mode & 0o077:
            os.fchmod(descriptor, mode & 0o700)
    finally:
        os.close(descriptor)
    return path
