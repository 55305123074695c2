// philox.cu -- counter-based uniform random numbers (Philox4x32-10) for the dropout masks.
// Paper section 4.2 (dropout); the generator: Salmon et al., SC 2011 (Random123, cuRAND).
//
// Must match: tinyalex.noise.philox_uniform, bit for bit (launched by tinyalex.cuda.ops).
//
// Layout (C-contiguous):
//   out   (rows, units) float32: out[r, u] is the number of sample row_offset + r and unit
//         unit_offset + u -- GLOBAL indices, so a process that holds part of a batch (or part
//         of a layer's units) computes exactly the numbers one process would.
// The number of (sample n, unit v) of dropout layer `layer` at training step `step`:
//   counter = (v / 4, n, step, layer),  key = (key0, key1) = the seed's low and high words,
//   word = Philox4x32-10(counter, key)[v % 4],   out = (word >> 8) * 2^-24   in [0, 1).
// Integer arithmetic only, and a 24-bit integer times a power of two is exact in float32:
// the GPU, the CPU emulator and NumPy give identical numbers.
//
// Launch geometry: 1-D, one thread per element of out, the block size of the
//   __launch_bounds__ below (the Python side reads it from this file),
//   ceil(rows*units / block) blocks. Each thread runs one whole Philox (ten rounds of two
//   32x32-bit multiplies) and keeps one of its four words: four times the arithmetic of the
//   minimum, but a few microseconds for AlexNet's 2 x 128 x 4096 units, and every write is
//   coalesced. Flat indices are int: the Python side refuses 2^31 elements or more.

// hi:lo = a * b, the full 64-bit product of two 32-bit words.
__device__ __forceinline__ unsigned int mulhilo(unsigned int a, unsigned int b,
                                                unsigned int* hi) {
    const unsigned long long product = (unsigned long long)a * b;
    *hi = (unsigned int)(product >> 32);
    return (unsigned int)product;
}

extern "C" __global__ void __launch_bounds__(256)
philox_uniform_kernel(float* __restrict__ out,  // (rows, units)
                      int rows, int units,
                      unsigned int key0, unsigned int key1,
                      unsigned int step, unsigned int layer,
                      unsigned int row_offset, unsigned int unit_offset) {
    const int total = rows * units;
    const int index = blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= total) return;
    const unsigned int sample = row_offset + (unsigned int)(index / units);
    const unsigned int unit = unit_offset + (unsigned int)(index % units);
    unsigned int c0 = unit >> 2, c1 = sample, c2 = step, c3 = layer;
    unsigned int k0 = key0, k1 = key1;
    for (int round = 0; round < 10; ++round) {
        if (round > 0) {  // the key schedule: bumped before every round but the first
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        unsigned int hi0, hi1;
        const unsigned int lo0 = mulhilo(0xD2511F53u, c0, &hi0);
        const unsigned int lo1 = mulhilo(0xCD9E8D57u, c2, &hi1);
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
    }
    const unsigned int lane = unit & 3u;
    const unsigned int word = lane == 0 ? c0 : lane == 1 ? c1 : lane == 2 ? c2 : c3;
    out[index] = (float)(word >> 8) * 5.9604644775390625e-8f;  // * 2^-24, exact
}
