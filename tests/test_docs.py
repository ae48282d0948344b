"""The README stays a performer's page: under 20 KB, the two set-up commands, the packages that
scripts/setup.sh installs, and the parameters as the engine defines them; links between the
pages lead somewhere."""

from __future__ import annotations

import contextlib
import importlib
import io
import re
import subprocess
import sys

import pytest

from conftest import REPO

from livegen.cli import COMMANDS, build_parser
from livegen.cli.bench import _available
from livegen.engine.input import input_param_specs
from livegen.engine.params import engine_param_specs, latent_param_specs
from livegen.tui.__main__ import main as tui_main

README = (REPO / "README.md").read_text()


def test_readme_is_short():
    assert len(README.encode()) < 20_000, "README.md is for performers: move reference material into docs/"


def test_readme_gives_the_two_setup_commands():
    commands = re.findall(r"^bash scripts/setup\.sh && .+$", README, re.M)
    assert commands == ["bash scripts/setup.sh && .venv/bin/livegen play",
                        "bash scripts/setup.sh && .venv/bin/python -m pytest -q"]


def test_readme_lists_what_setup_installs():
    setup = (REPO / "scripts" / "setup.sh").read_text()
    packages = re.search(r'^APT_PACKAGES="([^"]+)"', setup, re.M).group(1).split()
    listed = re.search(r"`sudo` when not root: `([^`]+)`", README).group(1).split()
    assert listed == packages



def test_readme_parameter_table_matches_the_registry():
    specs = {spec.name: spec for spec in [*engine_param_specs(), *latent_param_specs(8)]}
    rows = re.findall(r"^\| (`\w+`(?:, `\w+`|\.\.`\w+`)*) \| ([^|]+) \| ([^|]+) \|", README, re.M)
    assert len(rows) >= 10, "the README's parameter table is gone"
    number = r"-?\d+(?:\.\d+)?"
    for names_cell, range_cell, default_cell in rows:
        names = re.findall(r"`(\w+)`", names_cell)
        ranges = re.findall(rf"({number})\.\.({number})", range_cell)
        defaults = re.findall(number, default_cell)
        ranges = ranges * len(names) if len(ranges) == 1 else ranges
        defaults = defaults * len(names) if len(defaults) == 1 else defaults
        assert len(ranges) == len(defaults) == len(names), names_cell
        for name, (low, high), default in zip(names, ranges, defaults):
            spec = specs[name]
            assert (float(low), float(high), float(default)) == (spec.minimum, spec.maximum, spec.default), (
                f"README says {name} is {low}..{high}, default {default}; livegen.engine.params says "
                f"{spec.minimum}..{spec.maximum}, default {spec.default}")


def test_links_into_the_repository_lead_somewhere():
    for page in [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.relative_to(REPO)} links to {target}, which is missing"


PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
OPTION = re.compile(r"(?<![\w-])--[a-z][\w-]*")
NOT_LIVEGEN_OPTIONS = {
    "--nproc_per_node": "torchrun's",
    "--no-deps": "pip's",
    "--follow": "docs/glide.md: an option of a variant that was tried and not kept, named as such",
}
"""Options the pages name that belong to other programs (scripts/ options are checked by parsing)."""


