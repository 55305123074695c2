"""The GPU-only Python paths, run in CI on tests/fake_cupy.py (NumPy dressed as CuPy).

What runs here exactly as on a GPU: the CUDA layers on "CuPy" arrays (the real kernels through
the emulator), AlexNet.to("gpu") with dropout drawn by kernels/philox.cu, tinyalex.cuda.staging
(pinned buffers, a deferred copy stream, events), the running loss kept on the device, and
``python -m tinyalex.train --device gpu``. What the fake adds: it counts every host read of
device data and every byte uploaded, so "a training step reads nothing back and uploads
uint8 images only" is a test, not a hope.
"""

import numpy as np
import pytest
from conftest import make_tiny_folder
from kernel_cases import rand, scaled_close

from tinyalex import data, layers, run
from tinyalex.cuda import staging
from tinyalex.model import AlexNet
from tinyalex.optim import SGD


def image_set(n=23, size=15, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    return data.ImageSet(images, rng.integers(0, classes, n), [f"c{i}" for i in range(classes)])


def test_the_fake_defers_copies_until_someone_waits(fake_cupy):
    """The fake's own contract: a non-blocking stream's copy lands only when waited for."""
    stream = fake_cupy.cuda.Stream(non_blocking=True)
    host = np.arange(4, dtype=np.float32)
    device = fake_cupy.zeros(4, dtype=np.float32)
    device.set(host, stream=stream)
    event = stream.record()
    host[:] = 7  # refilled before the copy ran: the copy will read the new values
    assert (device.view(np.ndarray) == 0).all()  # not yet copied
    fake_cupy.cuda.get_current_stream().wait_event(event)
    np.testing.assert_array_equal(device.get(), [7, 7, 7, 7])
    with pytest.raises(TypeError, match="host"):
        device + host  # noqa: B018 -- CuPy refuses NumPy operands too
    assert np.isnan(fake_cupy.empty(3, np.float32).get()).all()  # unwritten memory is NaN


def test_cuda_layers_on_device_arrays_equal_the_textbook(fake_cupy):
    cp = fake_cupy
    x, w, b = rand(2, 4, 9, 9, seed=1), rand(6, 2, 5, 5, seed=2), rand(6, seed=3)
    out_ref, cache_ref = layers.conv_forward(x, w, b, 1, 2, 2)
    from tinyalex.cuda import layers as cuda_layers

    out, cache = cuda_layers.conv_forward(cp.asarray(x), cp.asarray(w), cp.asarray(b), 1, 2, 2)
    assert isinstance(out, cp.ndarray)
    np.testing.assert_allclose(out.get(), out_ref, rtol=1e-5, atol=1e-5)
    dout = rand(*out_ref.shape, seed=4)
    for got, ref in zip(cuda_layers.conv_backward(cp.asarray(dout), cache),
                        layers.conv_backward(dout, cache_ref), strict=True):
        np.testing.assert_allclose(got.get(), ref, rtol=1e-4, atol=1e-4)
    logits, labels = rand(5, 7, seed=5), np.array([0, 6, 3, 3, 1])
    loss_ref, d_ref = layers.softmax_cross_entropy(logits, labels)
    for given in (labels, cp.asarray(labels)):  # checked on the host / on the device
        with cp.counting() as count:
            loss, d = cuda_layers.softmax_cross_entropy(cp.asarray(logits), given)
        assert count.reads == 0
        np.testing.assert_allclose(loss.get(), loss_ref, rtol=1e-6)
        np.testing.assert_allclose(d.get(), d_ref, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 7\)"):
        cuda_layers.softmax_cross_entropy(cp.asarray(logits), labels + 1)
    loss, _ = cuda_layers.softmax_cross_entropy(cp.asarray(logits), cp.asarray(labels + 1))
    assert np.isnan(loss.get())  # on the device: no read, a NaN loss instead of an error


def test_a_training_step_on_the_gpu_reads_nothing_and_equals_numpy(fake_cupy):
    cp = fake_cupy
    rng = np.random.default_rng(0)
    x = (64 * rng.standard_normal((4, 3, 63, 63))).astype(np.float32)
    labels = rng.integers(0, 10, 4)
    net = AlexNet("mini", seed=0).to("gpu")
    assert net.impl == "cuda" and net.device == "gpu"
    ref = AlexNet("mini", seed=0, impl="textbook")
    x_dev, labels_dev = cp.asarray(x), cp.asarray(labels)
    opt, opt_ref = SGD(net.params, 0.01, impl=net.impl), SGD(ref.params, 0.01)
    with cp.counting() as count:
        for _ in range(2):
            loss, logits, dlogits = net.loss(x_dev, labels_dev)
            opt.step(net.params, net.backward(dlogits))
    assert count.reads == 0, "a GPU training step must not wait for a value"
    assert count.uploads == 0, "dropout masks are drawn on the GPU: nothing is uploaded"
    for _ in range(2):
        loss_ref, logits_ref, dlogits_ref = ref.loss(x, labels)
        opt_ref.step(ref.params, ref.backward(dlogits_ref))
    assert abs(float(loss) - float(loss_ref)) < 1e-5
    assert scaled_close(logits.get(), logits_ref, 1e-5)[0]
    for name, value in ref.params.items():  # same dropout masks, so the same weights
        ok, error = scaled_close(net.params[name].get(), value, 1e-5)
        assert ok, f"{name} differs by {error}"


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_staged_batches_equal_the_loaders_and_upload_uint8(fake_cupy, train):
    cp = fake_cupy
    images = image_set()
    stats = data.compute_stats(images)
    loader = data.BatchLoader(images, 6, 11, stats, train=train, seed=2)
    expected = list(loader.iterate())
    with cp.counting() as count:
        staged = list(staging.gpu_batches(loader, 0, num_classes=4))
    assert count.reads == 0
    per_image = 15 * 15 * 3 + 3 * 4 + 3 * 4 + 8  # uint8 pixels, window, lighting, label
    assert count.uploads == 23 * per_image + 3 * 15 * 15 * 4  # + the mean image, once
    assert len(staged) == len(expected) == 4
    for (x, y), (x_ref, y_ref) in zip(staged, expected, strict=True):
        assert isinstance(x, cp.ndarray) and isinstance(y, cp.ndarray)
        np.testing.assert_array_equal(x.get().view(np.uint32), x_ref.view(np.uint32))
        np.testing.assert_array_equal(y.get(), y_ref)
    # from the middle of an epoch, as --resume does
    (x, _), = list(staging.gpu_batches(loader, 3, num_classes=4))
    np.testing.assert_array_equal(x.get(), expected[3][0])


def test_staging_checks_labels_on_the_host_before_any_copy(fake_cupy):
    loader = data.BatchLoader(image_set(classes=4), 6, 11, data.compute_stats(image_set()))
    with fake_cupy.counting() as count, pytest.raises(ValueError, match=r"in \[0, 3\)"):
        list(staging.gpu_batches(loader, 0, num_classes=3))  # labels go up to 3
    assert count.uploads == 3 * 15 * 15 * 4  # the mean image only: no batch left the host


def test_the_cpu_path_is_the_loader_itself():
    loader = data.BatchLoader(image_set(), 6, 11, data.compute_stats(image_set()), seed=1)
    for (x, y), (x_ref, y_ref) in zip(run.batches(loader, 1, "cpu", 4),
                                      list(loader.iterate(1)), strict=True):
        np.testing.assert_array_equal(x, x_ref)
        np.testing.assert_array_equal(y, y_ref)


def test_tally_reads_the_gpu_once_per_interval_and_adds_like_the_cpu(fake_cupy):
    cp = fake_cupy
    rng = np.random.default_rng(3)
    losses = rng.random(120).astype(np.float32) * 3
    corrects = rng.integers(0, 9, 120)
    checked = []
    sums_gpu = {"loss": 0.0, "correct": 0, "seen": 0}
    tally = run.Tally(sums_gpu, lambda loss, batch: checked.append(batch), every=50)
    with cp.counting() as count:
        fresh = [tally.add(cp.asarray(l), cp.asarray(c), 8, i + 1)
                 for i, (l, c) in enumerate(zip(losses, corrects, strict=True))]
    assert count.reads == 2 and fresh.count(True) == 2 and fresh[49] and fresh[99]
    tally.read()
    assert checked == list(range(1, 121))  # every step's loss was checked, in order
    sums_cpu = {"loss": 0.0, "correct": 0, "seen": 0}
    cpu = run.Tally(sums_cpu, lambda loss, batch: None)
    assert all(cpu.add(l, c, 8, i + 1) for i, (l, c) in enumerate(zip(losses, corrects,
                                                                       strict=True)))
    assert sums_gpu == sums_cpu and sums_cpu["seen"] == 960

    def check(loss, batch):
        if not np.isfinite(loss):
            raise FloatingPointError(f"batch {batch}")

    tally = run.Tally({"loss": 0.0, "correct": 0, "seen": 0}, check, every=50)
    losses[72] = np.nan
    with pytest.raises(FloatingPointError, match="batch 73"):
        for i, (l, c) in enumerate(zip(losses, corrects, strict=True)):
            tally.add(cp.asarray(l), cp.asarray(c), 8, i + 1)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    """train/ and val/ with three classes of 72x72 images (conftest.make_tiny_folder)."""
    return make_tiny_folder(tmp_path_factory.mktemp("tiny-gpu"), n_train=8, n_val=2)


def test_train_on_the_gpu_equals_the_cpu_and_resumes_exactly(fake_cupy, tiny_folder, tmp_path,
                                                           monkeypatch):
    """python -m tinyalex.train --device gpu: staged batches, device tally, GPU dropout.

    Against the CPU loop, and --resume after an epoch gives the uninterrupted run's weights.
    """
    from tinyalex import checkpoint, train

    monkeypatch.setenv("TINYALEX_CACHE", str(tmp_path / "cache"))

    def run(out, device, *extra):
        args = ["--data", str(tiny_folder), "--out", str(tmp_path / out), "--batch-size", "8",
                "--no-progress", "--num-workers", "0", "--device", device, *extra]
        assert train.main(args) == 0
        return checkpoint.load(tmp_path / out / "last.npz")

    (cpu, cpu_meta), (gpu, gpu_meta) = run("cpu", "cpu", "--epochs", "2"), run("gpu", "gpu",
                                                                             "--epochs", "2")
    assert gpu_meta["dropout_step"] == cpu_meta["dropout_step"] == 6  # 2 epochs of 3 batches
    for key in ("train_loss", "train_top1"):  # the tally's sums match the CPU loop's
        assert abs(gpu_meta["history"][-1][key] - cpu_meta["history"][-1][key]) < 1e-4, key
    for name, value in cpu["param"].items():  # fast path vs kernels: rounding only
        ok, error = scaled_close(gpu["param"][name], value, 1e-4)
        assert ok, f"{name} differs by {error}"
    run("part", "gpu", "--epochs", "1")
    assert train.main(["--resume", str(tmp_path / "part"), "--epochs", "2", "--no-progress",
                       "--num-workers", "0", "--device", "gpu"]) == 0
    resumed, _ = checkpoint.load(tmp_path / "part" / "last.npz")
    for name, value in gpu["param"].items():
        np.testing.assert_array_equal(resumed["param"][name], value, err_msg=name)



def test_train_runs_the_network_and_its_update_on_the_gpu_kernels(fake_cupy, tiny_folder,
                                                                    tmp_path, monkeypatch):
    from tinyalex import train
    from tinyalex.cuda import layers as cuda_layers

    monkeypatch.setenv("TINYALEX_CACHE", str(tmp_path / "cache"))
    run = train.Run(train.parse_args(["--data", str(tiny_folder), "--device", "gpu"]))
    assert run.net.impl == "cuda" and isinstance(run.net.params["fc6.w"], fake_cupy.ndarray)
    assert run.opt._update is cuda_layers.sgd_update  # one kernel per parameter, not chunks
    assert all(isinstance(v, fake_cupy.ndarray) for v in run.opt.velocity.values())


def test_a_nan_loss_on_the_gpu_stops_the_run_at_the_next_read(fake_cupy, tiny_folder, tmp_path,
                                                              monkeypatch, capsys):
    """The loss is read every few steps on a GPU; the message still names the exact batch."""
    from tinyalex import checkpoint, train

    monkeypatch.setenv("TINYALEX_CACHE", str(tmp_path / "cache"))
    real_loss, calls = AlexNet.loss, []

    def loss_that_explodes(self, x, labels, train=True):
        loss, logits, dlogits = real_loss(self, x, labels, train)
        calls.append(1)
        return (loss * np.float32("nan") if len(calls) == 5 else loss), logits, dlogits

    monkeypatch.setattr(AlexNet, "loss", loss_that_explodes)
    out = tmp_path / "run"
    assert train.main(["--data", str(tiny_folder), "--out", str(out), "--batch-size", "8",
                       "--epochs", "2", "--no-progress", "--num-workers", "0",
                       "--device", "gpu"]) == 1
    assert "loss became nan at epoch 2, batch 2" in capsys.readouterr().err
    _, meta = checkpoint.load(out / "last.npz")
    assert meta["epoch"] == 1  # the last good checkpoint, not the NaN weights
