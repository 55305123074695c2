"""The course: the lessons in reading order, each a notebook in ``notebooks/``.

``tests/test_notebooks.py`` runs every notebook on a Jupyter kernel and checks each lesson
listed here (prose before code, the paper's sections cited in its title cell, at least
three self-checking exercises); the README lists the same lessons.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Lesson:
    number: int
    file: str  # in notebooks/
    title: str
    sections: tuple[str, ...]  # the paper's sections it covers, cited in its first cell
    summary: str  # one line for the README


COURSE: tuple[Lesson, ...] = (
    Lesson(1, "01_tour.ipynb", "A tour of AlexNet", ("3.5",),
           "the paper preset, a photograph through all eight layers, the per-layer table, "
           "the 60,965,224 parameters derived layer by layer"),
    Lesson(2, "02_convolution.ipynb", "Convolution", ("3.2", "3.5"),
           "loops first, then im2col and one matrix product, the backward pass derived, "
           "grouped convolution as the two GPUs"),
    Lesson(3, "03_relu_vs_tanh.ipynb", "ReLU against tanh", ("3.1",),
           "figure 1 redone: the same small net trained with each, steps to a fixed training "
           "error, the 'six times faster' measured"),
    Lesson(4, "04_local_response_normalization.ipynb", "Local response normalization",
           ("3.3",),
           "the formula and its backward pass, the three alpha conventions, a gradient check "
           "with a large alpha, an ablation"),
    Lesson(5, "05_overlapping_pooling.ipynb", "Overlapping pooling", ("3.4",),
           "windows drawn, the gradient's routing, overlapping against non-overlapping"),
    Lesson(6, "06_dropout_and_the_classifier.ipynb", "Dropout, the classifier and its loss",
           ("4.2", "5"),
           "inverted dropout against the paper's test-time halving, fully connected layers, "
           "softmax cross-entropy and its gradient"),
    Lesson(7, "07_data.ipynb", "Data", ("2", "4.1"),
           "the 256 rescale and centre crop, the mean image, random crops and reflections, PCA "
           "lighting on a photograph, ten-crop testing measured"),
    Lesson(8, "08_learning.ipynb", "Learning", ("5",),
           "the paper's SGD against PyTorch's when the rate drops, the initialisation trap and "
           "He's fix, the plateau schedule, a real run with learning curves"),
    Lesson(9, "09_cuda_kernels.ipynb", "The CUDA kernels", ("3.2", "3.4"),
           "max-pooling's kernel read line by line, run on the CPU emulator against NumPy, two "
           "planted bugs and AddressSanitizer, the real launch on a GPU"),
    Lesson(10, "10_what_it_learned.ipynb", "What the network learned", ("6.1",),
           "figure 3 (the towers' conv1 kernels, their colour share measured), feature maps, "
           "figure 4 (neighbours by fc7 distance), saliency maps, on a net trained in seconds"),
    Lesson(11, "11_real_images.ipynb", "Real images", ("2", "4.1"),
           "Fashion-MNIST (or the shapes when it is not installed): gray to three channels, "
           "PCA lighting as brightness, 28 pixels; a short run, its confusion matrix and "
           "the test images it gets wrong"),
    Lesson(12, "12_paper_and_code.ipynb", "The paper and the code that won",
           ("3.3", "3.4", "3.5", "5"),
           "the paper against the 2012 source (computerhistory/AlexNet-Source-Code): LRN's "
           "alpha / n with k = 1, pooling before LRN, rates lowered by hand and conv1-conv2 "
           "frozen; what tinyalex follows and the switches"),
)
