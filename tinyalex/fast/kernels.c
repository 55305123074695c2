/* The memory-bound work of the CPU fast path as plain C loops, compiled on first use.
 *
 * Each function here is one NumPy pass-sequence of tinyalex/fast/ done in a single sweep over
 * memory, and each is tested equal to its textbook twin in tinyalex/layers/ (see
 * tinyalex/fast/compiled.py for how it is built and called, tests/test_compiled.py for the
 * tests). The file is compiled twice, with `real` = float and with `real` = double; every
 * function name carries the suffix (NAME(x) -> x_float32 / x_float64).
 *
 * Layouts are NumPy's C order. A function works on a run of consecutive images, so that
 * Python can hand chunks of the batch to its threads (tinyalex/fast/parallel.py); the
 * pointers it receives point at the first image of the chunk. No function allocates more
 * than a small scratch block, and none keeps state between calls.
 *
 * Built with -ffp-contract=off: no fused multiply-adds, so that the SGD update rounds exactly
 * as NumPy's four passes do (bit for bit).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <tgmath.h>  /* sqrt, pow: the float or double version by argument type */

#ifndef REAL
#error "compile with -DREAL=float -DSUFFIX=float32 (or double / float64)"
#endif
typedef REAL real;
#define CAT2(a, b) a##_##b
#define CAT(a, b) CAT2(a, b)
#define NAME(x) CAT(x, SUFFIX)

/* ---- max-pooling (section 3.4) --------------------------------------------------------
 * x (planes, H, W) -> out, argmax (planes, OH, OW); planes = images * channels.
 * argmax[p] = i * size + j, the position of the maximum inside its window; on ties the first
 * in row-major order (only a strictly larger value replaces the running best), and the first
 * NaN if there is one (as NumPy's argmax).
 *
 * Separably, one plane at a time, in scratch that stays in the L1/L2 cache:
 *   row[t]  = max_j x[t + j]        (j < size; and j, its position)   at every pixel t,
 *   best[t] = max_i row[t + i W]    (i < size; and i * size + j)      at every pixel t,
 *   out[oh, ow] = best[oh stride W + ow stride].
 * Both sweeps run along the whole plane as one line (a value whose window crosses a row's end
 * is computed and never picked), and each step is a compare-and-select without a branch, so
 * the compiler turns them into long vector loops. The first maximum in row-major order is the
 * first row's first maximum among the rows holding the largest value, which is what the two
 * strict comparisons keep; the same for the first NaN. One window at a time instead, nine
 * compares with a branch each, spent most of its time on mispredicted branches: paper pool1,
 * batch 32, one thread, 53 ms against 13 ms (mini's pool1, batch 128: 14.5 against 3.3). */
static inline int replaces(real v, real best)  /* larger, or the first NaN */
{
    return (v > best) | ((v != v) & (best == best));
}

int NAME(maxpool_forward)(const real *x, real *out, uint8_t *argmax, int64_t planes,
                          int H, int W, int OH, int OW, int size, int stride)
{
    int64_t HW = (int64_t)H * W;
    real *row = malloc(sizeof(real) * HW), *best = malloc(sizeof(real) * HW);
    int32_t *row_at = malloc(sizeof(int32_t) * HW), *best_at = malloc(sizeof(int32_t) * HW);
    int status = row && best && row_at && best_at ? 0 : -1;
    int64_t across = HW - (size - 1);                 /* pixels with a whole row segment */
    int64_t down = (int64_t)(H - size + 1) * W - (size - 1);  /* ... and whole window */
    for (int64_t p = 0; p < planes && status == 0; p++) {
        const real *plane = x + p * HW;
        for (int64_t t = 0; t < across; t++) {
            row[t] = plane[t];
            row_at[t] = 0;
        }
        for (int j = 1; j < size; j++)
            for (int64_t t = 0; t < across; t++) {
                real v = plane[t + j], b = row[t];
                int r = replaces(v, b);
                row[t] = r ? v : b;
                row_at[t] = r ? j : row_at[t];
            }
        for (int64_t t = 0; t < down; t++) {
            best[t] = row[t];
            best_at[t] = row_at[t];
        }
        for (int i = 1; i < size; i++)
            for (int64_t t = 0; t < down; t++) {
                real v = row[t + (int64_t)i * W], b = best[t];
                int r = replaces(v, b);
                best[t] = r ? v : b;
                best_at[t] = r ? i * size + row_at[t + (int64_t)i * W] : best_at[t];
            }
        real *o = out + p * OH * OW;
        uint8_t *a = argmax + p * OH * OW;
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                int64_t t = (int64_t)oh * stride * W + ow * stride;
                o[oh * OW + ow] = best[t];
                a[oh * OW + ow] = (uint8_t)best_at[t];
            }
    }
    free(row);
    free(best);
    free(row_at);
    free(best_at);
    return status;
}

