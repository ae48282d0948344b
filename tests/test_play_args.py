"""`play`'s options survive the trip from the UI parent to its engine child (`_rebuild_argv`)."""

from __future__ import annotations

import pytest
from helpers import assert_refused, livegen

from livegen.cli import build_parser, main
from livegen.cli.play import _rebuild_argv


def parse(*argv):
    return build_parser().parse_args(["play", *argv])


def test_rebuilt_argv_parses_back_to_the_same_options():
    args = parse("--model", "models/default", "--seed", "3", "--nice", "-5", "--osc-port", "9100",
                 "--osc-host", "0.0.0.0", "--osc-allow", "10.0.0.0/8", "127.0.0.1", "--midi-in", "nano",
                 "--midi-in", "Launch", "--midi-map", "map.toml", "--midi-channel", "2",
                 "--mpe", "upper:7",
                 "--record-dir", "takes", "--record-format", "PCM_24", "--duration", "4", "--read", "centre")
    again = parse(*_rebuild_argv(args))
    assert vars(again) == vars(args)
    off = parse("--no-osc", "--no-midi")
    again = parse(*_rebuild_argv(off))
    assert again.no_osc and again.no_midi and vars(again) == vars(off)


def test_read_option_offers_what_the_inverter_reads():
    from livegen.dsp.inverter import READS

    assert parse().read == "window" and parse("--read", "centre").read == "centre"
    choices = next(a.choices for a in build_parser()._subparsers._group_actions[0].choices["play"]._actions
                   if a.dest == "read")
    assert tuple(choices) == READS


def test_mpe_zone_option(capsys):
    assert parse("--mpe").mpe == "lower" and parse("--mpe", "lower:5").mpe == "lower:5"
    assert parse().mpe is None
    assert parse(*_rebuild_argv(parse("--mpe"))).mpe == "lower"
    with pytest.raises(SystemExit):
        parse("--mpe", "lower:16")
    assert "zone 'lower:16': give lower, upper, lower:N or upper:N with N = 1..15" in capsys.readouterr().err


def test_mpe_beside_one_channel_is_refused_before_anything_starts(capsys):
    assert main(["play", "--headless", "--mpe", "--midi-channel", "2", "--midi-map", "/nowhere.toml"]) == 2
    assert "--mpe lower plays on many channels and --midi-channel 2" in capsys.readouterr().err


@pytest.mark.parametrize("extra, named", [
    (["--duration", "nan"], ["--duration", "nan", "finite"]),
    (["--duration", "-1"], ["--duration", "-1", ">= 0.01"]),
    (["--duration", "1e-300"], ["--duration", "1e-300", ">= 0.01"]),
    (["--samplerate", "0"], ["--samplerate", "0", "8000..192000"]),
    (["--blocksize", "-5"], ["--blocksize", "-5"]),
    (["--latency", "bogus"], ["--latency", "'bogus'", "low, high or seconds"]),
    (["--seed", "-1"], ["--seed", "-1", "0..4294967295"]),
    (["--seed", "1" + "0" * 400], ["--seed", "too large", "0..4294967295"]),  # a float cannot hold it: no OverflowError
    (["--seed", str(2 ** 32)], ["--seed", str(2 ** 32), "0..4294967295"]),  # torch would refuse past 2 ** 64
    (["--threads", "0"], ["--threads", "0", "1..256"]),
    (["--lookahead", "-1"], ["--lookahead", "-1", "0..16"]),  # the inverter's range, before a sound server starts
    (["--lookahead", "17"], ["--lookahead", "17", "0..16"]),
    (["--read", "centre", "--lookahead", "0"], ["--read centre", "--lookahead 0", "--lookahead 1 or more"]),
    (["--midi-channel", "17"], ["--midi-channel", "17", "1..16"]),
    (["--nice", "100"], ["--nice", "100", "-20..19"]),
    (["--realtime-priority", "-7"], ["--realtime-priority", "-7"]),
    (["--osc-port", "70000"], ["--osc-port", "70000", "0..65535"]),
    (["--osc-port", "-1"], ["--osc-port", "-1", "0..65535"]),
    (["--temperature", "nan"], ["--temperature", "nan"]),
    (["--temperature", "0.5"], ["--temperature", "needs a continuation model"]),  # the default model has none
    (["--record", "{file}"], ["--record {file}", "not a folder"]),
    (["--record-dir", "{file}/takes"], ["--record-dir {file}/takes", "not a folder"]),
])
def test_bad_option_exits_2_naming_it_before_a_sound_server_starts(tmp_path, extra, named):
    """Refused by the parser or the checks before the sound server: no JACK is needed to hear it."""
    taken = tmp_path / "take.wav"
    taken.write_bytes(b"RIFF")
    def fill(text):
        return text.replace("{file}", str(taken))

    result = livegen("play", "--headless", "--no-midi", *map(fill, extra), timeout=60)
    assert_refused(result, *map(fill, named))
    assert taken.read_bytes() == b"RIFF"


def test_ui_log_that_is_a_folder_is_refused_before_the_ui_starts(tmp_path):
    assert_refused(livegen("play", "--no-midi", "--ui-log", tmp_path, timeout=60), f"--ui-log {tmp_path}", "folder")


def test_midi_map_that_is_a_folder_is_refused_as_one(tmp_path):
    assert_refused(livegen("play", "--headless", "--midi-map", tmp_path, timeout=60), f"--midi-map {tmp_path}",
                   "a folder")
