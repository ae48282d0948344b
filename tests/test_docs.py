"""The README stays a performer's page: under 20 KB, the two set-up commands, the packages that
scripts/setup.sh installs."""

from __future__ import annotations

import re

from conftest import REPO

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

