"""One answer to every exercise of the lessons, written the way a student might write it.

``show_solution("name")`` prints the function of that name. They are checked by the same
checker as the student's answers (``tests/test_lessons.py``). Try the exercise first: the
checker's messages are meant to get you there.
"""

from __future__ import annotations

import numpy as np

from tinyalex import layers

# ---- lesson 1: the tour ---------------------------------------------------------------------


def conv_output_size(size, kernel, stride, pad):
    # The padded input has size + 2*pad pixels; a window fits at positions 0, stride,
    # 2*stride, ... as long as its last pixel is inside: (size + 2 pad - kernel) // stride + 1.
    return (size + 2 * pad - kernel) // stride + 1


def conv_params(in_channels, out_channels, kernel, groups):
    # Each of the out_channels kernels is kernel x kernel over the in_channels / groups input
    # channels of its group, plus one bias.
    return out_channels * (in_channels // groups) * kernel * kernel + out_channels


def conv_mult_adds(in_channels, out_channels, kernel, out_size, groups):
    # Every output value (out_channels x out_size x out_size of them) is one dot product of
    # length (in_channels / groups) * kernel * kernel.
    return out_channels * out_size * out_size * (in_channels // groups) * kernel * kernel


# ---- lesson 2: convolution ------------------------------------------------------------------


def conv_forward_loops(x, w, b, stride, pad):
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    OH, OW = (H + 2 * pad - KH) // stride + 1, (W + 2 * pad - KW) // stride + 1
    out = np.zeros((N, F, OH, OW), dtype=x.dtype)
    for n in range(N):
        for f in range(F):
            for i in range(OH):
                for j in range(OW):
                    window = x_pad[n, :, i * stride : i * stride + KH, j * stride : j * stride + KW]
                    out[n, f, i, j] = np.sum(window * w[f]) + b[f]
    return out


def conv_backward_loops(dout, x, w, stride, pad):
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dx_pad, dw = np.zeros_like(x_pad), np.zeros_like(w)
    db = dout.sum(axis=(0, 2, 3))  # each bias was added to every output of its kernel
    _, _, OH, OW = dout.shape
    for n in range(N):
        for f in range(F):
            for i in range(OH):
                for j in range(OW):
                    rows = slice(i * stride, i * stride + KH)
                    cols = slice(j * stride, j * stride + KW)
                    g = dout[n, f, i, j]
                    dw[f] += g * x_pad[n, :, rows, cols]  # d out / d w = the window
                    dx_pad[n, :, rows, cols] += g * w[f]  # += : windows overlap
    return dx_pad[:, :, pad : pad + H, pad : pad + W], dw, db


def im2col(x, kh, kw, stride, pad):
    N, C, H, W = x.shape
    OH, OW = (H + 2 * pad - kh) // stride + 1, (W + 2 * pad - kw) // stride + 1
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    cols = np.zeros((C, kh, kw, N, OH, OW), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            # pixel (i, j) of every window, of every image and channel: a strided slice
            patch = x_pad[:, :, i : i + stride * OH : stride, j : j + stride * OW : stride]
            cols[:, i, j] = patch.transpose(1, 0, 2, 3)  # (N, C, OH, OW) -> (C, N, OH, OW)
    return cols.reshape(C * kh * kw, N * OH * OW)


def col2im(cols, x_shape, kh, kw, stride, pad):
    N, C, H, W = x_shape
    OH, OW = (H + 2 * pad - kh) // stride + 1, (W + 2 * pad - kw) // stride + 1
    cols = cols.reshape(C, kh, kw, N, OH, OW)
    dx_pad = np.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            # += , not = : a pixel inside several windows gets one term from each
            dx_pad[:, :, i : i + stride * OH : stride, j : j + stride * OW : stride] += (
                cols[:, i, j].transpose(1, 0, 2, 3))
    return dx_pad[:, :, pad : pad + H, pad : pad + W]


def grouped_conv(x, w, b, groups, stride, pad):
    # Kernel block g (F/groups kernels) sees only channel block g: one plain convolution
    # per group, outputs stacked along the channel axis. (groups=2: the paper's two GPUs.)
    Cg, Fg = x.shape[1] // groups, w.shape[0] // groups  # channels, kernels per group
    outputs = []
    for g in range(groups):
        x_g = x[:, g * Cg : (g + 1) * Cg]
        w_g, b_g = w[g * Fg : (g + 1) * Fg], b[g * Fg : (g + 1) * Fg]
        out_g, _ = layers.conv_forward(x_g, w_g, b_g, stride=stride, pad=pad)
        outputs.append(out_g)
    return np.concatenate(outputs, axis=1)


# ---- lesson 3: ReLU and tanh ----------------------------------------------------------------


def relu_backward(dout, x):
    # d max(0, x) / dx is 1 where x > 0 and 0 elsewhere (0 at x = 0 too, by convention).
    return dout * (x > 0)


def tanh_backward(dout, out):
    # d tanh(x) / dx = 1 - tanh(x)^2 = 1 - out^2: the forward output is all we need.
    return dout * (1 - out**2)


def steps_to_error(errors, target, window):
    # The running mean of the last `window` mini-batch errors; the first step count at
    # which it is <= target. errors[0] is the first step's error, so the count is index + 1.
    errors = np.asarray(errors, dtype=np.float64)
    for step in range(window, len(errors) + 1):
        if errors[step - window : step].mean() <= target:
            return step
    return None


# ---- lesson 4: local response normalization -------------------------------------------------


def lrn_forward(x, n, k, alpha, beta):
    N, C, H, W = x.shape
    squares = x**2
    window_sum = np.zeros_like(x)
    for i in range(C):
        low, high = max(0, i - n // 2), min(C - 1, i + n // 2)  # clipped at the edges
        window_sum[:, i] = squares[:, low : high + 1].sum(axis=1)
    return x / (k + alpha * window_sum) ** beta  # the paper's alpha: no division by n


def lrn_backward(dout, x, n, k, alpha, beta):
    N, C, H, W = x.shape
    squares = x**2
    scale = np.zeros_like(x)
    for i in range(C):
        low, high = max(0, i - n // 2), min(C - 1, i + n // 2)
        scale[:, i] = k + alpha * squares[:, low : high + 1].sum(axis=1)
    # dx[j] = g[j] s[j]^-beta - 2 alpha beta x[j] sum_{i in window(j)} g[i] x[i] s[i]^(-beta-1)
    term = dout * x * scale ** (-beta - 1)
    neighbours = np.zeros_like(x)
    for j in range(C):
        low, high = max(0, j - n // 2), min(C - 1, j + n // 2)  # the window is symmetric
        neighbours[:, j] = term[:, low : high + 1].sum(axis=1)
    return dout * scale**-beta - 2 * alpha * beta * x * neighbours


def lrn_pytorch(x, size, alpha, beta, k):
    # PyTorch's local_response_norm(x, size, alpha, beta, k) averages the squares over the
    # window: its alpha multiplies sum / size. tinyalex's (the paper's) multiplies the sum.
    return layers.lrn_forward(x, n=size, k=k, alpha=alpha / size, beta=beta)[0]


# ---- lesson 5: overlapping pooling ----------------------------------------------------------


def maxpool_forward(x, size, stride):
    N, C, H, W = x.shape
    OH, OW = (H - size) // stride + 1, (W - size) // stride + 1
    out = np.zeros((N, C, OH, OW), dtype=x.dtype)
    for i in range(OH):
        for j in range(OW):
            window = x[:, :, i * stride : i * stride + size, j * stride : j * stride + size]
            out[:, :, i, j] = window.max(axis=(2, 3))
    return out


def maxpool_backward(dout, x, size, stride):
    N, C, OH, OW = dout.shape
    dx = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    window = x[n, c, i * stride : i * stride + size, j * stride : j * stride + size]
                    r, s = np.unravel_index(np.argmax(window), window.shape)  # the first max
                    dx[n, c, i * stride + r, j * stride + s] += dout[n, c, i, j]  # add up
    return dx


def pool_coverage(height, width, size, stride):
    # How many windows contain each pixel: add 1 over every window that fits.
    counts = np.zeros((height, width), dtype=np.int64)
    for i in range((height - size) // stride + 1):
        for j in range((width - size) // stride + 1):
            counts[i * stride : i * stride + size, j * stride : j * stride + size] += 1
    return counts


# ---- lesson 6: dropout, fully connected, softmax cross-entropy -------------------------------


def dropout_forward(x, p, rng):
    u = rng.random(x.shape)  # one uniform number in [0, 1) per unit
    mask = (u >= p) / (1 - p)  # kept with probability 1 - p, and scaled up: inverted dropout
    return x * mask, mask


def linear_backward(dout, x, w):
    x2d = x.reshape(x.shape[0], -1)  # (N, D): fc6 reads the flattened pool5
    dx = (dout @ w).reshape(x.shape)
    dw = dout.T @ x2d  # (M, D), the layout of w
    db = dout.sum(axis=0)  # the bias was added to every row of the batch
    return dx, dw, db


def softmax_cross_entropy(logits, labels):
    N = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)  # exp cannot overflow now
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_probs[np.arange(N), labels].mean()
    dlogits = np.exp(log_probs)  # softmax
    dlogits[np.arange(N), labels] -= 1  # p - onehot(label)
    return loss, dlogits / N  # the loss is a mean over the batch


# ---- lesson 8: learning (section 5) ---------------------------------------------------------


def sgd_update(w, v, g, lr, momentum, weight_decay):
    # The paper's rule, in place: the learning rate is inside the velocity.
    v *= momentum
    v -= weight_decay * lr * w
    v -= lr * g
    w += v



# ---- lesson 12: the paper and the code that won ------------------------------------------


def lrn_2012(x, size, scale, power):
    # cuda-convnet's cmrnorm layer: layer.py divides the configured scale by size, and the
    # additive constant (minDiv) is 1 when a definition does not set it (the 2012 ones do
    # not): out = x / (1 + scale/size * sum of squares)^power. In tinyalex's (the paper's)
    # terms: k = 1, alpha = scale / size.
    return layers.lrn_forward(x, n=size, k=1.0, alpha=scale / size, beta=power)[0]


def conv1_2012(x, w, b, conv, lrn, pool):
    # The 2012 code's first block: conv -> ReLU -> max-pool -> LRN (the paper: LRN, then pool).
    out = layers.conv_forward(x, w, b, **conv)[0]
    out = layers.relu_forward(out)[0]
    out = layers.maxpool_forward(out, **pool)[0]
    return layers.lrn_forward(out, **lrn)[0]


def sgd_step_scaled(params, velocity, grads, lr, momentum, weight_decay, lr_scale):
    # The paper's update for every parameter, at the rate lr * (its factor, default 1); weight
    # decay on the weights (*.w) only. A factor of 0 still runs the rule: v = momentum v.
    for name, w in params.items():
        rate = lr * lr_scale.get(name, 1.0)
        decay = weight_decay if name.endswith(".w") else 0.0
        v = velocity[name]
        v *= momentum
        v -= decay * rate * w
        v -= rate * grads[name]
        w += v


# ---- lesson 10: what the network learned -----------------------------------------------------


def kernel_colourfulness(w):
    # Split each kernel (3, KH, KW) into its grey part -- the mean of R, G, B at each pixel,
    # the same on all three channels -- and the rest, the colour. Return the colour's share
    # of the squared weights, one number per kernel.
    grey = w.mean(axis=1, keepdims=True)  # (F, 1, KH, KW), broadcast over the channels
    colour_energy = ((w - grey) ** 2).sum(axis=(1, 2, 3))
    return colour_energy / (w**2).sum(axis=(1, 2, 3))


def nearest_by_fc7(net, x, queries, k):
    # The last hidden layer after its ReLU (fc7 in the paper), evaluation mode (no dropout).
    net.forward(x, train=False, keep_activations=True)
    fc = [step.name for step in net.steps if step.kind == "fc"]
    features = net.activations["relu" + fc[-2][2:]].reshape(len(x), -1)  # (N, D)
    dist = np.sqrt(((features[queries][:, None] - features[None]) ** 2).sum(axis=2))  # (Q, N)
    dist[np.arange(len(queries)), queries] = np.inf  # an image is not its own neighbour
    return np.argsort(dist, axis=1)[:, :k]


def class_score_gradient(net, x, classes):
    logits = net.forward(x, train=False)  # evaluation mode: no dropout
    dlogits = np.zeros_like(logits)  # d score / d logits: 1 at the class, 0 for every other
    dlogits[np.arange(len(x)), classes] = 1.0
    return net.backward(dlogits, input_grad=True)["input"]


# ---- lesson 11: real images -------------------------------------------------------------------


def gray_to_input(images, mean):
    # uint8 (N, S, S) grayscale -> float32 (N, 3, S, S): the one channel on R, G and B (the
    # network reads three), minus the training set's mean image (3, S, S) (section 2).
    rgb = np.repeat(images[:, None, :, :], 3, axis=1).astype(np.float32)  # (N, 3, S, S)
    return rgb - mean


def confusion_counts(labels, predictions, num_classes):
    # counts[t, p]: the images of true class t that the network called p.
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (labels, predictions), 1)  # += would count repeated pairs only once
    return counts


def most_confused_pairs(confusion, count):
    # The off-diagonal cells with the largest counts, as (true, predicted) rows.
    mistakes = confusion.copy()
    np.fill_diagonal(mistakes, -1)  # a correct answer is not a confusion
    flat = np.argsort(-mistakes.ravel(), kind="stable")[:count]  # ties: row-major order
    rows, cols = np.unravel_index(flat, mistakes.shape)
    return np.stack([rows, cols], axis=1)
# ---- lesson 7: data (sections 2, 4.1) -------------------------------------------------------


def crop_batch(images, mean, crop_size, top, left, flip):
    # images uint8 (B, S, S, 3) as stored (HWC); mean float32 (3, S, S), CHW.
    x = images.astype(np.float32).transpose(0, 3, 1, 2)  # (B, 3, S, S), channels first
    out = np.empty((len(images), 3, crop_size, crop_size), dtype=np.float32)
    for b in range(len(images)):
        rows = slice(top[b], top[b] + crop_size)  # crop_size pixels: top .. top + crop - 1
        cols = slice(left[b], left[b] + crop_size)
        out[b] = x[b, :, rows, cols] - mean[:, rows, cols]  # the mean's SAME window
        if flip[b]:
            out[b] = out[b, :, :, ::-1]  # mirror left-right: the last (W) axis
    return out


def ten_crop_windows(image_size, crop_size):
    far = image_size - crop_size  # the last top (or left) where a whole window fits
    center = (image_size - crop_size) // 2
    five = [(0, 0), (0, far), (far, 0), (far, far), (center, center)]
    return [(t, lft, False) for t, lft in five] + [(t, lft, True) for t, lft in five]


def lighting_offsets(rng, batch, eigvals, eigvecs, std):
    # offset = [p1 p2 p3] [a1 l1, a2 l2, a3 l3]^T per image, with a_i ~ N(0, std^2); the
    # eigenvalues are in 0..255 units squared, the formula is applied in 0..1 units (see
    # tinyalex.data.augment.lighting_offsets): 255 * P (a * l / 255^2) = P (a * l) / 255.
    alphas = rng.normal(0.0, std, (batch, 3))  # one draw per image and component
    return (alphas * eigvals / 255.0) @ eigvecs.T  # row b: sum_i p_i * a_bi * l_i / 255


# ---- lesson 8: learning (section 5), continued ---------------------------------------------


def pytorch_sgd_update(w, buf, g, lr, momentum, weight_decay):
    # torch.optim.SGD: the decay is added to the gradient, the rate multiplies the buffer.
    buf *= momentum
    buf += g + weight_decay * w
    w -= lr * buf


def plateau_rates(val_errors, lr, patience, max_reductions):
    rates, best, bad, reductions = [lr], float("inf"), 0, 0
    for error in val_errors:
        if error < best - 1e-4:  # a real improvement: remember it, start counting again
            best, bad = error, 0
        else:
            bad += 1
            if bad > patience and reductions < max_reductions:  # MORE than patience epochs
                lr, bad, reductions = lr * 0.1, 0, reductions + 1
        rates.append(lr)  # the rate of the next epoch
    return rates


def he_std(w_shape):
    # A ReLU zeroes half its inputs, so keeping the variance of the signal needs
    # Var(w) = 2 / fan_in; fan_in = the inputs of ONE output unit: C * KH * KW (or D for fc).
    fan_in = int(np.prod(w_shape[1:]))
    return np.sqrt(2.0 / fan_in)


# ---- lesson 9: the CUDA kernels -------------------------------------------------------------


def thread_coords(index, OH, OW):
    # The flat index runs over (nc, oh, ow) in row-major order: ow fastest.
    ow = index % OW
    oh = (index // OW) % OH
    nc = index // (OW * OH)
    return nc, oh, ow


def grid_blocks(total, block):
    # Enough blocks for one thread per element: ceil(total / block), in integers.
    return (total + block - 1) // block


def windows_containing(h, size, stride, count):
    # Window o covers rows o*stride .. o*stride + size - 1; it holds h when
    # o*stride <= h <= o*stride + size - 1, i.e. ceil((h - size + 1) / stride) <= o <= h // stride.
    first = np.maximum(0, -(-(h - size + 1) // stride))  # -(-a // b) is ceil(a / b)
    last = np.minimum(count - 1, h // stride)
    return first, last
