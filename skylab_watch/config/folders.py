"""Checks of the watches' folders: on the disk, and where they lie relative to each other.

`load.parse_config` runs all of them; `doctor` runs the disk checks again on
a loaded config (through `watch_folder_problems`), so both say the same thing
in the same words. Each check returns `Problem`s rather than raising.
"""

from __future__ import annotations

import os
from itertools import combinations
from pathlib import Path
from typing import Any

from skylab_watch.config.check import INVALID
from skylab_watch.errors import Problem


def watch_folder_problems(index: int, source: Any, output: Any, archive: Any) -> list[Problem]:
    """Given watch number `index`'s input, output and archive folders (INVALID or None are skipped),
    return what is wrong with them on this disk, for this user.
    """
    path = f"watches[{index}]"
    return (input_folder_problems(source, f"{path}.input")
            + creatable_folder_problems(output, f"{path}.output")
            + creatable_folder_problems(archive, f"{path}.archive_dir"))


def input_folder_problems(folder: Any, path: str) -> list[Problem]:
    """Return why `folder` cannot be watched: missing, not a folder, or not readable."""
    if folder in (None, INVALID):
        return []
    if not folder.exists():
        return [Problem(path, f"folder {folder} does not exist", "create it or correct the path")]
    if not folder.is_dir():
        return [Problem(path, f"{folder} is not a folder")]
    if not os.access(folder, os.R_OK | os.X_OK):
        return [Problem(path, f"cannot read folder {folder} as this user", "grant read access")]
    return []


def creatable_folder_problems(folder: Any, path: str) -> list[Problem]:
    """Return why `folder` is neither a writable folder nor one that can be made in an existing parent."""
    if folder in (None, INVALID):
        return []
    if folder.exists():
        if not folder.is_dir():
            return [Problem(path, f"{folder} is not a folder")]
        if not os.access(folder, os.W_OK | os.X_OK):
            return [Problem(path, f"cannot write to folder {folder} as this user", "grant write access")]
        return []
    parent = folder.parent
    if parent.exists() and not parent.is_dir():
        return [Problem(path, f"{folder} cannot be created: {parent} is a file, not a folder",
                        "move that file aside or correct the path")]
    if not parent.is_dir():
        return [Problem(path, f"neither {folder} nor its parent folder exists",
                        f"create {parent} (the last folder is created on start)")]
    if not os.access(parent, os.W_OK | os.X_OK):
        return [Problem(path, f"{folder} does not exist and this user cannot create it in {parent}")]
    return []


def folder_problems(watches: Any, check_paths: bool) -> list[Problem]:
    """Given the checked watch entries (dicts, any of them INVALID), return every folder problem.

    Per watch: its folders on the disk (unless `check_paths` is false), then
    how its keys relate (archive without archive_dir, an output inside the
    input); then between watches (a name used twice, overlapping inputs).
    """
    if watches is INVALID:
        return []
    valid = [(i, w) for i, w in enumerate(watches) if w is not INVALID]
    problems = []
    for i, watch in valid:
        if check_paths:
            problems += watch_folder_problems(i, watch["input"], watch["output"], watch["archive_dir"])
        problems += _one_watch_layout(f"watches[{i}]", watch)
    return problems + _names_unique(valid) + _inputs_apart(valid)


def _one_watch_layout(path: str, watch: dict) -> list[Problem]:
    """Return the problems among one watch's input, output, archive_dir and after_success."""
    source, output, archive = watch["input"], watch["output"], watch["archive_dir"]
    problems = []
    if watch["after_success"] == "archive" and archive is None:
        problems.append(Problem(f"{path}.archive_dir", "is required when after_success is archive: "
                                                       "the folder originals are moved to"))
    if source is INVALID:
        return problems
    if output is not INVALID and _inside(output, source):
        problems.append(Problem(f"{path}.output", f"{output} is inside the input folder {source}; retouched "
                                                  "photos would be sent again: choose an output outside the input"))
    elif output is not INVALID and _inside(source, output):
        problems.append(Problem(f"{path}.input", f"{source} is inside the output folder {output}; "
                                                 "choose an input outside the output"))
    if archive not in (None, INVALID) and _inside(archive, source):
        problems.append(Problem(f"{path}.archive_dir", f"{archive} is inside the input folder {source}; archived "
                                                       "originals would be sent again: choose a folder outside "
                                                       "the input"))
    return problems


def _names_unique(watches: list[tuple[int, dict]]) -> list[Problem]:
    first: dict[str, int] = {}
    problems = []
    for i, watch in watches:
        name = watch["name"]
        if name is INVALID:
            continue
        if name in first:
            problems.append(Problem(f"watches[{i}].name", f"'{name}' is already the name of watches[{first[name]}]; "
                                                          "each watch needs its own name (the ledger is keyed by it)"))
        first.setdefault(name, i)
    return problems


def _inputs_apart(watches: list[tuple[int, dict]]) -> list[Problem]:
    """Return inputs that overlap another watch's input, and outputs inside another watch's input."""
    problems = []
    for (i, a), (j, b) in combinations(watches, 2):
        if a["input"] is INVALID or b["input"] is INVALID:
            continue
        if _inside(a["input"], b["input"]) or _inside(b["input"], a["input"]):
            problems.append(Problem(f"watches[{j}].input", f"{b['input']} overlaps the input of watches[{i}] "
                                                           f"({a['input']}); a photo there would be sent by both "
                                                           "watches: give each watch its own folder"))
        for (k, x), (m, y) in (((i, a), (j, b)), ((j, b), (i, a))):
            if y["output"] is not INVALID and _inside(y["output"], x["input"]):
                problems.append(Problem(f"watches[{m}].output", f"{y['output']} is inside the input of "
                                                                f"watches[{k}] ({x['input']}); its retouched photos "
                                                                "would be sent again: choose an output outside "
                                                                "every input"))
    return problems


def _inside(inner: Path, outer: Path) -> bool:
    """Tell whether `inner` is `outer` or below it, after following symlinks."""
    inner, outer = inner.resolve(), outer.resolve()
    return inner == outer or outer in inner.parents
