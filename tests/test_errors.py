"""The argparse types of `livegen.errors` where the benches take comma lists: a bad item is
refused at parse time (exit code 2, the option and the value named), before jackd or a model
starts."""

from __future__ import annotations

import pytest

from livegen.bench import glide, latency
from livegen.cli import build_parser


@pytest.mark.parametrize("argv, named", [
    (["--kinds", "osc,foo"], "--kinds: 'foo' is unknown; choose from osc, midi, xy, mpe, input"),
    (["--kinds", ","], "--kinds: give at least one value"),
    (["--periods", "256,x"], "--periods: 'x' is not an integer; give an integer in 16..8192"),
    (["--periods", "3"], "--periods: 3 is out of range"),
    (["--lookaheads", "default,-1"], "--lookaheads: -1 is out of range; give an integer in 0..16 (or 'default')"),
    (["--lookaheads", "17"], "--lookaheads: 17 is out of range; give an integer in 0..16 (or 'default')"),
    (["--lookaheads", "dflt"], "--lookaheads: 'dflt' is not an integer"),
    (["--input", "--periods", "99999"], "--periods: 99999 is out of range"),
])
def test_latency_bench_refuses_a_bad_list_item_before_starting(argv, named, capsys):
    with pytest.raises(SystemExit) as stop:
        latency.main(argv)
    assert stop.value.code == 2
    out, err = capsys.readouterr()
    assert named in err, err
    assert out == ""  # nothing ran: the machine line is the first thing a run prints


@pytest.mark.parametrize("argv, named", [
    (["--cases", "slide,wobble"], "--cases: 'wobble' is unknown; choose from vibrato, slide, glide, input"),
])
def test_glide_bench_refuses_an_unknown_case_before_loading_the_model(argv, named, capsys):
    with pytest.raises(SystemExit) as stop:
        glide.main(argv)
    assert stop.value.code == 2
    out, err = capsys.readouterr()
    assert named in err and out == "", (out, err)


def test_glide_bench_reads_its_cases_as_a_list():
    assert glide._parser().parse_args(["--cases", " slide , input "]).cases == ["slide", "input"]
    assert glide._parser().parse_args([]).cases == list(glide.CASES)


BIG = str(10 ** 400)  # a float holds no such number
HUGE = "9" * 5000  # past Python's 4300-digit limit on reading an integer


@pytest.mark.parametrize("argv", [
    ["render", "ev.jsonl", "-o", "x.wav"], ["play", "--headless"], ["train", "--data", "d", "--out", "run"], ["eval", "--model", "models/default"],
    ["dataset", "gm-songs", "--soundfont", "x.sf2", "--out", "o"],
])
@pytest.mark.parametrize("seed, said", [
    (str(2 ** 32), f"{2 ** 32} is out of range; give an integer in 0..4294967295"),
    ("-1", "-1 is out of range; give an integer in 0..4294967295"),
    (BIG, f"--seed: {BIG[:20]}... (401 characters) is too large; give an integer in 0..4294967295"),
    (HUGE, f"--seed: {HUGE[:20]}... (5000 characters) is out of range; give an integer in 0..4294967295"),
])
def test_a_seed_past_32_bits_is_refused_naming_the_range(argv, seed, said, capsys):
    """numpy takes any seed, but torch stops at 64 bits and training seeds it with seed * 1000 plus
    the step: every --seed stops at 2**32 - 1, and a 400-digit one is quoted short."""
    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args([*argv, "--seed", seed])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert said in err and len(err.splitlines()[-1]) < 250, err


def test_the_largest_seed_is_taken():
    args = build_parser().parse_args(["render", "ev.jsonl", "-o", "x.wav", "--seed", str(2 ** 32 - 1)])
    assert args.seed == 2 ** 32 - 1
