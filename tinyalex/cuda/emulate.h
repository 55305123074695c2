// emulate.h -- just enough of CUDA C++ to compile a kernel file with g++ and run it on a CPU.
//
// tinyalex's emulator (see emulator.py) compiles a generated C++ file that includes this
// header, then the unchanged .cu source, then one EMU_KERNEL(name, uses_barrier) line per
// `extern "C" __global__` kernel. The result is a shared library that Python loads with ctypes.
//
// The execution model, and how it maps onto CUDA's:
//
//   CUDA                               here
//   ---------------------------------  ----------------------------------------------------
//   grid of blocks                     blocks run one after another, in x, y, z order
//   threads of a block                 kernels without __syncthreads(): a plain loop that
//                                      calls the kernel once per thread (fast);
//                                      kernels with __syncthreads(): one OS thread per CUDA
//                                      thread, all alive at once, so the barrier is real
//   threadIdx, blockIdx, blockDim,     thread_local globals, set before each call
//   gridDim
//   __shared__ T a[n];                 static T a[n]: one copy, i.e. exactly one block's worth,
//                                      because only one block runs at a time
//   extern __shared__ T a[];           rewritten by emulator.py into a pointer to a 48 KiB
//                                      buffer (the `shared_mem=` bytes of the launch)
//   __syncthreads()                    a barrier over the block's threads that have not
//                                      returned yet (what the hardware does since Volta)
//   atomicAdd & co.                    std::atomic_ref read-modify-write
//   warp intrinsics (__shfl_*, ...)    not supported: a compile error says so
//
// Kernel parameters arrive as in cuLaunchKernel: an array of pointers, one to each argument
// value. emu::launch unpacks them with the types of the kernel's own signature, and
// emu::signature tells Python those types so that it can check every argument first.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define EMU_ASAN 1
#else
#define EMU_ASAN 0
#endif

// ---- qualifiers: all host code now -----------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __shared__ static
#define __constant__ static const
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
// __restrict__ is already a g++ keyword.

// ---- built-in vector types and index variables -----------------------------------------------
struct uint3 {
    unsigned int x, y, z;
};
struct dim3 {
    unsigned int x, y, z;
    constexpr dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1)
        : x(x_), y(y_), z(z_) {}
};

static thread_local uint3 threadIdx;  // this emulated thread's index inside its block
static thread_local uint3 blockIdx;   // this thread's block inside the grid
static thread_local dim3 blockDim;    // threads per block, as launched
static thread_local dim3 gridDim;     // blocks per grid, as launched
static constexpr int warpSize = 32;

