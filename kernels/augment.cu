// augment.cu -- a training batch assembled on the GPU from its uint8 images: the crop window,
// the mirror image, the mean image and the PCA lighting. Paper sections 2 and 4.1.
//
// Must match: tinyalex.data.crop_batch followed by tinyalex.data.augment.add_lighting,
// bit for bit (launched by tinyalex.cuda.ops; used by tinyalex.cuda.staging).
//
// Layouts (C-contiguous):
//   images    (B, S, S, 3)       uint8, HWC as stored (what travels to the GPU: a third of
//                                the bytes of the float32 crops)
//   mean      (3, S, S)          float32, CHW: the training set's mean image
//   windows   (B, 3)             int32: top, left (the window's corner) and flip (0 or 1)
//   lighting  (B, 3)             float32: the RGB offset added to every pixel of image b
//                                (zeros when lighting is off)
//   x         (B, 3, crop, crop) float32, NCHW: the network's input
// Element (b, c, i, j) of x reads row r = top + i and column s = left + j, or, mirrored,
// s = left + crop - 1 - j:
//   x[b, c, i, j] = (float(images[b, r, s, c]) - mean[c, r, s]) + lighting[b, c]
// The same two float32 roundings as the CPU code (subtract, then add; no multiply, so no
// fused multiply-add can change them): the results are identical.
//
// Launch geometry: 1-D, one thread per element of x, the block size of the __launch_bounds__
//   below (the Python side reads it from this file), ceil(B*3*crop*crop / block) blocks.
//   Consecutive threads handle consecutive j: the x writes and mean reads are coalesced; the
//   byte reads of images are 3 apart (cheap next to the float writes). Flat indices are int:
//   the Python side refuses 2^31 elements or more.

extern "C" __global__ void __launch_bounds__(256)
crop_kernel(const unsigned char* __restrict__ images,  // (B, S, S, 3)
            const float* __restrict__ mean,            // (3, S, S)
            const int* __restrict__ windows,           // (B, 3): top, left, flip
            const float* __restrict__ lighting,        // (B, 3)
            float* __restrict__ x,                     // (B, 3, crop, crop)
            int B, int S, int crop) {
    const int total = B * 3 * crop * crop;
    const int index = blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= total) return;
    // index = ((b*3 + c)*crop + i)*crop + j
    const int j = index % crop;
    const int i = (index / crop) % crop;
    const int c = (index / (crop * crop)) % 3;
    const int b = index / (crop * crop * 3);
    const int* window = windows + 3 * b;
    const int row = window[0] + i;
    const int column = window[1] + (window[2] ? crop - 1 - j : j);
    const float pixel = (float)images[((b * S + row) * S + column) * 3 + c];
    x[index] = (pixel - mean[(c * S + row) * S + column]) + lighting[3 * b + c];
}
