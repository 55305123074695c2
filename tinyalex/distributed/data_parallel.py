"""Data parallelism: N processes, each training on its share of every batch, gradients summed.

Every rank holds the whole network (the same weights: the same --seed, or the same
checkpoint) and walks the same global batches, the ones a single process would build (same
images, same order, same crops, flips and lighting: ``tinyalex.data.loader``). Of each batch
of B images, rank r trains on rows ``share(B, r, N)`` -- consecutive blocks whose sizes
differ by at most one, so 64 rows over 3 ranks are 21, 21 and 22 -- and then

    what crosses, per step     every gradient, once: an all-reduce (sum) of one buffer
                               holding all P parameters' gradients (+ the loss and the count
                               of correct answers), P = 60,965,224 for the paper net:
                               ~244 MB (float32) per rank per step, at any batch size
    why it is the same step    the single process's loss is the mean over the B rows, so its
                               gradient is  (1/B) sum_rows d loss_row / d w.  Rank r computes
                               the mean over its n_r rows and rescales by n_r / B (on
                               dL/dlogits, before the backward pass), so the sum over the
                               ranks is exactly that gradient, up to the order of the
                               floating-point additions
    dropout                    the masks are a function of (seed, step, layer, *global*
                               sample index, unit) (``tinyalex.noise``): rank r passes the
                               index of its first row (``AlexNet.sample_offset``) and draws
                               the masks the single process draws for those rows

After the all-reduce every rank applies the same SGD update to the same weights, so the
weights stay identical on every rank without ever being sent. A checkpoint is the single
process's (rank 0 writes it), so a run may be resumed with another number of processes,
or none. (Section 3.2 splits the *network* over two GPUs instead: ``towers.py``. Krizhevsky's
"One weird trick for parallelizing convolutional neural networks", 2014, combines both:
data parallelism for the convolutions, which have few weights and most of the arithmetic,
model parallelism for the fully connected layers, which have most of the weights;
``python -m tinyalex.distributed`` prints the numbers.)

The validation pass is shared the same way: rank r evaluates its block of the validation
images and four totals are summed.
"""

from __future__ import annotations

import numpy as np

from tinyalex.backend import get_array_module, to_device
from tinyalex.data import ImageSet
from tinyalex.data.augment import add_lighting, crop_batch
from tinyalex.distributed.parallel_run import ParallelRun
from tinyalex.distributed.placement import share
from tinyalex.metrics import evaluate


class RowShare:
    """One rank's view of a ``BatchLoader``: the same batches, cropped for its rows only.

    ``iterate(start)`` yields (x, y): x float32 (n_r, 3, crop, crop), this rank's rows of the
    batch, and y int64 (B,), the labels of the *whole* batch (the training loop counts the
    images of the global batch; the step takes its rows from y). The whole batch's windows,
    flips and lighting are drawn as the single-process loader draws them (they are drawn per
    batch), and only this rank's rows are cropped. ``iterate(start, parts=True)`` (the GPU
    path) yields the loader's whole uint8 batches: they are cropped on the GPU, a negligible
    cost, and the step takes its rows there.
    """

    def __init__(self, loader, rank: int, size: int):
        self.loader, self.rank, self.size = loader, rank, size
        self.mean, self.crop_size = loader.mean, loader.crop_size  # what the GPU feed reads

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        return self.iterate()

    def iterate(self, start: int = 0, parts: bool = False):
        for batch in self.loader.iterate(start, parts=True):  # workers: read + draw, uint8
            if parts:
                yield batch
                continue
            rows = slice(*share(len(batch.labels), self.rank, self.size))
            x = crop_batch(batch.images[rows], self.mean, self.crop_size, batch.top[rows],
                           batch.left[rows], batch.flip[rows])  # (n_r, 3, crop, crop)
            if batch.lighting is not None:
                add_lighting(x, batch.lighting[rows])
            yield x, batch.labels


class GradientBucket:
    """All gradients in one flat buffer, so that one all-reduce carries them (plus 2 totals).

    Layout: the parameters in ``params`` order, each flattened (C order), then the batch's
    loss sum and its count of correct top-1 answers. Allocated once, on the parameters'
    device; ``unpack`` returns views into it, valid until the next ``pack``.
    """

    def __init__(self, params: dict):
        first = next(iter(params.values()))
        xp = get_array_module(first)
        self.shapes = {name: p.shape for name, p in params.items()}
        self.offsets, total = {}, 0
        for name, p in params.items():
            self.offsets[name] = total
            total += p.size
        self.buffer = xp.empty(total + 2, dtype=first.dtype)  # (P + 2,)
        self._params = params

    def zeros(self) -> dict:
        """Zero gradients: the share of a rank that has no rows of a (small, last) batch."""
        xp = get_array_module(self.buffer)
        return {name: xp.zeros_like(p) for name, p in self._params.items()}

    def pack(self, grads: dict, loss_sum, correct):
        for name, shape in self.shapes.items():
            start = self.offsets[name]
            self.buffer[start:start + int(np.prod(shape))] = grads[name].ravel()
        self.buffer[-2], self.buffer[-1] = loss_sum, correct
        return self.buffer

    def unpack(self):
        """({name: summed gradient}, (loss sum, correct) as a fresh 2-array)."""
        grads = {name: self.buffer[start:start + int(np.prod(self.shapes[name]))]
                 .reshape(self.shapes[name]) for name, start in self.offsets.items()}
        return grads, self.buffer[-2:].copy()