/* dout, argmax (planes, OH, OW) -> dx (planes, H, W): each gradient goes to its window's
 * maximum; overlapping windows add. dx is zeroed here first. */
void NAME(maxpool_backward)(const real *dout, const uint8_t *argmax, real *dx, int64_t planes,
                            int H, int W, int OH, int OW, int size, int stride)
{
    for (int64_t p = 0; p < planes; p++) {
        real *plane = dx + p * H * W;
        memset(plane, 0, sizeof(real) * H * W);
        const real *g = dout + p * OH * OW;
        const uint8_t *where = argmax + p * OH * OW;
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                int k = where[oh * OW + ow];
                plane[(oh * stride + k / size) * W + ow * stride + k % size] += g[oh * OW + ow];
            }
    }
}

/* ---- local response normalization (section 3.3) ---------------------------------------
 * x (images, C, HW) -> out, scale (images, C, HW):
 *     scale[c] = k + alpha * sum_{c' = c - n/2}^{c + n/2} x[c']^2   (channels in [0, C))
 *     out[c]   = x[c] * scale[c]^-beta
 * A block of BLOCK pixels at a time, all channels: the block's x, scale and out stay in the
 * L1/L2 cache while the window slides along the channels. */
#define BLOCK 256

/* o[q] = a[q] * s[q]^-beta for q < len. The paper's beta 0.75 as a / (sqrt(s) sqrt(sqrt(s))),
 * which vectorises (pow does not), within a few units in the last place of pow. */
static inline void times_power(real *restrict o, const real *restrict a,
                               const real *restrict s, int len, real beta)
{
    if (beta == (real)0.75)
        for (int q = 0; q < len; q++) o[q] = a[q] / (sqrt(s[q]) * sqrt(sqrt(s[q])));
    else
        for (int q = 0; q < len; q++) o[q] = a[q] * pow(s[q], -beta);
}

void NAME(lrn_forward)(const real *x, real *out, real *scale, int64_t images, int C,
                       int64_t HW, int n, real k, real alpha, real beta)
{
    int half = n / 2;
    for (int64_t img = 0; img < images; img++)
        for (int64_t p0 = 0; p0 < HW; p0 += BLOCK) {
            int len = (int)(HW - p0 < BLOCK ? HW - p0 : BLOCK);
            const real *xi = x + img * C * HW + p0;
            for (int c = 0; c < C; c++) {
                real *s = scale + img * C * HW + c * HW + p0;
                real *o = out + img * C * HW + c * HW + p0;
                int lo = c - half < 0 ? 0 : c - half, hi = c + half >= C ? C - 1 : c + half;
                for (int q = 0; q < len; q++) s[q] = 0;
                for (int cc = lo; cc <= hi; cc++) {
                    const real *a = xi + cc * HW;
                    for (int q = 0; q < len; q++) s[q] += a[q] * a[q];
                }
                for (int q = 0; q < len; q++) s[q] = k + alpha * s[q];
                times_power(o, xi + c * HW, s, len, beta);
            }
        }
}

/* dout, x, out, scale (images, C, HW) -> dx:
 *     dx[c] = g[c] scale[c]^-beta - 2 alpha beta x[c] sum_{c' in window(c)} g[c'] out[c'] / scale[c']
 * (the formula of tinyalex/layers/lrn.py). t = g out / scale of one pixel block, all channels,
 * goes into a scratch block first, then the window slides over it. */
int NAME(lrn_backward)(const real *dout, const real *x, const real *out, const real *scale,
                       real *dx, int64_t images, int C, int64_t HW, int n, real alpha, real beta)
{
    int half = n / 2;
    real *t = malloc(sizeof(real) * C * BLOCK);  /* (C, BLOCK) */
    if (!t) return -1;
    real factor = 2 * alpha * beta;
    for (int64_t img = 0; img < images; img++)
        for (int64_t p0 = 0; p0 < HW; p0 += BLOCK) {
            int len = (int)(HW - p0 < BLOCK ? HW - p0 : BLOCK);
            int64_t base = img * C * HW + p0;
            for (int c = 0; c < C; c++) {
                const real *g = dout + base + c * HW, *o = out + base + c * HW;
                const real *s = scale + base + c * HW;
                for (int q = 0; q < len; q++) t[c * BLOCK + q] = g[q] * o[q] / s[q];
            }
            for (int c = 0; c < C; c++) {
                int lo = c - half < 0 ? 0 : c - half, hi = c + half >= C ? C - 1 : c + half;
                const real *g = dout + base + c * HW, *a = x + base + c * HW;
                const real *s = scale + base + c * HW;
                real *d = dx + base + c * HW;
                real sum[BLOCK];
                for (int q = 0; q < len; q++) sum[q] = 0;
                for (int cc = lo; cc <= hi; cc++)
                    for (int q = 0; q < len; q++) sum[q] += t[cc * BLOCK + q];
                times_power(d, g, s, len, beta);  /* d = g s^-beta */
                for (int q = 0; q < len; q++) d[q] -= factor * a[q] * sum[q];
            }
        }
    free(t);
    return 0;
}

