"""The foundation: CLI entry points agree, errors are clean, real components are reachable."""

import subprocess
import sys

import pytest

from conftest import REPO, require_binary


def run_cli(*args, entry=("-m", "livegen")):
    return subprocess.run([sys.executable, *entry, *args], capture_output=True, text=True, cwd=REPO, timeout=120)


@pytest.mark.slow
def test_cli_py_and_module_print_the_same_help():
    via_module = run_cli("--help")
    via_script = run_cli("--help", entry=(str(REPO / "cli.py"),))
    assert via_module.returncode == 0, via_module.stderr
    assert via_module.stdout.replace("__main__.py", "livegen") == via_script.stdout.replace("cli.py", "livegen")


def test_unknown_command_is_an_argument_error():
    result = run_cli("no-such-command")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


@pytest.mark.slow
def test_jack_dummy_server_starts_and_answers(jack_server):
    import jack

    client = jack.Client("livegen-probe", servername=jack_server.name, no_start_server=True)
    try:
        assert client.samplerate == 48000
        assert client.blocksize == 256
    finally:
        client.close()


def test_debian_tools_are_installed():
    for name in ("jackd", "fluidsynth", "oscsend", "oscdump", "espeak-ng", "sox"):
        require_binary(name)
