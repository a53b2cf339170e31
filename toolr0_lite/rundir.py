"""The run directory: every record on disk as JSONL, written so that a killed run resumes without loss.

Two rules make resume exact:
- Whole files (configs, the task set, state) are written atomically: to a temp file, then renamed.
- JSONL files only grow, one flushed line per record. `state.json` keeps, for each JSONL file, how many
  lines belong to finished units of work (a phase, a batch of candidates; a batch is committed by `commit()`).
  On start, each file is cut back to that count, so a half-written line or the records of an unfinished
  phase are dropped, then redone.

Damage from outside (a state.json cut or edited by hand, or gone while records remain) stops the run with
one line naming the file and what to do; nothing is cut back then. Each commit keeps the previous state in
`state.prev.json`, which can take a damaged state's place (the work since then is redone).

The line counts at each finished unit are kept too (`lines_at`), so a run can be copied as it stood after any
of its phases (branch.py: a paired ablation of the phases that follow).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Callable, Iterable

import jsonlines

from toolr0_lite.config import ConfigError


def iteration_name(i: int) -> str:
    """The folder of iteration `i`, also the prefix of its units in state.json: iter_00, iter_01, …"""
    return f"iter_{i:02d}"


def iteration_index(name: str) -> int | None:
    """The iteration a folder or unit belongs to, or None.

    >>> iteration_index("iter_03/solver"), iteration_index("iter_12"), iteration_index("eval")
    (3, 12, None)
    """
    match = re.match(r"iter_(\d+)(/|$)", name)
    return int(match.group(1)) if match else None


class RunDirError(ConfigError):
    """A run directory damaged outside the kit; the message names the file and what to do."""


def atomic_write_text(path: Path, text: str) -> None:
    """Write a whole file so that readers see the old or the new content, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with jsonlines.open(path) as reader:
        return list(reader)


def committed_lines(data: bytes, keep: int) -> bytes:
    """The first `keep` complete lines of a JSONL file's bytes; a torn last line (no newline yet) never counts."""
    return b"".join(line + b"\n" for line in data.split(b"\n")[:-1][:keep])


def adapter_units(units: Iterable[str]) -> list[str]:
    """The finished units that saved a LoRA adapter in a folder of their name: each role's phase (iter_00/solver)."""
    return [unit for unit in units if unit.endswith(("/generator", "/solver"))]


def read_state(root: Path) -> dict[str, Any]:
    """A run directory's state.json, or {} when there is none, read without opening the run (it may be
    running); a damaged one, or one that is not a run's state, is a `RunDirError` naming it and the fix."""
    path, backup = Path(root) / "state.json", Path(root) / "state.prev.json"
    if not path.exists():
        return {}
    hint = (f"copy {backup.name} over it to resume from the commit before (the work since is redone), or "
            if backup.exists() else "")  # fmt: skip
    try:
        state = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunDirError(f"{path} is damaged ({e}); {hint}restore it from a backup (nothing was changed)") from None
    if not isinstance(state, dict) or not isinstance(state.get("done", []), list) \
            or not all(isinstance(state.get(key, {}), dict) for key in ("lines", "lines_at")):  # fmt: skip
        raise RunDirError(f"{path} does not hold a run's state; {hint}restore it (nothing was changed)")
    return state


def finished_units(root: Path) -> list[str]:
    """The units a run directory lists as finished (e.g. "iter_00/solver"); [] for no state yet."""
    return list(read_state(root).get("done", []))


def _hold_lock(path: Path):
    """A lock on the run for as long as this process lives (the OS drops it when the process ends, even when
    killed): a second process that would write the same run is refused instead of mixing its records in."""
    import fcntl

    handle = open(path, "a+")
    try:
        fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise RunDirError(f"{path.parent} is being written by {holder}, still running; wait for it to end or stop it, "
                          "then run again (nothing was changed)") from None  # fmt: skip
    handle.seek(0)
    handle.truncate()
    handle.write(f"process {os.getpid()}\n")
    handle.flush()
    return handle