/* ---- the SGD update (section 5), one pass -----------------------------------------------
 * w, v, g (count,): v = momentum v - decay_lr w - lr g; w += v, rounded exactly as NumPy's
 * four in-place passes round (the same operations in the same order, no fused multiply-add;
 * decay_lr = weight_decay * lr is computed by the caller in double, then rounded, as NumPy
 * does with a Python float times a float32 array). */
void NAME(sgd_update)(real *w, real *v, const real *g, int64_t count, real lr, real momentum,
                      real decay_lr)
{
    for (int64_t i = 0; i < count; i++) {
        real vi = v[i] * momentum;
        vi = vi - decay_lr * w[i];
        vi = vi - lr * g[i];
        v[i] = vi;
        w[i] = w[i] + vi;
    }
}

/* ---- im2col / col2im (tinyalex/layers/conv.py's column layout) ---------------------------
 * cols[(c, i, j), (n, oh, ow)] = x[n, c, oh*stride + i - pad, ow*stride + j - pad], zero
 * outside the image. x: `images` images of (C, H, W); cols: rows of length ld (the whole
 * batch's N * OH * OW), this chunk's columns starting at column 0 of the pointer given.
 * The padding is never materialised: each output row is split into the columns left of the
 * image (zeros), inside it (a strided copy) and right of it (zeros). */
static inline void inside(int size, int k, int stride, int pad, int count, int *lo, int *hi)
{
    /* out positions o in [lo, hi) with 0 <= o*stride + k - pad < size */
    int first = pad - k > 0 ? (pad - k + stride - 1) / stride : 0;
    int last = (size - 1 + pad - k) >= 0 ? (size - 1 + pad - k) / stride + 1 : 0;
    *lo = first < count ? first : count;
    *hi = last < count ? last : count;
    if (*hi < *lo) *hi = *lo;
}

/* Stride 1 and output rows as long as the image's (OW == W): for window position (i, j), output
 * t = oh * OW + ow reads pixel t + shift of the plane, so the outputs whose rows are inside the
 * image are the one run [begin, end) -- the entries in it that wrapped around a row's end
 * (ow < ow_lo, ow >= ow_hi) excepted. Needs oh_lo < oh_hi and ow_lo < ow_hi. */
static inline void shifted_run(int oh_lo, int oh_hi, int ow_lo, int ow_hi, int W, int i, int j,
                               int pad, int64_t *begin, int64_t *end, int64_t *shift)
{
    *begin = (int64_t)oh_lo * W + ow_lo;
    *end = (int64_t)(oh_hi - 1) * W + ow_hi;
    *shift = (int64_t)(i - pad) * W + (j - pad);
}

void NAME(im2col)(const real *x, real *cols, int64_t ld, int64_t images, int C, int H, int W,
                  int kh, int kw, int stride, int pad, int OH, int OW)
{
    int64_t P = (int64_t)OH * OW;
    for (int c = 0; c < C; c++)
        for (int i = 0; i < kh; i++) {
            int oh_lo, oh_hi;
            inside(H, i, stride, pad, OH, &oh_lo, &oh_hi);
            for (int j = 0; j < kw; j++) {
                int ow_lo, ow_hi;
                inside(W, j, stride, pad, OW, &ow_lo, &ow_hi);
                real *row = cols + ((int64_t)(c * kh + i) * kw + j) * ld;
                for (int64_t n = 0; n < images; n++) {
                    const real *plane = x + (n * C + c) * H * W;
                    real *dst = row + n * P;
                    if (stride == 1 && OW == W && oh_lo < oh_hi && ow_lo < ow_hi) {
                        /* ONE contiguous copy of the shifted plane, then the wrapped
                         * entries zeroed. On AlexNet's 6 x 6 maps a copy per row took as
                         * long as the product that follows (mini conv4, one thread:
                         * 3.8 -> 2.2 ms). */
                        int64_t begin, end, shift;
                        shifted_run(oh_lo, oh_hi, ow_lo, ow_hi, W, i, j, pad, &begin, &end,
                                    &shift);
                        for (int64_t t = 0; t < begin; t++) dst[t] = 0;
                        memcpy(dst + begin, plane + begin + shift, sizeof(real) * (end - begin));
                        for (int64_t t = end; t < P; t++) dst[t] = 0;
                        for (int oh = oh_lo; oh < oh_hi; oh++) {
                            for (int ow = 0; ow < ow_lo; ow++) dst[oh * OW + ow] = 0;
                            for (int ow = ow_hi; ow < OW; ow++) dst[oh * OW + ow] = 0;
                        }
                        continue;
                    }
                    for (int oh = 0; oh < OH; oh++) {
                        real *d = dst + oh * OW;
                        if (oh < oh_lo || oh >= oh_hi) {
                            for (int ow = 0; ow < OW; ow++) d[ow] = 0;
                            continue;
                        }
                        const real *src = plane + (oh * stride + i - pad) * W + j - pad;
                        for (int ow = 0; ow < ow_lo; ow++) d[ow] = 0;
                        if (stride == 1)
                            memcpy(d + ow_lo, src + ow_lo, sizeof(real) * (ow_hi - ow_lo));
                        else
                            for (int ow = ow_lo; ow < ow_hi; ow++) d[ow] = src[ow * stride];
                        for (int ow = ow_hi; ow < OW; ow++) d[ow] = 0;
                    }
                }
            }
        }
}

