"""`livegen bench NAME ... --markdown FILE`: a bench's printed figures kept as a Markdown page.

The page is stamped with what the figures depend on (commit, machine, load average before and
after, date, the command), so a result in `docs/benchmarks/` says where it came from.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

from livegen import __version__

REPO = Path(__file__).resolve().parents[2]


def split_markdown_option(argv: list[str]) -> tuple[list[str], str | None]:
    """(argv without `--markdown FILE` / `--markdown=FILE`, FILE or None)."""
    out, path = [], None
    it = iter(argv)
    for arg in it:
        if arg == "--markdown":
            path = next(it, None)
            if path is None:
                raise ValueError("--markdown needs a file name, e.g. --markdown docs/benchmarks/engine.md")
        elif arg.startswith("--markdown="):
            path = arg.split("=", 1)[1]
        else:
            out.append(arg)
    return out, path


def commit() -> str:
    """The checkout's commit (short hash, `+changes` when the tree differs), or the version."""
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short=10", "HEAD"],
                              capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return f"livegen {__version__} (not a git checkout)"
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return head.stdout.strip() + (" with uncommitted changes" if dirty else "")
    except (OSError, subprocess.TimeoutExpired):
        return f"livegen {__version__} (git not available)"


def machine() -> str:
    """CPU model, cores, memory, kernel, Python, numpy/torch versions and GPU, in one line."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
        memory = f", {kib / 2**20:.1f} GiB"
    parts = [f"{cpu}, {os.cpu_count()} cores{memory}", f"{platform.system()} {platform.release()}",
             f"Python {platform.python_version()}"]
    torch = sys.modules.get("torch")
    if torch is not None:
        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
        parts.append(f"torch {torch.__version__}, {gpu}")
    return "; ".join(parts)


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


class _Tee(io.TextIOBase):
    def __init__(self, *streams):
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()


def run_with_markdown(name: str, argv: list[str], run, path: str | os.PathLike) -> int:
    """Run `run()` (a bench's `main`), showing its output as usual, then write `path`."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"--markdown {path}: that is a folder; give a file name, e.g. {path / (name + '.md')}")
    # The commit is read before the run: the checkout may move on while a long bench runs.
    start_load, start, wall0, revision = load(), datetime.datetime.now(datetime.timezone.utc), time.monotonic(), commit()
    captured = io.StringIO()
    with contextlib.redirect_stdout(_Tee(sys.stdout, captured)):
        code = int(run() or 0)
    command = shlex.join(["livegen", "bench", name, *argv])
    lines = [
        f"# `{command}`",
        "",
        f"- date: {start:%Y-%m-%d %H:%M} UTC, {time.monotonic() - wall0:.0f} s wall, exit code {code}",
        f"- commit: {revision}",
        f"- machine: {machine()}",
        f"- load average (1 / 5 / 15 min): {start_load} at the start, {load()} at the end",
        "",
        "```text",
        captured.getvalue().rstrip("\n"),
        "```",
        "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    print(f"livegen bench {name}: figures written to {path}", file=sys.stderr)
    return code
