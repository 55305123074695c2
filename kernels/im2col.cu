// im2col.cu -- unfold image windows into columns for convolution as a matrix product, and the
// adjoint (col2im) for the backward pass. Paper section 3.5 (the conv layers).
//
// Must match: tinyalex.layers.conv.im2col / col2im (launched by tinyalex.cuda.ops).
//
// Layouts (float32, C-contiguous):
//   x     (N, C, H, W)                    the image batch (unpadded)
//   cols  (N, C*KH*KW, OH*OW)             the same memory as (N, C, KH, KW, OH, OW):
//         cols[n, (c*KH + i)*KW + j, oh*OW + ow] = x_padded[n, c, oh*stride + i, ow*stride + j]
//   with x_padded = x with `pad` zeros on all four sides, and
//         OH = (H + 2*pad - KH) / stride + 1,   OW = (W + 2*pad - KW) / stride + 1.
//   Channels are the slowest axis inside an image, so with groups G the rows of group g are one
//   slab: cols.reshape(N, G, C/G*KH*KW, OH*OW)[:, g]. Nothing here needs to know G.
//
// Launch geometry (both kernels): 1-D, one thread per OUTPUT element, 256 threads per block,
//   im2col: ceil(N*C*KH*KW*OH*OW / 256) blocks;   col2im: ceil(N*C*H*W / 256) blocks.
//   Flat indices are int: the Python side refuses arrays of 2^31 elements or more.
//
// col2im is written as a gather, not a scatter: each thread owns one pixel of dx and sums the
// cols entries that were read from it, so no two threads write the same address (no atomics,
// and the sum order is fixed, so results are deterministic).

extern "C" __global__ void im2col_kernel(const float* __restrict__ x,   // (N, C, H, W)
                                         float* __restrict__ cols,      // (N, C*KH*KW, OH*OW)
                                         int N, int C, int H, int W, int KH, int KW,
                                         int stride, int pad, int OH, int OW) {
    const int total = N * C * KH * KW * OH * OW;
    const int index = blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= total) return;
    // index = ((((n*C + c)*KH + i)*KW + j)*OH + oh)*OW + ow: peel the axes off, fastest first.
    int rest = index;
    const int ow = rest % OW; rest /= OW;
    const int oh = rest % OH; rest /= OH;
    const int j = rest % KW;  rest /= KW;
    const int i = rest % KH;  rest /= KH;
    const int c = rest % C;
    const int n = rest / C;
    // Position in the unpadded image; outside it, x_padded is zero.
    const int h = oh * stride + i - pad;
    const int w = ow * stride + j - pad;
    const bool inside = h >= 0 && h < H && w >= 0 && w < W;
    cols[index] = inside ? x[((n * C + c) * H + h) * W + w] : 0.0f;
}

extern "C" __global__ void col2im_kernel(const float* __restrict__ cols,  // (N, C*KH*KW, OH*OW)
                                         float* __restrict__ dx,          // (N, C, H, W)
                                         int N, int C, int H, int W, int KH, int KW,
                                         int stride, int pad, int OH, int OW) {
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
    // The (KH, KW, OH, OW) block of cols that belongs to this image n and channel c.
    const float* cols_nc = cols + (n * C + c) * KH * KW * OH * OW;
    float sum = 0.0f;
    for (int oh = oh_start; oh <= oh_end; ++oh) {
        const int i = hp - oh * stride;
        for (int ow = ow_start; ow <= ow_end; ++ow) {
            const int j = wp - ow * stride;
            sum += cols_nc[((i * KW + j) * OH + oh) * OW + ow];
        }
    }
    dx[index] = sum;
}
