"""The programs as a user meets them: --help, python -m tinyalex, console scripts, bad
numbers, which checkpoint a run folder means, predict on folders and patterns, CSV/JSON."""

import argparse
import configparser
import csv
import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinyalex import checkpoint, cli, evaluate, predict, train, viz

PROGRAMS = ("train", "evaluate", "predict", "viz", "cache")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def cpu(monkeypatch):
    monkeypatch.setenv("TINYALEX_DEVICE", "cpu")


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", *map(str, args)], capture_output=True,
                          text=True, timeout=300)


def parsers():
    """(name, parser) of every program and sub-command."""
    for name in PROGRAMS:
        parser = importlib.import_module(f"tinyalex.{name}").build_parser()
        yield name, parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub, subparser in action.choices.items():
                    yield f"{name} {sub}", subparser


@pytest.mark.parametrize("name,parser", list(parsers()), ids=lambda v: v if
                         isinstance(v, str) else "")
def test_help_has_no_raw_markup_and_every_option_is_explained(name, parser):
    text = parser.format_help()
    assert "``" not in text, name
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            assert all(a.help for a in action._choices_actions), name
        elif not isinstance(action, argparse._HelpAction):
            assert action.help, f"{name}: {action.option_strings or action.dest} has no help"


def test_python_m_tinyalex_lists_the_commands_and_runs_one():
    result = run_cli("tinyalex")
    assert result.returncode == 0, result.stderr
    for name in PROGRAMS:
        assert f"python -m tinyalex.{name} " in result.stdout
    result = run_cli("tinyalex", "cache", "list")
    assert result.returncode == 0 and result.stdout.startswith("tinyalex cache: ")
    result = run_cli("tinyalex", "trian")
    assert result.returncode == 2 and result.stderr.startswith("error: unknown command 'trian'")


def test_console_scripts_point_at_each_program():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    scripts = dict(line.split(" = ") for line in
                   config["options.entry_points"]["console_scripts"].strip().splitlines())
    assert set(scripts) == {f"tinyalex-{name}" for name in PROGRAMS}
    for script, target in scripts.items():
        module, function = target.split(":")
        assert module == f"tinyalex.{script.split('-')[1]}"
        assert callable(getattr(importlib.import_module(module), function))


# --- bad numbers ----------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ("tinyalex.evaluate", "--batch-size", "0"),
    ("tinyalex.viz", "neighbours", "--queries", "0"),
    ("tinyalex.viz", "neighbours", "--neighbours", "0"),
    ("tinyalex.predict", "IMAGE", "--top", "0"),
], ids=["evaluate batch 0", "neighbours queries 0", "neighbours 0", "predict top 0"])
def test_bad_numbers_are_one_line_errors(argv, tiny_run):
    argv = [a if a != "IMAGE" else str(tiny_run / "curves.png") for a in argv]
    result = run_cli(*argv, "--checkpoint", tiny_run)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and ">= 1" in lines[0]


# --- a run folder means best.npz ------------------------------------------------------------

@pytest.fixture
def run_with_other_best(tiny_run, tmp_path):
    """A copy of tiny_run whose best.npz holds other weights than last.npz (another seed)."""
    out = tmp_path / "run"
    shutil.copytree(tiny_run, out)
    arrays, meta = checkpoint.load(out / "best.npz")
    rng = np.random.default_rng(5)
    arrays["param"] = {k: v + rng.normal(0, 0.05, v.shape).astype(v.dtype)
                       for k, v in arrays["param"].items()}
    checkpoint.save(out / "best.npz", arrays, meta)
    return out


def test_a_run_folder_means_best_npz_and_the_output_says_so(run_with_other_best, tiny_folder,
                                                            capsys):
    out = run_with_other_best
    image = tiny_folder / "val" / "red" / "1.png"
    probabilities = {}
    for given in (out, out / "best.npz", out / "last.npz"):
        assert predict.main([str(image), "--checkpoint", str(given), "--json", "-"]) == 0
        captured = capsys.readouterr()
        document = json.loads(captured.out)
        probabilities[given] = document["predictions"][0]["top"]
        assert captured.err.startswith(f"checkpoint {evaluate.checkpoint_file(given)} (epoch")
    assert probabilities[out] == probabilities[out / "best.npz"]
    assert probabilities[out] != probabilities[out / "last.npz"]
    assert evaluate.main(["--checkpoint", str(out)]) == 0
    assert capsys.readouterr().out.startswith(f"checkpoint {out / 'best.npz'} (epoch")
    assert viz.main(["filters", "--checkpoint", str(out)]) == 0
    assert f"checkpoint {out / 'best.npz'}" in capsys.readouterr().out
    # --resume still continues from last.npz, the newest state
    _, meta, _ = train.resume_source(str(out))
    _, last = checkpoint.load(out / "last.npz")
    assert meta["history"] == last["history"]