def _help_options(argv: list[str], main) -> set[str]:
    """The options `main(argv + ['--help'])` lists."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main([*argv, "--help"])
    return set(OPTION.findall(out.getvalue()))


def _shown_commands(prefix: str) -> list[tuple[str, str]]:
    """(page, command line) for every command starting with `prefix` in the pages' code blocks
    (continuation lines joined) and inline code, cut at `&&`, `|`, `;` and comments."""
    found = []
    for page in PAGES:
        text = page.read_text()
        blocks = re.findall(r"```[a-z]*\n(.*?)```", text, re.S)
        lines = [line for block in blocks for line in block.replace("\\\n", " ").splitlines()]
        spans = re.findall(r"`([^`]+)`", re.sub(r"```.*?```", "", text, flags=re.S).replace("\n", " "))
        for line in [*lines, *spans]:
            for part in re.split(r"&&|\|(?=\s)|;", line.split(" #")[0]):
                words = part.split()
                for i, word in enumerate(words):
                    if word in (prefix, f".venv/bin/{prefix}"):
                        found.append((page.name, " ".join(words[i:])))
    return found


def test_every_option_a_shown_livegen_command_gives_is_an_option_of_that_command():
    """`livegen play --osc-port 9000`, `livegen bench latency --kinds mpe --play-args "--read R"`:
    each option is one of that command's (its action's for `dataset`, its benchmark's for `bench`)."""
    parser = build_parser()
    benches = _available()
    known: dict[tuple[str, ...], set[str]] = {}
    checked = 0
    for page, command in _shown_commands("livegen"):
        words = command.split()[1:]
        if not words or words[0] not in COMMANDS:
            continue
        named = words[0] in ("dataset", "bench") and len(words) > 1 and re.fullmatch(r"[a-z][a-z-]*", words[1])
        key = tuple(words[:2]) if named else tuple(words[:1])  # `bench NAME`, `bench ...`: the bench command's own
        if key[0] == "bench" and len(key) == 2:
            assert key[1] in benches, f"{page} shows `{command}`; `livegen bench` runs {', '.join(benches)}"
            module = importlib.import_module(f"livegen.bench.{key[1]}")
            main = module.main
            argv = []
        else:
            main, argv = parser.parse_args, list(key)
        if key not in known:
            known[key] = _help_options(argv, main) | ({"--markdown"} if key[0] == "bench" else set())
        play_args = " ".join(re.findall(r'--play-args "([^"]*)"', command))
        for option in OPTION.findall(re.sub(r'--play-args "[^"]*"', "--play-args", command)):
            assert option in known[key], f"{page} shows `{command}`: `livegen {' '.join(key)}` has no {option}"
            checked += 1
        if play_args:
            known.setdefault(("play",), _help_options(["play"], parser.parse_args))
            for option in OPTION.findall(play_args):
                assert option in known[("play",)], f"{page} shows `{command}`: `livegen play` has no {option}"
    assert checked >= 100, "the pages' commands were not found"


def test_every_option_the_pages_name_is_an_option_of_livegen_or_its_scripts():
    """Options named in prose (`--audio-device NAME`, `--ahead-ms MS`) exist somewhere: in a
    livegen command, `python -m livegen.tui`, or the scripts/ commands the pages show."""
    parser = build_parser()
    options = _help_options([], tui_main) | {"--markdown"}
    for name in COMMANDS:
        options |= _help_options([name], parser.parse_args)
    for action in ("gm", "gm-songs", "info", "features"):
        options |= _help_options(["dataset", action], parser.parse_args)
    for name in _available():
        options |= _help_options([], importlib.import_module(f"livegen.bench.{name}").main)
    for page, command in _shown_commands("python"):
        words = command.split()
        if len(words) > 2 and words[1].startswith("scripts/") and not words[2].startswith("/"):
            done = subprocess.run([sys.executable, words[1], words[2], "--help"], cwd=REPO, capture_output=True,
                                  text=True, timeout=120)
            assert done.returncode == 0, f"{page} shows `{command}`: {done.stderr[-500:]}"
            options |= set(OPTION.findall(done.stdout))
    for page in PAGES:
        for option in sorted(set(OPTION.findall(page.read_text())) - options - set(NOT_LIVEGEN_OPTIONS)):
            raise AssertionError(f"{page.name} names {option}, which no livegen command has")


def test_input_settings_table_matches_the_registry():
    """docs/input.md's table of `input_*` settings gives each one's range and default as the engine defines them."""
    specs = {spec.name: spec for spec in input_param_specs()}
    rows = re.findall(r"^\| `(input_\w+)` \| (-?[\d.]+)(?:\.\.|/)(-?[\d.]+)[^|]* \| (-?[\d.]+) \|",
                      (REPO / "docs" / "input.md").read_text(), re.M)
    assert sorted(name for name, *_ in rows) == sorted(specs), "docs/input.md's settings table lacks or adds some"
    for name, low, high, default in rows:
        spec = specs[name]
        assert (float(low), float(high), float(default)) == (spec.minimum, spec.maximum, spec.default), (
            f"docs/input.md says {name} is {low}..{high}, default {default}; the engine says "
            f"{spec.minimum}..{spec.maximum}, default {spec.default}")
