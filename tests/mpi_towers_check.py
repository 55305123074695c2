"""Run under ``mpiexec -n 2``: the two towers compute the single-process grouped network.

    mpiexec -n 2 python tests/mpi_towers_check.py [textbook|fast]

On each rank: a whole AlexNet (mini shapes, 3 classes so that fc8 splits unevenly, a large
LRN alpha so that the seam terms are far above rounding, float64) and its TowerNet. Forward
with dropout on (the same step's masks), backward from the same dL/dlogits: the logits must
equal the whole network's and each rank's gradients its blocks of the whole network's. Also
checks that the bytes sent equal ``volume.tower_bytes``, and that the seam matters (LRN per
tower would differ). Prints "ok <rank>" and exits 0, or raises.
"""

import sys

import numpy as np
from mpi4py import MPI

from tinyalex.distributed import volume
from tinyalex.distributed.comm import Comm
from tinyalex.distributed.towers import TowerNet
from tinyalex.layers import lrn_forward
from tinyalex.model import PRESETS, AlexNet


def main(impl: str) -> None:
    comm = Comm(MPI.COMM_WORLD)
    config = PRESETS["mini"].replace(lrn_alpha=0.5, num_classes=3)
    whole = AlexNet(config, seed=3, dtype=np.float64, impl=impl)
    whole.dropout_step = 5
    towers = TowerNet(whole, comm)
    x = np.random.default_rng(1).standard_normal((6, 3, 63, 63)) * 64  # the loader's units
    labels = np.array([0, 1, 2, 2, 1, 0])

    logits_whole = whole.forward(x, train=True, keep_activations=True)
    _, dlogits = whole.layers.softmax_cross_entropy(logits_whole, labels)
    grads_whole = whole.backward(dlogits)
    logits = towers.forward(x, train=True)
    grads = towers.backward(dlogits)

    np.testing.assert_allclose(logits, logits_whole, rtol=1e-10, atol=1e-12)
    for name, g in grads.items():
        full = grads_whole[name]
        scale = np.abs(full).max()
        np.testing.assert_allclose(g, towers.take(name, full), rtol=1e-9, atol=1e-11 * scale,
                                   err_msg=f"rank {comm.rank}: {name}")
    assert towers.dropout_step == whole.dropout_step == 6
    sent = comm.sent_bytes
    expected = volume.tower_bytes(config, len(x), comm.rank, itemsize=8)
    assert sent == expected, (sent, expected)

    # The seam matters here: normalising each tower's half alone differs near the middle.
    relu1 = whole.activations["relu1"]
    C = relu1.shape[1] // 2
    apart = np.concatenate([lrn_forward(relu1[:, :C], **whole.steps[2].options)[0],
                            lrn_forward(relu1[:, C:], **whole.steps[2].options)[0]], axis=1)
    seam_gap = np.abs(apart - whole.activations["norm1"])[:, C - 2:C + 2].max()
    assert seam_gap > 1e-3 * np.abs(whole.activations["norm1"]).max(), seam_gap
    print(f"ok {comm.rank}: logits and {len(grads)} gradients equal; "
          f"sent {sent} bytes", flush=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "fast")
