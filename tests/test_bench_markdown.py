"""`livegen bench NAME ... --markdown FILE` keeps the printed figures, stamped with commit,
machine and load, as the pages in docs/benchmarks/ are."""

from __future__ import annotations

import pytest
from helpers import assert_refused, livegen

from livegen.bench._report import split_markdown_option
from livegen.cli import main


def test_markdown_option_is_taken_from_either_side_of_the_name():
    assert split_markdown_option(["--voices", "1", "--markdown", "a.md"]) == (["--voices", "1"], "a.md")
    assert split_markdown_option(["--markdown=b.md", "--quick"]) == (["--quick"], "b.md")
    assert split_markdown_option(["--quick"]) == (["--quick"], None)
    with pytest.raises(ValueError, match="--markdown needs a file name"):
        split_markdown_option(["--markdown"])


def test_bench_model_writes_a_stamped_page(tmp_path, capsys):
    page = tmp_path / "bench" / "model.md"
    code = main(["bench", "model", "--voices", "1", "--iters", "5", "--repeats", "1",
                 "--markdown", str(page)])
    printed = capsys.readouterr().out
    assert code == 0
    text = page.read_text()
    assert text.startswith("# `livegen bench model --voices 1 --iters 5 --repeats 1`\n")
    for stamp in ("- date: ", "- commit: ", "- machine: ", "- load average (1 / 5 / 15 min): "):
        assert stamp in text
    assert printed.strip() and printed.strip() in text  # the figures as printed, kept whole


def test_markdown_into_a_folder_is_refused_with_a_clear_message(tmp_path, capsys):
    assert main(["bench", "--markdown", str(tmp_path), "model"]) == 2
    assert "that is a folder; give a file name" in capsys.readouterr().err


@pytest.mark.parametrize("name, extra, named", [
    ("phase", ["--seconds", "-1"], ["--seconds", "-1", "> 0"]),
    ("model", ["--repeats", "0"], ["--repeats", "0", ">= 1"]),
    ("engine", ["--hops", "0"], ["--hops", "0"]),
    ("latency", ["--events", "0"], ["--events", "0"]),
    ("session", ["--seconds", "nan"], ["--seconds", "nan", "finite"]),
])
def test_bench_option_out_of_range_exits_2_naming_it(name, extra, named):
    assert_refused(livegen("bench", name, *extra, timeout=60), *named)


@pytest.mark.parametrize("name, extra, named", [
    ("model", ["--voices", "1,a"], ["--voices", "'a'", "an integer"]),
    ("model", ["--voices", "0"], ["--voices", "0", "1..16"]),
    ("continuation", ["--skip", "fit,bogus"], ["--skip", "'bogus'", "collapse, fit, cost, notes"]),
])
def test_bench_list_option_with_a_bad_item_exits_2_naming_it(name, extra, named):
    assert_refused(livegen("bench", name, *extra, timeout=60), *named)


@pytest.mark.parametrize("name, option", [("session", "--dir"), ("input", "--out"), ("ui", "--profile")])
def test_bench_output_that_is_a_file_or_folder_exits_2(tmp_path, name, option):
    taken = tmp_path / "notes.txt"
    taken.write_text("mine")
    target = tmp_path if option == "--profile" else taken
    assert_refused(livegen("bench", name, option, target, timeout=60), f"{option} {target}")
    assert taken.read_text() == "mine"


def test_a_module_of_definitions_is_no_benchmark(capsys):
    """`livegen.bench.sound` holds what `livegen eval` measures: `livegen bench --help` does not
    offer it, and asking for it names the benchmarks instead of failing with a traceback."""
    assert main(["bench", "sound"]) == 2
    err = capsys.readouterr().err
    assert "no benchmark named 'sound'" in err and "model" in err and "Traceback" not in err


def test_engine_seconds_zero_skips_the_engine_comparison_as_its_help_says(tmp_path):
    """`bench session --engine-seconds 0` skips the engine-step comparison (its help says so); a
    negative length is refused."""
    result = livegen("bench", "session", "--engine-seconds", "0", "--seconds", "0.2", "--dir", tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "engine step" not in result.stdout and "disk keeping up" in result.stdout, result.stdout
    assert_refused(livegen("bench", "session", "--engine-seconds", "-1", timeout=60), "--engine-seconds", "-1")
