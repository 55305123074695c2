"""The host's side of a GPU training step: batches in, running loss out, never waiting for the GPU.

A GPU computes only while the host keeps its queue full. The training loop therefore never
reads a value back inside a step; what crosses between host and GPU per step is:

    host -> GPU   the batch's uint8 images (B, S, S, 3) -- a third of the bytes of the float32
                  crops -- its labels and its crop windows and lighting offsets, from pinned
                  (page-locked) memory, asynchronously, on a stream of their own; the crop,
                  mirror, mean subtraction and PCA lighting then run on the GPU
                  (kernels/augment.cu, the same numbers as the CPU loader's);
    GPU -> host   nothing; the loss and the count of correct top-1 answers stay on the GPU as
                  0-d arrays, and ``tinyalex.run.Tally`` reads those of many steps in one copy.

The labels and windows are checked on the host before they are copied (a check on the GPU
would have to be read back). The dropout masks are drawn on the GPU as well
(kernels/philox.cu, see ``tinyalex.noise``).

    for x, y in gpu_batches(loader, start, num_classes):   # x, y on the GPU
        loss, correct = step(x, y)                          # 0-d GPU arrays, nothing read
        tally.add(loss, correct, len(y), batch)             # tinyalex.run.Tally: a read
                                                            # every READ_EVERY steps

Double buffering: two slots, each a set of pinned host buffers and device buffers. Batch k
goes through slot k mod 2: the host waits until that slot's previous copy has left its pinned
buffers (an event), fills them, and queues the copy on the copy stream after the previous
crop kernel of the slot has read its device buffers (another event); the compute stream waits
for the copy (a third) before the crop kernel. So the copy of batch k+1 overlaps the training
step of batch k, and the host runs at most two batches ahead of the GPU.
"""

from __future__ import annotations

import numpy as np

from tinyalex.cuda import ops


def check_parts(parts, num_classes: int, image_size: int, crop_size: int) -> None:
    """ValueError (one line) unless a batch's labels and windows are in range: on the host."""
    labels = np.asarray(parts.labels)
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"batch labels must be in [0, {num_classes}) for {num_classes} "
                         f"classes, got values from {labels.min()} to {labels.max()}")
    far = image_size - crop_size
    for name, corner in (("top", parts.top), ("left", parts.left)):
        if len(corner) and (np.min(corner) < 0 or np.max(corner) > far):
            raise ValueError(f"batch crop windows: {name} must be in [0, {far}] for {crop_size} "
                             f"crops of {image_size}-pixel images")


class _Slot:
    """One set of pinned host buffers, their device twins, and the two events that guard them."""

    def __init__(self, cupy, shapes: dict):
        self.host = {name: _pinned_empty(cupy, shape, dtype)
                     for name, (shape, dtype) in shapes.items()}
        self.device = {name: cupy.empty(shape, dtype) for name, (shape, dtype) in shapes.items()}
        self.copied = None  # event: the copy out of self.host has finished
        self.consumed = None  # event: the GPU has finished reading self.device


def _pinned_empty(cupy, shape, dtype) -> np.ndarray:
    """A NumPy array in page-locked host memory (what an asynchronous copy needs)."""
    dtype = np.dtype(dtype)
    count = int(np.prod(shape))
    memory = cupy.cuda.alloc_pinned_memory(max(1, count) * dtype.itemsize)
    return np.ndarray(shape, dtype, buffer=memory)


class GPUFeed:
    """Training batches to the GPU as uint8, assembled there: ``feed(parts) -> (x, labels)``.

    mean: float32 (3, S, S), the training set's mean image; crop_size: the network's input
    side; num_classes: for the label check. ``parts`` is a ``tinyalex.data.loader.BatchParts``;
    x is float32 (B, 3, crop, crop) and labels int64 (B,), both CuPy arrays, equal to the
    loader's own (x, y) for the same batch.
    """

    def __init__(self, mean, crop_size: int, num_classes: int, slots: int = 2):
        import cupy

        self.cupy = cupy
        self.kernels = ops.for_device("gpu")
        self.mean = cupy.asarray(np.ascontiguousarray(mean, dtype=np.float32))  # (3, S, S)
        self.image_size = self.mean.shape[1]
        self.crop_size, self.num_classes = int(crop_size), int(num_classes)
        self.copy_stream = cupy.cuda.Stream(non_blocking=True)
        self.slot_count = slots
        self.slots: list[_Slot] = []
        self.turn = 0

    def _slot(self, batch_size: int) -> _Slot:
        """The next slot, with buffers for at least ``batch_size`` images."""
        if not self.slots or self.slots[0].host["labels"].shape[0] < batch_size:
            S = self.image_size
            shapes = {"images": ((batch_size, S, S, 3), np.uint8),
                      "windows": ((batch_size, 3), np.int32),  # top, left, flip
                      "lighting": ((batch_size, 3), np.float32),
                      "labels": ((batch_size,), np.int64)}
            self.synchronize()  # old buffers may still be in use: let them finish first
            self.slots = [_Slot(self.cupy, shapes) for _ in range(self.slot_count)]
        slot = self.slots[self.turn % len(self.slots)]
        self.turn += 1
        return slot

    def synchronize(self) -> None:
        """Wait until every queued copy has finished (the buffers are free)."""
        self.copy_stream.synchronize()

    def __call__(self, parts):
        check_parts(parts, self.num_classes, self.image_size, self.crop_size)
        n = len(parts.labels)
        slot = self._slot(n)
        if slot.copied is not None:
            slot.copied.synchronize()  # its last copy has left the pinned buffers
        host = {name: buffer[:n] for name, buffer in slot.host.items()}
        np.copyto(host["images"], parts.images)
        host["windows"][:, 0], host["windows"][:, 1] = parts.top, parts.left
        host["windows"][:, 2] = parts.flip
        if parts.lighting is None:
            host["lighting"].fill(0)
        else:
            np.copyto(host["lighting"], parts.lighting)
        np.copyto(host["labels"], parts.labels)
        device = {name: buffer[:n] for name, buffer in slot.device.items()}
        if slot.consumed is not None:
            self.copy_stream.wait_event(slot.consumed)  # the last crop kernel read device[...]
        for name in host:
            device[name].set(host[name], stream=self.copy_stream)
        slot.copied = self.copy_stream.record()
        compute = self.cupy.cuda.get_current_stream()
        compute.wait_event(slot.copied)
        x = self.kernels.crop_batch(device["images"], self.mean, self.crop_size,
                                    device["windows"], device["lighting"])
        labels = device["labels"].copy()  # the step's own copy: the slot is refilled soon
        slot.consumed = compute.record()
        return x, labels


def gpu_batches(loader, start: int, num_classes: int):
    """The batches of ``loader`` from index ``start`` on, as CuPy arrays: copied as uint8 and
    assembled on the GPU (``GPUFeed``); the loader's workers only gather images and draw the
    windows. Equal to ``loader.iterate(start)``'s (x, y)."""
    feed = GPUFeed(loader.mean, loader.crop_size, num_classes)
    for parts in loader.iterate(start, parts=True):
        yield feed(parts)
