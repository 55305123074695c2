// lrn.cu -- local response normalization across channels, forward and backward.
// Paper section 3.3, with the PAPER's alpha (not divided by n; see tinyalex/layers/lrn.py).
//
// Must match: tinyalex.layers.lrn_forward / lrn_backward (launched by tinyalex.cuda.layers).
//
// Layouts (float32, C-contiguous, all the same shape):
//   x, out, scale, dout, dx   (N, C, H, W); element (n, c, h, w) at ((n*C + c)*H + h)*W + w,
//   so the channel neighbours of an element are H*W floats apart.
//
// The maths, with window(i) = [max(0, i - n/2), min(C - 1, i + n/2)] (n odd, n/2 rounded down):
//   forward:   scale[i] = k + alpha * sum_{j in window(i)} x[j]^2
//              out[i]   = x[i] * scale[i]^(-beta)
//   backward:  the window is symmetric (j in window(i) <=> i in window(j)), so
//              dx[j] = dout[j] * scale[j]^(-beta)
//                      - 2*alpha*beta * x[j] * sum_{i in window(j)} dout[i] * out[i] / scale[i]
//              using x[i] * scale[i]^(-beta-1) = out[i] / scale[i] (no second power needed).
//   scale is always >= k > 0, so the powers and divisions are safe.
//
// Launch geometry (both kernels): 1-D, one thread per element of x, the block size of the
//   __launch_bounds__ below (the Python side reads it from this file), ceil(N*C*H*W / block)
//   blocks. Each thread reads its n-long channel window directly (n = 5 in AlexNet): a few
//   extra reads, but no shared memory and no inter-thread communication.
//   Consecutive threads handle consecutive w, so every read and write is coalesced.

extern "C" __global__ void __launch_bounds__(256)
lrn_forward_kernel(const float* __restrict__ x,  // (N, C, H, W)
                   float* __restrict__ out,      // (N, C, H, W)
                   float* __restrict__ scale,    // (N, C, H, W)
                   int N, int C, int HW, int n,
                   float k, float alpha, float beta) {
    const int total = N * C * HW;
    const int index = blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= total) return;
    const int c = (index / HW) % C;
    const int first = max(0, c - n / 2);
    const int last = min(C - 1, c + n / 2);
    // x[index] is channel c; channel j of the same (n, h, w) is (j - c)*HW floats away.
    const float* x_column = x + (index - c * HW);  // channel 0 of this (n, h, w)
    float sum_sq = 0.0f;
    for (int j = first; j <= last; ++j) {
        const float a = x_column[j * HW];
        sum_sq += a * a;
    }
    const float s = k + alpha * sum_sq;
    scale[index] = s;
    out[index] = x[index] * powf(s, -beta);
}

extern "C" __global__ void __launch_bounds__(256)
lrn_backward_kernel(const float* __restrict__ dout,   // (N, C, H, W)
                    const float* __restrict__ x,      // (N, C, H, W)
                    const float* __restrict__ out,    // (N, C, H, W)
                    const float* __restrict__ scale,  // (N, C, H, W)
                    float* __restrict__ dx,           // (N, C, H, W)
                    int N, int C, int HW, int n,
                    float alpha, float beta) {
    const int total = N * C * HW;
    const int index = blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= total) return;
    const int c = (index / HW) % C;
    const int first = max(0, c - n / 2);
    const int last = min(C - 1, c + n / 2);
    const int column = index - c * HW;  // channel 0 of this (n, h, w)
    // sum over the channels i whose window contains c: dout[i] * out[i] / scale[i]
    float spread = 0.0f;
    for (int i = first; i <= last; ++i) {
        const int e = column + i * HW;
        spread += dout[e] * out[e] / scale[e];
    }
    dx[index] = dout[index] * powf(scale[index], -beta) - 2.0f * alpha * beta * x[index] * spread;
}