def test_a_run_folder_without_best_npz_falls_back_to_last(tmp_path):
    (tmp_path / "last.npz").write_bytes(b"")
    assert evaluate.checkpoint_file(tmp_path) == tmp_path / "last.npz"
    assert evaluate.checkpoint_file(tmp_path / "x.npz") == tmp_path / "x.npz"


# --- predict on folders and patterns, CSV and JSON ------------------------------------------

def test_predict_a_folder_a_pattern_csv_and_json(tiny_run, tiny_folder, tmp_path, capsys):
    pictures = tmp_path / "pictures"
    shutil.copytree(tiny_folder / "val", pictures)           # 9 images in 3 subfolders
    (pictures / "red" / "notes.txt").write_text("not an image, not an image extension")
    (pictures / "blue" / "broken.png").write_text("<html>an error page saved as png</html>")
    assert predict.main([str(pictures), "--checkpoint", str(tiny_run), "--top", "2"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    images = [line for line in lines[1:] if not line.startswith("  ")]
    assert len(images) == 9 and images == sorted(images)
    assert len(lines) == 1 + 9 * 3                          # checkpoint, 9 x (path + top 2)
    assert "skipped 1 file(s)" in captured.err and "broken.png" in captured.err

    csv_path = tmp_path / "out.csv"
    pattern = str(pictures / "**" / "[0-1].png")             # 0.png and 1.png of each class
    assert predict.main([pattern, "--checkpoint", str(tiny_run), "--csv", str(csv_path)]) == 0
    assert f"wrote CSV predictions of 6 images to {csv_path}" in capsys.readouterr().out
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 * 3 and set(rows[0]) == {"path", "rank", "class", "probability"}
    for path in {row["path"] for row in rows}:
        mine = [float(r["probability"]) for r in rows if r["path"] == path]
        assert mine == sorted(mine, reverse=True) and abs(sum(mine) - 1) < 1e-4

    json_path = tmp_path / "out.json"
    assert predict.main([str(pictures / "red"), "--checkpoint", str(tiny_run), "--json",
                         str(json_path)]) == 0
    document = json.loads(json_path.read_text())
    assert document["checkpoint"] == str(tiny_run / "best.npz")
    assert [Path(p["path"]).name for p in document["predictions"]] == ["0.png", "1.png", "2.png"]
    assert all(len(p["top"]) == 3 for p in document["predictions"])


def test_predict_matches_the_network_on_the_same_preprocessing(tiny_run, tiny_folder):
    net, stats, meta = evaluate.load_trained(tiny_run, "cpu")
    files = sorted((tiny_folder / "val").rglob("*.png"))
    results, skipped = predict.classify(net, stats, [(f, True) for f in files], 3)
    assert not skipped and [path for path, _ in results] == files
    direct = predict.predict_files(net, stats, files, 3)
    assert [ranked for _, ranked in results] == direct


@pytest.mark.parametrize("argument,message", [
    ("nowhere.jpg", "does not exist"),
    ("*.nothing", "no file matches"),
    ("EMPTY", "is a folder without image files"),
])
def test_predict_bad_arguments_are_one_line(argument, message, tiny_run, tmp_path, capsys,
                                            monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "EMPTY").mkdir()
    assert cli.run(predict.main, [argument, "--checkpoint", str(tiny_run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_evaluate_reports_per_class_accuracy_and_the_confusion_matrix(tiny_run, capsys):
    assert evaluate.main(["--checkpoint", str(tiny_run)]) == 0
    out = capsys.readouterr().out.splitlines()
    net, stats, meta = evaluate.load_trained(tiny_run, "cpu")
    from tinyalex import data

    _, val = data.open_splits(meta["data"], net.config.image_size, log=None)
    result = evaluate.evaluate(net, val, stats)
    expected = evaluate.format_report(result, meta["classes"])
    assert out[2:] == expected
    assert out[2] == "per-class top-1 (correct / images):"
    assert sum(int(line.split("(")[1].split(" / ")[0]) for line in out[3:6]) == \
        round(result["top1"] * 9)


def test_evaluate_class_mismatch_says_what_differs(tiny_run, tmp_path):
    from conftest import make_tiny_folder

    other = make_tiny_folder(tmp_path / "other", classes=("blue", "grey", "red"))
    result = run_cli("tinyalex.evaluate", "--checkpoint", tiny_run, "--data", other)
    assert result.returncode == 2
    assert ("3 classes in the data, 3 in the checkpoint; only in the data: grey; only in the "
            "checkpoint: green") in result.stderr
    assert "(3 vs 3)" not in result.stderr


def test_ctrl_c_in_any_program_is_one_line_and_exit_130(capsys):
    def interrupted(argv):
        raise KeyboardInterrupt

    assert cli.run(interrupted) == 130
    assert capsys.readouterr().err.strip() == "interrupted"
    assert cli.description("run ``python -m x``") == "run python -m x"


@pytest.mark.parametrize("env,option,message", [
    ({"TINYALEX_KERNELS": "emulat"}, [], "TINYALEX_KERNELS='emulat' is not one of auto, "
                                         "emulate, off"),
    ({}, ["--impl", "cuda"], None),  # NumPy float32: the emulated kernels, a valid choice
    ({}, ["--device", "gpu"], "device 'gpu' asked for, but CuPy is not installed"),
])
def test_a_setting_that_cannot_be_used_is_one_line_and_leaves_no_folder(tiny_folder, tmp_path,
                                                                        monkeypatch, env,
                                                                        option, message):
    """A typo in TINYALEX_KERNELS, or a GPU asked for where none can be used: one line, exit
    2, and no empty run folder left behind (the setting is checked before anything is
    written). The GPU advice says what works from a checkout, not `tinyalex[gpu]`."""
    from tinyalex.backend import gpu_available

    if option == ["--device", "gpu"] and gpu_available():
        pytest.skip("this machine has a usable GPU")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "tinyalex.train", "--data", str(tiny_folder),
                             "--out", str(out), "--epochs", "1", "--batch-size", "8",
                             "--no-progress", "--num-workers", "0", *option],
                            capture_output=True, text=True, timeout=300)
    if message is None:
        assert result.returncode == 0, result.stderr
        assert "implementation cuda (the CUDA kernels on the CPU emulator)" in result.stdout
        return
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [f"error: {result.stderr.strip()[7:]}"]
    assert message in result.stderr and "Traceback" not in result.stderr
    assert "tinyalex[gpu]" not in result.stderr
    assert not out.exists()


# --- text from files is shown escaped ---------------------------------------------

def test_an_error_quoting_a_name_with_escape_codes_stays_one_line(capsys):
    def main(argv):
        raise cli.UserError("class folder /data/train/\x1b[2Jcats\nfake: line has no image")

    assert cli.run(main, []) == 2
    err = capsys.readouterr().err
    assert err == "error: class folder /data/train/\\x1b[2Jcats\\nfake: line has no image\n"


def test_the_evaluation_tables_show_class_names_escaped():
    confusion = np.array([[3, 1], [0, 4]])
    lines = evaluate.format_report({"confusion": confusion}, ["\x1b[31mred", "two\nlines"])
    assert not any("\x1b" in line for line in lines)
    assert len(lines) == 1 + 2 + 2 + 2                # header, 2 rows, matrix header + 2 rows
    assert lines[1].split()[0] == "\\x1b[31mred" and lines[2].split()[0] == "two\\nlines"


# --- every numeric setting of training checked before any work --------------------

@pytest.mark.parametrize("option,value,words", [
    ("--seed", "-1", "--seed must be an integer in 0..4294967295"),
    ("--seed", str(2**32), "--seed must be an integer in 0..4294967295"),
    ("--lr", "inf", "--lr must be a finite number > 0"),
    ("--lr", "nan", "--lr must be a finite number > 0"),
    ("--lr", "0", "--lr must be a finite number > 0"),
    ("--momentum", "nan", "--momentum must be a finite number in [0, 1)"),
    ("--momentum", "1", "--momentum must be a finite number in [0, 1)"),
    ("--momentum", "-0.5", "--momentum must be a finite number in [0, 1)"),
    ("--weight-decay", "-0.0005", "--weight-decay must be a finite number >= 0"),
    ("--weight-decay", "inf", "--weight-decay must be a finite number >= 0"),
    ("--epochs", "0", "--epochs must be >= 1"),
    ("--batch-size", "-3", "--batch-size must be >= 1"),
    ("--patience", "-1", "--patience must be >= 0"),
    ("--milestones", "0", "--milestones must be >= 1"),
    ("--num-workers", "-1", "--num-workers must be >= 0"),
])
def test_a_bad_number_for_training_is_one_line_before_any_work(option, value, words, tiny_folder,
                                                               tmp_path, capsys, monkeypatch):
    from tinyalex import data

    def open_splits(*args, **kwargs):
        raise AssertionError("data was read before the settings were checked")

    monkeypatch.setattr(data, "open_splits", open_splits)
    out = tmp_path / "run"
    status = cli.run(train.main, ["--data", str(tiny_folder), "--out", str(out), "--no-progress",
                                  option, value])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and err == [f"error: {words}, got {value}"], err
    assert not out.exists()


def test_a_huge_epoch_count_plans_its_milestones_at_once():
    from tinyalex.run import default_milestones

    epochs = 10**30                          # (the old set of every epoch never finished)
    first, second = default_milestones(epochs)
    assert abs(first / epochs - 0.7) < 1e-9 and abs(second / epochs - 0.9) < 1e-9
    assert default_milestones(10) == [7, 9] and default_milestones(1) == []
