"""Walking a directory for `-p`, the way ripgrep does by default.

- Hidden files and directories (names starting with ".") and well-known build or tool
  directories (SKIPPED_DIRS) are skipped.
- `.gitignore` files are honoured inside a git repository (a directory with `.git` at or
  above the walk's root), together with `.git/info/exclude`; `.ignore` files are honoured
  everywhere and win over `.gitignore`. Ignore files in the directories above the root
  count too (up to the repository's top), deeper files override shallower ones, and the
  last matching line wins, `!` lines re-including. A directory that is ignored is not
  entered, so nothing below it can be re-included (as in git).
- Symbolic links to directories are never followed (no cycles, no escaping the tree);
  symbolic links to files are read.
- Anything that is not a regular file (a FIFO, a socket, a device) is skipped: reading
  one could block for ever or never end.

Skipped entries that a user might have expected are reported through `skipped(path,
why)`; ignored ones are not (they are the point of an ignore file).
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
from collections.abc import Callable, Iterator

SKIPPED_DIRS = {".git", ".hg", ".svn", "__pycache__", "node_modules", ".venv", "venv", ".tox",
                ".mypy_cache", ".pytest_cache", ".ruff_cache"}
IGNORE_FILES = (".gitignore", ".ignore")  # in precedence order: later wins

Skipped = Callable[[str, str], None]


@dataclasses.dataclass(frozen=True)
class Rule:
    base: str  # the directory whose ignore file holds the line (absolute, normalised)
    regex: re.Pattern
    negated: bool
    directories_only: bool

    def matches(self, path: str, is_dir: bool) -> bool:
        if self.directories_only and not is_dir:
            return False
        relative = os.path.relpath(path, self.base)
        if relative.startswith(".."):
            return False
        return bool(self.regex.match(relative.replace(os.sep, "/")))


def glob_regex(pattern: str) -> str:
    """A glob as a regex over '/'-separated relative paths: `**/` any directories, `*` and
    `?` within one name, `[...]` (`[!...]`, `[^...]`), `\\` escaping. Used for ignore-file
    patterns (stripped of `!`, a trailing `/` and a leading `/`) and for -p globs."""
    out = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            out.append("(?:.*/)?")
            index += 3
            continue
        if pattern.startswith("**", index):
            out.append(".*")
            index += 2
            continue
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            out.append(re.escape(pattern[index + 1]))
            index += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[" and (close := pattern.find("]", index + 2)) != -1:
            body = pattern[index + 1:close].replace("\\", "\\\\")
            out.append("[^" + body[1:] + "]" if body[0] in "!^" else "[" + body + "]")
            index = close
        else:
            out.append(re.escape(char))
        index += 1
    return "".join(out)


def parse_rule(line: str, base: str) -> Rule | None:
    """One line of an ignore file, or None for blanks and comments."""
    line = line.rstrip("\n").rstrip("\r")
    if not line.endswith("\\ "):
        line = line.rstrip(" ")
    if not line or line.startswith("#"):
        return None
    negated = line.startswith("!")
    if negated:
        line = line[1:]
    elif line.startswith(("\\!", "\\#")):
        line = line[1:]
    directories_only = line.endswith("/")
    line = line.rstrip("/")
    if not line:
        return None
    anchored = "/" in line
    body = glob_regex(line.lstrip("/"))
    regex = re.compile(("" if anchored else "(?:.*/)?") + body + r"\Z", re.DOTALL)
    return Rule(base, regex, negated, directories_only)


def read_rules(directory: str, names: tuple[str, ...]) -> list[Rule]:
    rules: list[Rule] = []
    for name in names:
        try:
            with open(os.path.join(directory, name), encoding="utf-8", errors="replace") as handle:
                lines = handle.read(1 << 20).splitlines()
        except OSError:
            continue
        rules.extend(rule for line in lines if (rule := parse_rule(line, directory)) is not None)
    return rules


def ignored(path: str, is_dir: bool, rules: list[Rule]) -> bool:
    verdict = False
    for rule in rules:
        if rule.matches(path, is_dir):
            verdict = not rule.negated
    return verdict


def _repository_top(directory: str) -> str | None:
    current = directory
    while True:
        if os.path.lexists(os.path.join(current, ".git")):
            return current
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent


def _names_in(directory: str, in_repository: bool) -> tuple[str, ...]:
    return IGNORE_FILES if in_repository else (".ignore",)


def rules_above(root: str) -> tuple[list[Rule], bool]:
    """(rules from ignore files above `root` and git's exclude file, whether `root` is in a repository)."""
    top = _repository_top(root)
    rules: list[Rule] = []
    if top is not None:
        rules.extend(read_rules(os.path.join(top, ".git", "info"), ("exclude",)))
        # exclude's patterns are relative to the repository's top, not to .git/info
        rules = [dataclasses.replace(rule, base=top) for rule in rules]
    ancestors = []
    current = os.path.dirname(root)
    while current != os.path.dirname(current):
        ancestors.append(current)
        if current == top:
            break
        current = os.path.dirname(current)
    for directory in reversed(ancestors):
        rules.extend(read_rules(directory, _names_in(directory, top is not None)))
    return rules, top is not None


def walk(root: str, *, use_ignore_files: bool = True, skipped: Skipped | None = None,
         descend: Callable[[str], bool] | None = None) -> Iterator[str]:
    """Regular files below `root` (sorted, depth first), as described in the module doc.

    `descend(directory)` may prune the walk (a glob without `**` needs only a few levels).
    """
    report = skipped or (lambda path, why: None)
    absolute_root = os.path.abspath(root)
    inherited, in_repository = rules_above(absolute_root) if use_ignore_files else ([], False)
    rules_of = {absolute_root: inherited}
    for current, dirs, files in os.walk(root, followlinks=False):
        absolute = os.path.abspath(current)
        rules = rules_of.pop(absolute, inherited)
        if use_ignore_files:
            rules = rules + read_rules(absolute, _names_in(absolute, in_repository))
        kept = []
        for name in sorted(dirs):
            path = os.path.join(current, name)
            if name.startswith(".") or name in SKIPPED_DIRS:
                continue
            if ignored(os.path.abspath(path), True, rules):
                continue  # an ignored link is not worth a word either
            if os.path.islink(path):
                report(path, "a symbolic link to a directory (not followed)")
            elif descend is None or descend(path):
                kept.append(name)
                rules_of[os.path.abspath(path)] = rules
        dirs[:] = kept
        for name in sorted(files):
            path = os.path.join(current, name)
            if name.startswith(".") or ignored(os.path.abspath(path), False, rules):
                continue
            why = _not_regular(path)
            if why:
                report(path, why)
            else:
                yield path


def _not_regular(path: str) -> str | None:
    """Why `path` (followed if a link) cannot be read as a file, or None if it can."""
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        return error.strerror or "cannot be read"
    if stat.S_ISREG(mode):
        return None
    kinds = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a directory"))
    kind = next((name for test, name in kinds if test(mode)), "not a regular file")
    return f"{kind}, not a regular file"
