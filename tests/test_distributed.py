"""Several processes: data parallelism and the paper's two towers (tinyalex.distributed).

The multi-process tests start ``mpiexec -n N python ...`` (mpi4py and the mpich wheel come with
the test extra) as subprocesses with a timeout, so that a hang fails the test instead of
blocking the suite. Training runs use a tiny folder (30 images of 72x72, 3 classes, batch
8 -- which 3 processes share as 2 + 3 + 3 rows -- so an epoch is 4 steps).
"""

import csv
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import make_tiny_folder

from tinyalex import checkpoint, train
from tinyalex.distributed import share, volume

HERE = os.path.dirname(os.path.abspath(__file__))
MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
try:
    import mpi4py  # noqa: F401

    MPI_PROBLEM = None if MPIEXEC else "no mpiexec on PATH"
except ImportError:
    MPI_PROBLEM = "mpi4py is not installed"
needs_mpi = pytest.mark.skipif(MPI_PROBLEM is not None,
                               reason=f"{MPI_PROBLEM}: pip install -e \".[test]\" brings "
                                      "mpi4py and the mpich wheel")
TIMEOUT = 120  # seconds for one mpiexec run; the slowest here takes about 6


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """train/ and val/ with three classes of 72x72 images (conftest.make_tiny_folder)."""
    return make_tiny_folder(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def environment(tmp_path_factory):
    """For every process: a cache in a temporary folder, the CPU."""
    env = dict(os.environ, TINYALEX_CACHE=str(tmp_path_factory.mktemp("cache")),
               TINYALEX_DEVICE="cpu")
    env.pop("PYTHONPATH", None)
    return env


@pytest.fixture(autouse=True)
def cache(environment, monkeypatch):
    monkeypatch.setenv("TINYALEX_CACHE", environment["TINYALEX_CACHE"])
    monkeypatch.setenv("TINYALEX_DEVICE", "cpu")


def train_args(folder, out, epochs):
    return ["--data", str(folder), "--out", str(out), "--epochs", str(epochs), "--batch-size",
            "8", "--no-progress", "--num-workers", "0"]


def mpiexec(n, *args, env=None):
    """``mpiexec -n n python ARGS``: (CompletedProcess, seconds)."""
    start = time.perf_counter()
    result = subprocess.run([MPIEXEC, "-n", str(n), sys.executable, *map(str, args)],
                            capture_output=True, text=True, timeout=TIMEOUT, env=env)
    return result, time.perf_counter() - start


def train_mpi(n, env, *args):
    result, _ = mpiexec(n, "-m", "tinyalex.train", *args, env=env)
    assert result.returncode == 0, result.stderr
    return result


def weights(folder):
    arrays, meta = checkpoint.load(folder / "last.npz")
    return arrays["param"], meta


def assert_same_weights(run, reference, what):
    """Equal up to the order of floating-point additions: measured differences are about 5e-7
    of each layer's largest weight; a wrong dropout row or unit offset gives about 1."""
    (params, meta), (expected, expected_meta) = weights(run), weights(reference)
    assert meta["dropout_step"] == expected_meta["dropout_step"], what
    assert (meta["epoch"], meta["batch"]) == (expected_meta["epoch"], expected_meta["batch"])
    for name, value in expected.items():
        assert params[name].shape == value.shape, (what, name)
        gap = np.abs(params[name] - value).max() / np.abs(value).max()
        assert gap < 1e-5, f"{what}: {name} differs by {gap:.2e} of its largest weight"


@pytest.fixture(scope="module")
def reference(folder, tmp_path_factory, environment):
    """A single process's two epochs (the run every parallel run must reproduce)."""
    out = tmp_path_factory.mktemp("single")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TINYALEX_CACHE", environment["TINYALEX_CACHE"])
        mp.setenv("TINYALEX_DEVICE", "cpu")
        assert train.main(train_args(folder, out, epochs=2)) == 0
    return out


def test_share_splits_rows_in_consecutive_blocks():
    assert [share(8, r, 3) for r in range(3)] == [(0, 2), (2, 5), (5, 8)]
    assert [share(64, r, 3) for r in range(3)] == [(0, 21), (21, 42), (42, 64)]
    assert [share(3, r, 2) for r in range(2)] == [(0, 1), (1, 3)]  # fc8 of 3 classes
    assert [share(1, r, 2) for r in range(2)] == [(0, 0), (0, 1)]  # a rank may get no rows


@pytest.mark.parametrize("cores, local, expected", [
    ((0, 1, 2, 3), (1, 2), [2, 3]),  # 2 processes on 4 cores: the second takes 2 and 3
    ((0, 1), (2, 3), [0]),  # 3 processes on 2 cores: the third shares core 0
    ((0, 1), (0, 1), None),  # one process on this machine: nothing to share
])
def test_each_local_process_takes_its_share_of_the_cores(cores, local, expected, monkeypatch):
    from tinyalex.distributed import placement

    chosen = []
    monkeypatch.setattr(placement.os, "sched_getaffinity", lambda pid: set(cores),
                        raising=False)
    monkeypatch.setattr(placement.os, "sched_setaffinity", lambda pid, mine: chosen.append(mine),
                        raising=False)
    monkeypatch.setattr(placement.os, "cpu_count", lambda: len(cores))
    monkeypatch.setenv("PMI_SIZE", "4")
    monkeypatch.setenv("MPI_LOCALRANKID", str(local[0]))
    monkeypatch.setenv("MPI_LOCALNRANKS", str(local[1]))
    monkeypatch.delenv("TINYALEX_PIN", raising=False)
    assert placement.share_cores() == expected
    assert chosen == ([expected] if expected else [])
    monkeypatch.setenv("TINYALEX_PIN", "0")
    assert placement.share_cores() is None


def test_bytes_per_step_of_the_paper_net():
    """Data parallelism sends every gradient; the towers send activations (section 3.2)."""
    assert volume.data_parallel_bytes("paper", 2) == (60_965_224 + 2) * 4
    assert volume.data_parallel_bytes("paper", 4) == 3 * (60_965_224 + 2) * 4 // 2
    B = 128
    # float32 numbers per image; each exchange once forward, once backward, except the logits
    by_hand = 4 * B * (2 * 128 * 13 * 13  # into conv3: half of pool2's 256 maps of 13 x 13
                       + 2 * 128 * 6 * 6  # into fc6: half of pool5
                       + 2 * 2048 + 2 * 2048  # into fc7 and fc8: half of 4096 units each
                       + 2 * 2 * 55 * 55  # norm1: the 2 maps next to the seam
                       + 2 * 2 * 27 * 27  # norm2: the same
                       + 500)  # logits: 500 classes, forward only
    assert volume.tower_bytes("paper", B, 0) == volume.tower_bytes("paper", B, 1) == by_hand
    assert by_hand == 39_008_256
    assert volume.tower_bytes("paper", 256) == 2 * by_hand  # activations grow with the batch
    text = volume.table("paper", B)
    assert "243.9" in text and "39.0" in text and "3.8% of the weights" in text


@needs_mpi
@pytest.mark.parametrize("impl", ["fast", "textbook"])
def test_towers_compute_the_grouped_network(impl, environment):
    """Logits and every gradient of two tower processes equal the single grouped network's
    (float64, dropout on, LRN seam exchanged, fc8 split 1 + 2 classes); bytes as counted."""
    result, _ = mpiexec(2, os.path.join(HERE, "mpi_towers_check.py"), impl, env=environment)
    assert result.returncode == 0, result.stderr
    assert "ok 0" in result.stdout and "ok 1" in result.stdout


@needs_mpi
def test_parallel_runs_train_as_one_process(folder, reference, tmp_path, environment):
    """Data parallelism on 1, 2, 3 processes and the towers end with the single process's
    weights (dropout and augmentation on), and checkpoints move between the layouts."""
    env = environment
    # 3 processes (2 + 3 + 3 rows of each batch of 8) for epoch 1, then the towers resume
    a = tmp_path / "data3-then-towers"
    result = train_mpi(3, env, "--parallel", "data", *train_args(folder, a, epochs=1))
    assert "rows 0-2, 2-5, 5-8" in result.stdout
    result = train_mpi(2, env, "--parallel", "towers", "--resume", a, "--epochs", 2,
                       "--no-progress", "--num-workers", 0)
    assert "each process sends" in result.stdout and "resuming at epoch 2" in result.stdout
    assert_same_weights(a, reference, "3 data processes, then 2 towers")
    # the towers for epoch 1, then a single process resumes the towers' checkpoint
    b = tmp_path / "towers-then-single"
    train_mpi(2, env, "--parallel", "towers", *train_args(folder, b, epochs=1))
    assert train.main(["--resume", str(b), "--epochs", "2", "--no-progress",
                       "--num-workers", "0"]) == 0
    assert_same_weights(b, reference, "2 towers, then one process")
    for n in (2, 1):
        out = tmp_path / f"data{n}"
        train_mpi(n, env, "--parallel", "data", *train_args(folder, out, epochs=2))
        assert_same_weights(out, reference, f"{n} data processes")
        assert sorted(p.name for p in out.iterdir()) == ["best.npz", "curves.png", "last.npz",
                                                          "metrics.csv"]
    # rank 0's metrics: the whole batch's loss and accuracy, the whole validation set's
    with open(tmp_path / "data2" / "metrics.csv") as f, open(reference / "metrics.csv") as g:
        for row, expected in zip(csv.DictReader(f), csv.DictReader(g), strict=True):
            for key in ("train_loss", "train_top1", "val_loss", "val_top1", "val_top5"):
                if expected[key] == "":  # top-5 of 3 classes is left out (always 100%)
                    assert row[key] == "", key
                else:
                    assert abs(float(row[key]) - float(expected[key])) < 1e-4, key


@needs_mpi
def test_ctrl_c_on_one_rank_stops_all_after_the_same_step(folder, reference, tmp_path,
                                                          environment):
    """Ctrl-C reaching rank 1 alone, during step 2: both stop after step 2, rank 0 saves,
    exit 130; 3 processes then resume to the single process's weights."""
    out = tmp_path / "run"
    result, _ = mpiexec(2, os.path.join(HERE, "mpi_inject.py"), "sigint", 1, 2, "--parallel",
                        "data", *train_args(folder, out, epochs=2), env=environment)
    assert result.returncode == 130, result.stderr
    assert "interrupted at epoch 1, batch 2" in result.stdout
    _, meta = weights(out)
    assert (meta["epoch"], meta["batch"]) == (0, 2)
    train_mpi(3, environment, "--parallel", "data", "--resume", out, "--no-progress",
              "--num-workers", 0)
    assert_same_weights(out, reference, "interrupted on 2 processes, resumed on 3")


@needs_mpi
@pytest.mark.parametrize("kind, mode, status, message", [
    ("data", "data", 2, "error: rank 1 of 2: injected: train batch 1 has an unreadable image"),
    ("nan", "data", 1, "error: the loss became nan at epoch 3, batch 2"),
    ("nan", "towers", 1, "error: rank 1 of 2: the loss became nan at epoch 3, batch 2"),
    ("bug", "towers", 1, "error: rank 1 of 2: RuntimeError: injected bug in conv4 (during the "
                         "towers' forward pass); stopping every process"),
    ("kill", "data", 9, "BAD TERMINATION"),
])
def test_a_failing_rank_stops_the_job(kind, mode, status, message, reference, tmp_path,
                                      environment):
    """Rank 1 fails at step 2 of epoch 3 (bad data, a NaN loss seen by every rank or by rank 1
    alone, a bug between two exchanges, killed): the job stops within seconds, says why once,
    exits non-zero, and the checkpoint of epoch 2 is kept."""
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    result, seconds = mpiexec(2, os.path.join(HERE, "mpi_inject.py"), kind, 1, 2, "--resume",
                              out, "--epochs", 3, "--no-progress", "--num-workers", 0,
                              "--parallel", mode, env=environment)
    assert result.returncode == status, (result.stdout, result.stderr)
    assert seconds < 30
    output = result.stdout + result.stderr
    assert message in output
    if kind in ("data", "nan"):  # stopped at a control point: one line, from rank 0
        assert result.stderr.strip().splitlines() == [result.stderr.strip()], result.stderr
    assert "Traceback" not in output or kind == "bug"
    assert_same_weights(out, reference, "the checkpoint of the last good epoch")


@needs_mpi
@pytest.mark.parametrize("case", ["without mpiexec", "towers on 3", "mpiexec without --parallel",
                                  "mpi4py missing"])
def test_a_wrong_launch_is_one_line_and_exit_2(case, folder, tmp_path, environment):
    args = train_args(folder, tmp_path / "run", epochs=1)
    env = dict(environment)
    if case == "without mpiexec":
        result = subprocess.run([sys.executable, "-m", "tinyalex.train", "--parallel", "data",
                                 *args], capture_output=True, text=True, timeout=TIMEOUT,
                                env=env)
        expected = "start it with mpiexec"
    elif case == "towers on 3":
        result, _ = mpiexec(3, "-m", "tinyalex.train", "--parallel", "towers", *args, env=env)
        expected = "needs exactly 2 processes"
    elif case == "mpiexec without --parallel":
        result, _ = mpiexec(2, "-m", "tinyalex.train", *args, env=env)
        expected = "without --parallel"
    else:  # an mpi4py that cannot be imported shadows the real one
        (tmp_path / "shadow" / "mpi4py").mkdir(parents=True)
        (tmp_path / "shadow" / "mpi4py" / "__init__.py").write_text(
            "raise ImportError('No module named mpi4py')\n")
        env["PYTHONPATH"] = str(tmp_path / "shadow")
        result, _ = mpiexec(2, "-m", "tinyalex.train", "--parallel", "data", *args, env=env)
        expected = "needs mpi4py"
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
    assert not (tmp_path / "run").exists()


@needs_mpi
def test_the_gpu_paths_on_the_fake_cupy(folder, reference, tmp_path, environment):
    """The GPU code of both modes (NCCL calls with device pointers, staging on a data-parallel
    rank, the device tally) on tests/fake_cupy.py, NCCL's calls carried out by MPI
    (tests/mpi_fake_gpu.py): data parallelism for epoch 1, the towers resume for epoch 2."""
    env = dict(environment, TINYALEX_DEVICE="gpu")
    helper = os.path.join(HERE, "mpi_fake_gpu.py")
    out = tmp_path / "run"
    result, _ = mpiexec(2, helper, "--parallel", "data", *train_args(folder, out, epochs=1),
                        env=env)
    assert result.returncode == 0, result.stderr
    assert "on gpu" in result.stdout
    result, _ = mpiexec(2, helper, "--parallel", "towers", "--resume", out, "--epochs", 2,
                        "--no-progress", "--num-workers", 0, env=env)
    assert result.returncode == 0, result.stderr
    assert_same_weights(out, reference, "fake GPUs: data parallel, then towers")


# -- GPUs: NCCL through CuPy. Skipped (with the reason) without CuPy and a GPU; the tests that
# start two ranks need two GPUs (NCCL refuses two ranks on one GPU).

def gpu_count() -> int:
    import cupy

    return cupy.cuda.runtime.getDeviceCount()


@pytest.mark.gpu
@needs_mpi
@pytest.mark.skipif(getattr(sys.modules.get("cupy"), "FAKE", False),
                    reason="needs a real GPU and NCCL, not tests/fake_cupy.py")
@pytest.mark.parametrize("n, mode", [(1, "data"), (2, "data"), (2, "towers")])
def test_parallel_runs_on_gpus_train_as_one_gpu(n, mode, folder, tmp_path, environment):
    """NCCL all-reduce (data) and NCCL send/receive (towers) against one process on one GPU."""
    if gpu_count() < n:
        pytest.skip(f"needs {n} GPUs (NCCL refuses two ranks on one GPU); found {gpu_count()}")
    env = dict(environment, TINYALEX_DEVICE="gpu")
    single = tmp_path / "single"
    result = subprocess.run([sys.executable, "-m", "tinyalex.train",
                             *train_args(folder, single, epochs=2)], capture_output=True,
                            text=True, timeout=TIMEOUT, env=env)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "parallel"
    train_mpi(n, env, "--parallel", mode, *train_args(folder, out, epochs=2))
    assert_same_weights(out, single, f"{n} GPU processes ({mode})")


def test_a_rank_that_cannot_write_reports_one_line_not_a_traceback():
    from tinyalex import storage
    from tinyalex.distributed import launch

    full = storage.WriteError("runs/x/last.npz", OSError(5, "Input/output error"))
    assert launch.describe(full) == (None, str(full))
    room = storage.NotEnoughRoom("not enough room for this run's checkpoints")
    assert launch.describe(room) == (None, str(room))
    assert isinstance(room, launch.USER_ERRORS)           # bad settings: exit status 2
    assert not isinstance(full, launch.USER_ERRORS)       # a fault at run time: exit status 1
    try:
        {}["bug"]
    except KeyError as bug:
        trace, line = launch.describe(bug)
    assert "Traceback" in trace and line == "KeyError: 'bug'"       # a bug shows where
