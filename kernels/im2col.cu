// im2col.cu -- unfold image windows into columns for convolution as a matrix product, and the
// adjoint (col2im) for the backward pass. Paper section 3.5 (the conv layers).
//
// Must match: tinyalex.layers.im2col / col2im (launched by tinyalex.cuda.layers).
//
// Layouts (float32, C-contiguous):
//   x     (N, C, H, W)                    the image batch (unpadded)
//   cols  (C*KH*KW, N*OH*OW)              the same memory as (C, KH, KW, N, OH, OW):
//         cols[(c*KH + i)*KW + j, (n*OH + oh)*OW + ow] = x_padded[n, c, oh*stride + i, ow*stride + j]
//   with x_padded = x with `pad` zeros on all four sides, and
//         OH = (H + 2*pad - KH) / stride + 1,   OW = (W + 2*pad - KW) / stride + 1.
//   Row (c, i, j) holds pixel (i, j) of every window of every image, so the convolution of the
//   whole batch is ONE plain 2-d product w (F, C*KH*KW) @ cols per group: with groups G, the
//   rows of group g are the slab cols[g*K : (g+1)*K], K = C/G*KH*KW (channels are the slowest
//   axis of a row index). Nothing here needs to know G.
//
// Launch geometry (both kernels): 1-D, one thread per OUTPUT element, the block size of the
//   __launch_bounds__ below (the Python side reads it from this file),
//   im2col: ceil(C*KH*KW*N*OH*OW / block) blocks;   col2im: ceil(N*C*H*W / block) blocks.
//   Flat indices are int: the Python side refuses arrays of 2^31 elements or more.
//   Consecutive threads handle consecutive ow, so the cols writes (im2col) and the dx writes
//   (col2im) are coalesced.
//
// col2im is written as a gather, not a scatter: each thread owns one pixel of dx and sums the
// cols entries that were read from it, so no two threads write the same address (no atomics,
// and the sum order is fixed, so results are deterministic).

extern "C" __global__ void __launch_bounds__(256)
im2col_kernel(const float* __restrict__ x,   // (N, C, H, W)
              float* __restrict__ cols,      // (C*KH*KW, N*OH*OW)
              int N, int C, int H, int W, int KH, int KW, int stride, int pad, int OH, int OW) {
    const int total = C * KH * KW * N * OH * OW;
    const int index = blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= total) return;
    // index = ((((c*KH + i)*KW + j)*N + n)*OH + oh)*OW + ow: peel the axes off, fastest first.
    int rest = index;
    const int ow = rest % OW; rest /= OW;
    const int oh = rest % OH; rest /= OH;
    const int n = rest % N;   rest /= N;
    const int j = rest % KW;  rest /= KW;
    const int i = rest % KH;
    const int c = rest / KH;
    // Position in the unpadded image; outside it, x_padded is zero.
    const int h = oh * stride + i - pad;
    const int w = ow * stride + j - pad;
    const bool inside = h >= 0 && h < H && w >= 0 && w < W;
    cols[index] = inside ? x[((n * C + c) * H + h) * W + w] : 0.0f;
}

extern "C" __global__ void __launch_bounds__(256)
col2im_kernel(const float* __restrict__ cols,  // (C*KH*KW, N*OH*OW)
              float* __restrict__ dx,          // (N, C, H, W)
              int N, int C, int H, int W, int KH, int KW, int stride, int pad, int OH, int OW) {
    const int total = N * C * H * W;
    const int index = blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= total) return;
    // index = ((n*C + c)*H + h)*W + w
    const int w = index % W;
    const int h = (index / W) % H;
    const int c = (index / (W * H)) % C;
    const int n = index / (W * H * C);
    // In padded coordinates, pixel (hp, wp) was read by window (oh, ow) at kernel offset
    // (i, j) = (hp - oh*stride, wp - ow*stride) whenever 0 <= i < KH and 0 <= j < KW, i.e. for
    //   oh from max(0, ceil((hp - KH + 1) / stride)) to min(OH - 1, floor(hp / stride)).
    const int hp = h + pad;
    const int wp = w + pad;
    const int oh_start = hp < KH ? 0 : (hp - KH) / stride + 1;
    const int oh_end = min(OH - 1, hp / stride);
    const int ow_start = wp < KW ? 0 : (wp - KW) / stride + 1;
    const int ow_end = min(OW - 1, wp / stride);
    const int row_length = N * OH * OW;  // one row of cols: one (c, i, j), every window
    const float* image_n = cols + n * OH * OW;  // image n's windows within each row
    float sum = 0.0f;
    for (int oh = oh_start; oh <= oh_end; ++oh) {
        const int i = hp - oh * stride;
        for (int ow = ow_start; ow <= ow_end; ++ow) {
            const int j = wp - ow * stride;
            sum += image_n[((c * KH + i) * KW + j) * row_length + oh * OW + ow];
        }
    }
    dx[index] = sum;
}
