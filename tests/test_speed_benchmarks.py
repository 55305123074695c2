"""benchmarks/layers.py and benchmarks/train_step.py run, on a tiny batch of the mini net, and
print the figures they promise (parsed, not just looked for)."""

import re
import subprocess
import sys
from pathlib import Path

from tinyalex.model import AlexNet

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def run(script, *args):
    result = subprocess.run([sys.executable, str(BENCHMARKS / script), *args],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result.stdout


def test_layers_benchmark_times_every_layer_of_every_implementation():
    out = run("layers.py", "--preset", "mini", "--batch", "2", "--repeats", "1",
              "--impl", "textbook", "fast")
    steps = [step.name for step in AlexNet("mini").steps]
    for impl in ("textbook", "fast"):
        table = out[out.index(f"implementation {impl}"):]
        for name in steps:  # a row per step: name, output shape, forward ms, backward ms
            row = re.search(rf"^{name}\s+[\dx ]+?\s+(\d+\.\d)\s+(\d+\.\d)$", table, re.M)
            assert row, f"{impl}: no row for {name}\n{table}"
        total = re.search(r"= (\d+) ms, ([\d.]+) images/s", table)
        assert total and float(total.group(2)) > 0, table


def test_train_step_benchmark_without_pytorch():
    out = run("train_step.py", "--preset", "mini", "--batch", "2", "--steps", "1",
              "--no-torch", "--peak-size", "256")
    rows = re.findall(r"^tinyalex\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)%", out, re.M)
    assert len(rows) == 2, out  # one and two threads
    for row in rows:
        seconds, images_per_s, gflops, _ = (float(v) for v in row)
        # images/s is batch / median seconds; the median is printed to 0.001 s (and a 5 ms
        # step rounds by up to 10%), images/s to 0.1: the printed values agree to that
        assert seconds > 0 and abs(2 / images_per_s - seconds) <= 0.0005 + 1e-6, row
        assert gflops > 0
    # each thread count ran in its own process, with its thread count and a passive PyTorch
    for threads in (1, 2):
        section = re.search(rf"^{threads} threads?: BLAS (.*); float32 product peak (\d+) "
                            r"GFLOP/s; load average ([\d.]+) -> ([\d.]+)", out, re.M)
        assert section, out
        assert re.search(rf"^  tinyalex {threads} thread\(s\), compiled kernels (on|off); "
                         r"OMP_WAIT_POLICY=PASSIVE$", out, re.M), out
    assert re.search(r"load average [\d.]+ \(1 min\) before the run: (quiet|WARNING: not quiet)",
                     out), out
    peak = re.search(r"^tinyalex\s+peak\s+(\d+) MiB", out, re.M)
    assert peak and int(peak.group(1)) > 20, out  # an interpreter with NumPy is never smaller


def test_train_step_benchmark_busy_processes_come_and_go():
    out = run("train_step.py", "--preset", "mini", "--batch", "2", "--steps", "1", "--threads",
              "1", "--busy", "1", "--no-torch", "--no-memory", "--peak-size", "128")
    started = re.search(r"^--busy 1: started 1 busy process\(es\) \(pids? ([\d ]+)\)", out,
                        re.M)
    assert started, out
    for pid in started.group(1).split():  # ended (and reaped) before the script returned
        assert not Path(f"/proc/{pid}").exists(), f"busy process {pid} is still running"