def summed_gradients(net, comm, bucket: GradientBucket, x, y):
    """The gradients of the whole batch's mean loss, from this rank's rows: the step's heart.

    x: this rank's rows of the batch (n_r, C, H, W); y: the labels of the whole batch (B,).
    Returns (gradients, mean loss over the B rows, correct top-1 count of the B rows), the
    same on every rank; the gradients are views into ``bucket`` (valid until its next use).
    """
    B = len(y)
    lo, hi = share(B, comm.rank, comm.size)
    y = y[lo:hi]
    net.sample_offset = lo  # global index of row 0: the single process's dropout masks
    if hi > lo:
        loss, logits, dlogits = net.loss(x, y, train=True)
        dlogits *= dlogits.dtype.type((hi - lo) / B)  # mean over n_r rows -> its share of B
        grads = net.backward(dlogits)
        loss_sum, correct = loss * (hi - lo), (logits.argmax(axis=1) == y).sum()
    else:  # fewer rows than ranks (a last, small batch): nothing to compute
        grads, loss_sum, correct = bucket.zeros(), 0, 0
        net.dropout_step += 1
    buffer = bucket.pack(grads, loss_sum, correct)
    with comm.together("the gradient all-reduce"):
        comm.allreduce_sum(buffer)
    grads, (loss_sum, correct) = bucket.unpack()
    return grads, loss_sum / B, correct


class DataParallelRun(ParallelRun):
    """``tinyalex.run.Run`` with data parallelism: each rank trains on its rows of every batch."""

    def __init__(self, args, resume=None, *, comm):
        super().__init__(args, resume, comm=comm)
        self.bucket = GradientBucket(self.net.params)
        P, batch = self.net.num_params(), self.hp["batch_size"]
        rows = ", ".join(f"{lo}-{hi}" for lo, hi in (share(batch, r, comm.size)
                                                     for r in range(comm.size)))
        sent = 2 * (comm.size - 1) * self.bucket.buffer.nbytes / comm.size
        print(f"parallel: data over {comm.size} processes; rows {rows} of each batch of "
              f"{batch}; each process sends {sent / 1e6:.1f} MB per step (the all-reduce of "
              f"{P:,} gradients)", flush=True)

    def loader(self, epoch: int):
        return RowShare(super().loader(epoch), self.comm.rank, self.comm.size)

    def train_step(self, x, y):
        """One SGD step on this rank's rows of the batch whose labels are y (all B of them);
        returns the whole batch's (mean loss, correct count), the same on every rank."""
        B = len(y)
        lo, hi = share(B, self.comm.rank, self.comm.size)
        x, y = to_device(x, self.device), to_device(y, self.device)
        if len(x) == B and hi - lo != B:
            x = x[lo:hi]  # the GPU feed cropped the whole batch: keep this rank's rows
        grads, loss, correct = summed_gradients(self.net, self.comm, self.bucket, x, y)
        if self.device == "cpu":
            self.check_loss(float(loss), self.batch + 1)
        self.opt.step(self.net.params, grads)
        return loss, correct

    def evaluate(self) -> dict:
        """Each rank evaluates its block of the validation images; the totals are summed."""
        lo, hi = share(len(self.val_set), self.comm.rank, self.comm.size)
        block = ImageSet(self.val_set.images[lo:hi], self.val_set.labels[lo:hi],
                         self.val_set.classes, name=self.val_set.name)
        mine = evaluate(self.net, block, self.stats, num_workers=self.settings.num_workers)
        n = hi - lo
        totals = np.array([mine["loss"] * n, mine["top1"] * n, mine["top5"] * n, n])
        with self.comm.together("the validation totals"):
            self.comm.world.Allreduce(self.comm.MPI.IN_PLACE, totals, op=self.comm.MPI.SUM)
        count = max(totals[3], 1.0)
        return {"loss": float(totals[0] / count), "top1": float(np.round(totals[1]) / count),
                "top5": float(np.round(totals[2]) / count), "count": int(totals[3])}

    def save(self, path) -> None:
        """Rank 0 writes the checkpoint (every rank holds the same weights)."""
        if self.is_writer:
            super().save(path)
