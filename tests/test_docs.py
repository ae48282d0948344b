"""The README stays a performer's page: under 20 KB, the two set-up commands, the packages that
scripts/setup.sh installs, and the parameters as the engine defines them; links between the
pages lead somewhere."""

from __future__ import annotations

import re

from conftest import REPO

from livegen.engine.params import engine_param_specs, latent_param_specs

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
