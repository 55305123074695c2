// sgd.cu -- the paper's momentum SGD update of one parameter array, IN PLACE, in one pass.
// Paper section 5: v <- 0.9 v - 0.0005 * lr * w - lr * dL/dw;  w <- w + v.
//
// Must match: tinyalex.optim.sgd_update, bit for bit (launched by tinyalex.cuda.ops).
//
// Layout: w, v, g -- any shape, float32, C-contiguous, n elements each, treated as flat.
//   OVERWRITES w (the parameter) and v (its velocity); reads g (the gradient).
// The arithmetic, in the textbook's order and with its float32 roundings:
//   v = v * momentum;  v = v - decay_lr * w;  v = v - lr * g;  w = w + v
// where decay_lr = float32(weight_decay * lr) as the host computes it. __fmul_rn and friends
// round each operation on its own: the compiler may not fuse a multiply and a subtraction into
// one FMA (with a single rounding), which would make the GPU's weights differ from NumPy's.
// One pass reads w, v, g and writes v, w (5 floats per parameter); the textbook's NumPy/CuPy
// statements make six array passes with two temporaries (15 floats per parameter).
//
// Launch geometry: 1-D, one thread per element, the block size of the __launch_bounds__ below
//   (the Python side reads it from this file), ceil(n / block) blocks; coalesced throughout.
//   Flat indices are int: the Python side refuses 2^31 elements or more.

extern "C" __global__ void __launch_bounds__(256)
sgd_update_kernel(float* __restrict__ w,        // (n,) the parameter, updated in place
                  float* __restrict__ v,        // (n,) its velocity, updated in place
                  const float* __restrict__ g,  // (n,) its gradient
                  int n, float lr, float momentum, float decay_lr) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float weight = w[i];
    float velocity = __fmul_rn(v[i], momentum);
    velocity = __fsub_rn(velocity, __fmul_rn(decay_lr, weight));
    velocity = __fsub_rn(velocity, __fmul_rn(lr, g[i]));
    v[i] = velocity;
    w[i] = __fadd_rn(weight, velocity);
}