class RunDir:
    """Paths and records of one run. `commit()` marks everything written so far as finished work.

    In a run of several processes (distributed.py) only one is the `writer`; the others read the state it
    left and write nothing, and `sync` (a barrier) ends every commit on all of them, so after a commit every
    process sees the same files.
    """

    def __init__(self, root: str | Path, writer: bool = True, sync: Callable[[], None] = lambda: None):
        self.root = Path(root)
        self.writer, self.sync = writer, sync
        if writer:
            self.root.mkdir(parents=True, exist_ok=True)
            self._lock = _hold_lock(self.root / "run.lock")
        self.state_path = self.root / "state.json"
        self.state: dict[str, Any] = self._read_state()  # every process: a damaged folder stops them all alike
        if writer:
            if not self.state_path.exists():  # a new run: its state exists before its first record can
                self._write_state()
            self._roll_back()
        self.sync()  # the others read the state once the writer has cut its files back
        if not writer:
            self.state = self._read_state()

    def _read_state(self) -> dict[str, Any]:
        """state.json, or {} for a new run; a damaged one, or a missing one while records exist, is refused."""
        if not self.state_path.exists() and any(self._jsonl_files()):
            backup = self.root / "state.prev.json"
            hint = f"copy {backup.name} over it to resume from the commit before, or " if backup.exists() else ""
            raise RunDirError(f"{self.state_path} is missing but {self.root} holds records; {hint}restore it, "
                              "or move the folder away to start again (nothing was changed)")  # fmt: skip
        state = read_state(self.root)
        state.setdefault("done", [])  # finished units, e.g. "iter_00/generator"
        state.setdefault("lines", {})  # committed line count of each JSONL file
        state.setdefault("lines_at", {})  # the line counts when each finished unit was committed
        return state

    def _roll_back(self) -> None:
        """Cut every JSONL file back to its committed lines (drops torn lines and unfinished work)."""
        for path in self._jsonl_files():
            data = path.read_bytes()
            head = committed_lines(data, self.state["lines"].get(str(path.relative_to(self.root)), 0))
            if head != data:
                atomic_write_text(path, head.decode("utf-8"))

    def _jsonl_files(self) -> Iterable[Path]:
        """This run's JSONL files; a folder with its own state.json (e.g. eval/) is a run of its own and left alone."""
        for path in self.root.rglob("*.jsonl"):
            nested = path.parent
            while nested != self.root and not (nested / "state.json").exists():
                nested = nested.parent
            if nested == self.root:
                yield path

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    def iteration(self, i: int) -> Path:
        return self.root / iteration_name(i)

    def append(self, relative: str, records: Iterable[dict]) -> None:
        """Append records to a JSONL file, one flushed line each."""
        if not self.writer:
            return
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as f:
            for record in records:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
                f.flush()

    def write_jsonl(self, relative: str, records: Iterable[dict]) -> None:
        """Write a whole JSONL file at once, atomically (for files that are rewritten, not appended to)."""
        if self.writer:
            atomic_write_text(self.root / relative, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))

    def count(self, relative: str) -> int:
        path = self.root / relative
        if not path.exists():
            return 0
        with open(path, "rb") as f:
            return sum(1 for _ in f)

    def is_done(self, unit: str) -> bool:
        return unit in self.state["done"]

    def commit(self, unit: str | None = None) -> None:
        """Record every JSONL file's current length (and `unit` as done) in one atomic write of state.json."""
        if unit is not None and unit not in self.state["done"]:
            self.state["done"].append(unit)
        if self.writer:
            self._write_state(unit)
        self.sync()

    def _write_state(self, unit: str | None = None) -> None:
        self.state["lines"] = {str(p.relative_to(self.root)): self.count(str(p.relative_to(self.root)))
                               for p in self._jsonl_files()}  # fmt: skip
        if unit is not None:
            self.state["lines_at"][unit] = dict(self.state["lines"])
        if self.state_path.exists():  # the last good state, for when state.json is damaged from outside
            atomic_write_text(self.root / "state.prev.json", self.state_path.read_text())
        atomic_write_text(self.state_path, json.dumps(self.state, indent=1))