/* The adjoint: dx[n, c, h, w] = sum of the cols entries that im2col copied from (h, w).
 * dx: `images` images, image n's channel c at dx + n * image_stride + c * H * W (dx may be a
 * group's channels inside a bigger array). One (H, W) plane at a time: it stays in L1 while
 * its kh * kw rows of cols are added in. With stride 1 and rows as long as the image's (as in
 * im2col: shifted_run), each row of cols is added as one contiguous sweep at a fixed offset, the
 * entries that wrapped around a row's end masked out (inside_j[j * P + t]: 1 where column t of
 * window position j falls inside the image): on 6 x 6 maps a loop per row of six was mostly
 * loop overhead. Returns -1 without memory for the masks, else 0. */
int NAME(col2im)(const real *cols, real *dx, int64_t ld, int64_t image_stride, int64_t images,
                 int C, int H, int W, int kh, int kw, int stride, int pad, int OH, int OW)
{
    int64_t P = (int64_t)OH * OW;
    int shifted = stride == 1 && OW == W;
    int32_t *inside_j = shifted ? malloc(sizeof(int32_t) * kw * P) : NULL;
    if (shifted && !inside_j) return -1;
    for (int j = 0; shifted && j < kw; j++) {
        int ow_lo, ow_hi;
        inside(W, j, stride, pad, OW, &ow_lo, &ow_hi);
        for (int64_t t = 0; t < P; t++)
            inside_j[j * P + t] = t % OW >= ow_lo && t % OW < ow_hi;
    }
    for (int64_t n = 0; n < images; n++)
        for (int c = 0; c < C; c++) {
            real *plane = dx + n * image_stride + (int64_t)c * H * W;
            memset(plane, 0, sizeof(real) * H * W);
            for (int i = 0; i < kh; i++) {
                int oh_lo, oh_hi;
                inside(H, i, stride, pad, OH, &oh_lo, &oh_hi);
                for (int j = 0; j < kw; j++) {
                    int ow_lo, ow_hi;
                    inside(W, j, stride, pad, OW, &ow_lo, &ow_hi);
                    const real *row = cols + ((int64_t)(c * kh + i) * kw + j) * ld + n * P;
                    if (shifted) {
                        if (oh_lo >= oh_hi || ow_lo >= ow_hi) continue;
                        int64_t begin, end, shift;
                        shifted_run(oh_lo, oh_hi, ow_lo, ow_hi, W, i, j, pad, &begin, &end,
                                    &shift);
                        real *restrict d = plane + begin + shift;
                        const real *restrict s = row + begin;
                        const int32_t *restrict keep = inside_j + j * P + begin;
                        for (int64_t t = 0; t < end - begin; t++)
                            d[t] += keep[t] ? s[t] : 0;
                        continue;
                    }
                    for (int oh = oh_lo; oh < oh_hi; oh++) {
                        real *restrict d = plane + (oh * stride + i - pad) * W + j - pad;
                        const real *restrict s = row + oh * OW;
                        if (stride == 1)  /* a separate loop, so that it vectorises */
                            for (int ow = ow_lo; ow < ow_hi; ow++) d[ow] += s[ow];
                        else
                            for (int ow = ow_lo; ow < ow_hi; ow++) d[ow * stride] += s[ow];
                    }
                }
            }
        }
    free(inside_j);
    return 0;
}