// ---- math: the CUDA names that are not already in <cmath> ------------------------------------
// The fast intrinsics (__expf, __powf, ...) are approximations on a GPU; here they are the
// accurate functions, so the emulator can be *more* accurate than the device, never less.
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __powf(float x, float y) { return std::pow(x, y); }
inline float __fdividef(float x, float y) { return x / y; }
inline float __saturatef(float x) { return std::fmin(std::fmax(x, 0.0f), 1.0f); }
// Round-to-nearest arithmetic that the compiler may not contract into an FMA. g++ for x86-64
// does not contract anyway (no FMA instructions without -mfma), so plain operators suffice.
inline float __fadd_rn(float x, float y) { return x + y; }
inline float __fsub_rn(float x, float y) { return x - y; }
inline float __fmul_rn(float x, float y) { return x * y; }
inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, sizeof f); return f; }
inline int __float_as_int(float f) { int i; std::memcpy(&i, &f, sizeof i); return i; }
template <class T> inline T __ldg(const T* p) { return *p; }  // read-only cache load
// CUDA's overloaded min/max for integers and floats (device code has them unqualified).
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned int min(unsigned int a, unsigned int b) { return a < b ? a : b; }
inline unsigned int max(unsigned int a, unsigned int b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline float min(float a, float b) { return std::fmin(a, b); }
inline float max(float a, float b) { return std::fmax(a, b); }

// ---- atomics: correct both in loop mode (one OS thread) and in barrier mode (many) ----------
template <class T> inline T atomicAdd(T* address, T value) {
    return std::atomic_ref<T>(*address).fetch_add(value);
}
template <class T> inline T atomicSub(T* address, T value) {
    return std::atomic_ref<T>(*address).fetch_sub(value);
}
template <class T> inline T atomicExch(T* address, T value) {
    return std::atomic_ref<T>(*address).exchange(value);
}
template <class T> inline T atomicCAS(T* address, T compare, T value) {
    std::atomic_ref<T>(*address).compare_exchange_strong(compare, value);
    return compare;  // the old value, whether or not the swap happened
}
template <class T> inline T atomicMax(T* address, T value) {
    std::atomic_ref<T> ref(*address);
    T old = ref.load();
    while (old < value && !ref.compare_exchange_weak(old, value)) {
    }
    return old;
}
template <class T> inline T atomicMin(T* address, T value) {
    std::atomic_ref<T> ref(*address);
    T old = ref.load();
    while (value < old && !ref.compare_exchange_weak(old, value)) {
    }
    return old;
}

// ---- what the emulator refuses: warp-level intrinsics need 32 threads in lockstep ------------
template <class... T> struct emu_unsupported : std::false_type {};
#define EMU_UNSUPPORTED(name)                                                                 \
    template <class... T> inline int name(T...) {                                            \
        static_assert(emu_unsupported<T...>::value,                                          \
                      #name " is a warp intrinsic; tinyalex's emulator does not support it"); \
        return 0;                                                                            \
    }
EMU_UNSUPPORTED(__shfl_sync)
EMU_UNSUPPORTED(__shfl_up_sync)
EMU_UNSUPPORTED(__shfl_down_sync)
EMU_UNSUPPORTED(__shfl_xor_sync)
EMU_UNSUPPORTED(__ballot_sync)
EMU_UNSUPPORTED(__any_sync)
EMU_UNSUPPORTED(__all_sync)
EMU_UNSUPPORTED(__syncwarp)

namespace emu {

// Dynamic shared memory (`extern __shared__ T a[];`): one buffer of the default per-block
// limit; the launch says how many bytes of it the kernel may use.
constexpr std::size_t kDynamicSharedBytes = 48 * 1024;
alignas(16) inline unsigned char dynamic_shared[kDynamicSharedBytes];

// The geometry of one launch, filled in by emulator.py (same field order there).
struct Launch {
    unsigned int grid[3];
    unsigned int block[3];
    unsigned long long shared_bytes;
};

// A __syncthreads() barrier for the threads of one block. A thread that returns from the kernel
// leaves the barrier (`leave`), so `if (i >= n) return; ... __syncthreads();` works as on the
// hardware instead of deadlocking.
class BlockBarrier {
  public:
    explicit BlockBarrier(int threads) : alive_(threads) {}
    void sync() {
        std::unique_lock<std::mutex> lock(mutex_);
        const unsigned long long generation = generation_;
        if (++waiting_ == alive_) {
            release();
        } else {
            cv_.wait(lock, [&] { return generation_ != generation; });
        }
    }
    void leave() {
        std::lock_guard<std::mutex> lock(mutex_);
        --alive_;
        if (waiting_ > 0 && waiting_ == alive_) release();
    }

  private:
    void release() {  // called with the mutex held
        waiting_ = 0;
        ++generation_;
        cv_.notify_all();
    }
    std::mutex mutex_;
    std::condition_variable cv_;
    int alive_;
    int waiting_ = 0;
    unsigned long long generation_ = 0;
};

// The barrier of the block this OS thread works for; null in loop mode.
static thread_local BlockBarrier* current_barrier = nullptr;

struct KernelError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

inline std::string& last_error() {
    static std::string message;
    return message;
}

inline void set_index_variables(const Launch& L, unsigned bx, unsigned by, unsigned bz,
                                unsigned tx, unsigned ty, unsigned tz) {
    gridDim = dim3(L.grid[0], L.grid[1], L.grid[2]);
    blockDim = dim3(L.block[0], L.block[1], L.block[2]);
    blockIdx = uint3{bx, by, bz};
    threadIdx = uint3{tx, ty, tz};
}

// Loop mode: every thread of every block is one plain call of the kernel.
template <class Body> void run_as_loop(const Launch& L, Body&& call_kernel) {
    current_barrier = nullptr;
    for (unsigned bz = 0; bz < L.grid[2]; ++bz)
        for (unsigned by = 0; by < L.grid[1]; ++by)
            for (unsigned bx = 0; bx < L.grid[0]; ++bx)
                for (unsigned tz = 0; tz < L.block[2]; ++tz)
                    for (unsigned ty = 0; ty < L.block[1]; ++ty)
                        for (unsigned tx = 0; tx < L.block[0]; ++tx) {
                            set_index_variables(L, bx, by, bz, tx, ty, tz);
                            call_kernel();
                        }
}

// Barrier mode: for each block, one OS thread per CUDA thread, joined before the next block.
template <class Body> void run_with_threads(const Launch& L, Body&& call_kernel) {
    const unsigned threads = L.block[0] * L.block[1] * L.block[2];
    std::mutex error_mutex;
    std::string error;
    for (unsigned bz = 0; bz < L.grid[2]; ++bz)
        for (unsigned by = 0; by < L.grid[1]; ++by)
            for (unsigned bx = 0; bx < L.grid[0]; ++bx) {
                BlockBarrier barrier(static_cast<int>(threads));
                std::vector<std::thread> workers;
                workers.reserve(threads);
                for (unsigned t = 0; t < threads; ++t) {
                    const unsigned tx = t % L.block[0];
                    const unsigned ty = (t / L.block[0]) % L.block[1];
                    const unsigned tz = t / (L.block[0] * L.block[1]);
                    workers.emplace_back([&, tx, ty, tz] {
                        set_index_variables(L, bx, by, bz, tx, ty, tz);
                        current_barrier = &barrier;
                        try {
                            call_kernel();
                        } catch (const std::exception& e) {
                            std::lock_guard<std::mutex> lock(error_mutex);
                            if (error.empty()) error = e.what();
                        }
                        barrier.leave();
                    });
                }
                for (auto& worker : workers) worker.join();
                if (!error.empty()) throw KernelError(error);
            }
}

// Unpack the cuLaunchKernel-style argument array with the kernel's own parameter types.
template <class... A, std::size_t... I>
std::tuple<A...> unpack_args(void** args, std::index_sequence<I...>) {
    return std::tuple<A...>(*static_cast<std::remove_reference_t<A>*>(args[I])...);
}

template <class... A>
int launch(void (*kernel)(A...), bool uses_barrier, const Launch& L, void** args) {
    const std::tuple<A...> params = unpack_args<A...>(args, std::index_sequence_for<A...>{});
    auto call_kernel = [&] { std::apply(kernel, params); };
#if EMU_ASAN
    // Only the first shared_bytes of the dynamic shared buffer belong to this launch.
    ASAN_POISON_MEMORY_REGION(dynamic_shared + L.shared_bytes,
                              kDynamicSharedBytes - L.shared_bytes);
#endif
    int status = 0;
    try {
        if (uses_barrier)
            run_with_threads(L, call_kernel);
        else
            run_as_loop(L, call_kernel);
    } catch (const std::exception& e) {
        last_error() = e.what();
        status = 1;
    }
#if EMU_ASAN
    ASAN_UNPOISON_MEMORY_REGION(dynamic_shared, kDynamicSharedBytes);
#endif
    return status;
}

// ---- the kernel signature, as text for Python: e.g. "const float*,float*,int,float" ----------
template <class T> constexpr const char* scalar_name() {
    using U = std::remove_cv_t<T>;
    if constexpr (std::is_same_v<U, float>) return "float";
    else if constexpr (std::is_same_v<U, double>) return "double";
    else if constexpr (std::is_same_v<U, int>) return "int";
    else if constexpr (std::is_same_v<U, unsigned int>) return "unsigned int";
    else if constexpr (std::is_same_v<U, long long> || std::is_same_v<U, long>) return "long long";
    else if constexpr (std::is_same_v<U, unsigned long long> || std::is_same_v<U, unsigned long>)
        return "unsigned long long";
    else if constexpr (std::is_same_v<U, signed char>) return "signed char";
    else if constexpr (std::is_same_v<U, unsigned char>) return "unsigned char";
    else if constexpr (std::is_same_v<U, short>) return "short";
    else if constexpr (std::is_same_v<U, bool>) return "bool";
    else static_assert(sizeof(T) == 0, "kernel parameter type not supported by the emulator");
}

template <class A> std::string param_name() {
    if constexpr (std::is_pointer_v<A>) {
        using Pointee = std::remove_pointer_t<A>;
        return std::string(std::is_const_v<Pointee> ? "const " : "") + scalar_name<Pointee>() +
               "*";
    } else {
        return scalar_name<A>();
    }
}

template <class... A> std::string signature(void (*)(A...)) {
    std::string text;
    ((text += (text.empty() ? "" : ",") + param_name<A>()), ...);
    return text;
}

}  // namespace emu

// __syncthreads(): the block barrier in barrier mode. In loop mode there is no barrier to wait
// at; that only happens when emulator.py's scan for __syncthreads missed a call (e.g. one hidden
// in a macro), so it is an error rather than a silent wrong answer.
inline void __syncthreads() {
    if (emu::current_barrier != nullptr) {
        emu::current_barrier->sync();
    } else if (blockDim.x * blockDim.y * blockDim.z > 1) {
        throw emu::KernelError(
            "__syncthreads() reached in loop mode: the emulator did not see this kernel use "
            "__syncthreads (is it hidden in a macro?)");
    }
}

// One per kernel, generated by emulator.py after the .cu source:
//   int emu_launch_<name>(const emu::Launch*, void** args)  -> 0, or 1 with emu_last_error()
//   const char* emu_signature_<name>()                      -> the parameter types as text
#define EMU_KERNEL(name, uses_barrier)                                               \
    extern "C" int emu_launch_##name(const emu::Launch* launch, void** args) {      \
        return emu::launch(name, uses_barrier, *launch, args);                      \
    }                                                                               \
    extern "C" const char* emu_signature_##name() {                                 \
        static const std::string text = emu::signature(name);                       \
        return text.c_str();                                                        \
    }

extern "C" const char* emu_last_error() { return emu::last_error().c_str(); }
