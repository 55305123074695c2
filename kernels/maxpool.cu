// maxpool.cu -- overlapping max-pooling, forward (with argmax) and backward.
// Paper section 3.4: window z = 3, stride s = 2 in AlexNet (s < z, so windows overlap).
//
// Must match: tinyalex.layers.maxpool_forward / maxpool_backward (launched by tinyalex.cuda.layers).
//
// Layouts (C-contiguous):
//   x, dx         (N, C, H, W)    float32
//   out, dout     (N, C, OH, OW)  float32
//   argmax        (N, C, OH, OW)  int32: position i*size + j of the max inside its window
//                                 (row i, column j of the window), the FIRST max in row-major
//                                 order on ties
//   No padding, floor mode: OH = (H - size) / stride + 1, OW likewise; rows and columns past
//   the last whole window are never read (their dx is 0).
//
// Launch geometry: 1-D, one thread per OUTPUT element, the block size of the __launch_bounds__
//   below (the Python side reads it from this file):
//   forward:  ceil(N*C*OH*OW / block) blocks, one thread per pooled value;
//   backward: ceil(N*C*H*W / block) blocks, one thread per dx pixel. The backward is a gather:
//   pixel (h, w) lies in windows oh = ceil((h - size + 1) / stride) .. floor(h / stride) (clipped
//   to [0, OH - 1]), likewise ow; it sums dout over those windows whose argmax points at it.
//   No atomics, deterministic.

extern "C" __global__ void __launch_bounds__(256)
maxpool_forward_kernel(const float* __restrict__ x,  // (N, C, H, W)
                       float* __restrict__ out,     // (N, C, OH, OW)
                       int* __restrict__ argmax,    // (N, C, OH, OW)
                       int NC, int H, int W, int size, int stride,
                       int OH, int OW) {
    const int total = NC * OH * OW;
    const int index = blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= total) return;
    const int ow = index % OW;
    const int oh = (index / OW) % OH;
    const int nc = index / (OW * OH);  // image and channel together: n*C + c
    // Top-left corner of the window; a whole window always fits (no padding, floor mode).
    const float* window = x + (nc * H + oh * stride) * W + ow * stride;
    float best = window[0];
    int best_at = 0;
    for (int i = 0; i < size; ++i) {
        for (int j = 0; j < size; ++j) {
            const float v = window[i * W + j];
            if (v > best) {  // strictly greater: the first maximum wins ties
                best = v;
                best_at = i * size + j;
            }
        }
    }
    out[index] = best;
    argmax[index] = best_at;
}

extern "C" __global__ void __launch_bounds__(256)
maxpool_backward_kernel(const float* __restrict__ dout,  // (N,C,OH,OW)
                        const int* __restrict__ argmax,  // (N,C,OH,OW)
                        float* __restrict__ dx,          // (N,C,H,W)
                        int NC, int H, int W, int size, int stride,
                        int OH, int OW) {
    const int total = NC * H * W;
    const int index = blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= total) return;
    const int w = index % W;
    const int h = (index / W) % H;
    const int nc = index / (W * H);
    const int oh_start = h < size ? 0 : (h - size) / stride + 1;
    const int oh_end = min(OH - 1, h / stride);
    const int ow_start = w < size ? 0 : (w - size) / stride + 1;
    const int ow_end = min(OW - 1, w / stride);
    const int plane = nc * OH * OW;  // this (n, c) in dout and argmax
    float sum = 0.0f;
    for (int oh = oh_start; oh <= oh_end; ++oh) {
        for (int ow = ow_start; ow <= ow_end; ++ow) {
            // This pixel's position inside window (oh, ow):
            const int here = (h - oh * stride) * size + (w - ow * stride);
            const int o = plane + oh * OW + ow;
            if (argmax[o] == here) sum += dout[o];
        }
    }
    dx[index] = sum;
}
