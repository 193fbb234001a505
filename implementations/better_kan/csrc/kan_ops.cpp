// better_kan's native CPU kernels: a whole KAN layer as one operator forward and one backward.
//
// Operators (namespace better_kan; schemas at the bottom):
//
//   kan_linear(x, weight, bias?, a, b, basis, order, base) -> y
//       the layer, differentiable (one C++ autograd node); dispatches to the two below
//   kan_linear_forward(...) -> (y, features)   y (batch, out) contiguous; features (in, n + 1, batch)
//   kan_linear_reference(...) -> y
//       the same function in plain PyTorch ops (better_kan/reference.py, registered from Python):
//       the backward differentiates it when a graph of the gradient is asked for (create_graph)
//   kan_linear_backward(grad_y, x, weight, features, a, b, basis, order, base, output_mask)
//       -> (grad_x, grad_weight, grad_bias, grad_a, grad_b)
//   kan_network(x, weights[], biases[], a[], b[], bases_csv, orders[], base_csv) -> y
//       a whole network of L such layers as one operator forward and one backward (one C++
//       autograd node): layer l's output is layer l + 1's input; biases[l] is a 0-element tensor
//       for a layer without one; bases_csv / base_csv name each layer's basis and base activation,
//       comma-separated. The intermediate activations and features stay in the node; no Python
//       runs between layers. Each layer goes through kan_linear_forward / _backward, so every
//       device those have kernels for (CPU here, CUDA through Triton) serves the network too.
//
// Shapes: x (batch, in); weight (out, in, n + 1) with weight[q, p, :n] the basis coefficients
// and weight[q, p, n] the base weight; bias (out) or None; features (batch, in, n + 1).
// ``basis`` names the univariate functions of input p:
//
//   "bspline_uniform"   B-splines of degree ``order`` on uniform knots, in closed form:
//                       B_i(x) = M_k(z), z = x * a[p, i] + b[p, i]  (a, b: (in, n))
//   "bspline"           B-splines of degree ``order`` on any knots by Cox-de Boor:
//                       a = knots (in, n + order + 1), b unused
//   an RBF kernel       phi(z), z = x * a[p, i] + b[p, i] (a = 1/width, b = -center/width):
//                       gaussian, inverse_quadratic, multiquadric, inverse_multiquadric,
//                       matern32, matern52
//
// and ``base`` the base activation (silu, identity, zero, gelu, tanh). Conventions follow
// better_kan/basis.py exactly (half-open knot intervals; the derivative of (c)_+^0 is the
// indicator of c > 0; sign(0) = 0), so this path and the PyTorch path agree to rounding.
//
// The contraction with the weight is one GEMM each way (at::addmm / at::mm); the elementwise
// work (basis values forward, basis derivatives backward) is one pass over (batch, in) rows,
// vectorizable inner loops over the n basis functions, threaded by at::parallel_for when the
// batch is large enough to pay for the threads.

#include <Python.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/autograd_not_implemented_fallback.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>
#if __has_include(<bit>)
#include <bit>
#endif

// the sha256 of this file, set by setup.py (better_kan.native compares it with the source beside it)
#ifndef BETTER_KAN_SOURCE_SHA256
#define BETTER_KAN_SOURCE_SHA256 unknown
#endif
#define BETTER_KAN_STR2(x) #x
#define BETTER_KAN_STR(x) BETTER_KAN_STR2(x)

namespace better_kan {
namespace {

// the codes of better_kan/reference.py's BASES and BASE_ACTIVATION_CODES, in that order
enum class Basis { kUniform, kCoxDeBoor, kGaussian, kInverseQuadratic, kMultiquadric, kInverseMultiquadric, kMatern32, kMatern52 };
enum class Base { kSilu, kIdentity, kZero, kGelu, kTanh };

Basis parse_basis(c10::string_view name) {
  if (name == "bspline_uniform") return Basis::kUniform;
  if (name == "bspline") return Basis::kCoxDeBoor;
  if (name == "gaussian") return Basis::kGaussian;
  if (name == "inverse_quadratic") return Basis::kInverseQuadratic;
  if (name == "multiquadric") return Basis::kMultiquadric;
  if (name == "inverse_multiquadric") return Basis::kInverseMultiquadric;
  if (name == "matern32") return Basis::kMatern32;
  if (name == "matern52") return Basis::kMatern52;
  TORCH_CHECK(false, "better_kan: unknown basis '", std::string(name), "'");
}

Base parse_base(c10::string_view name) {
  if (name == "silu") return Base::kSilu;
  if (name == "identity") return Base::kIdentity;
  if (name == "zero") return Base::kZero;
  if (name == "gelu") return Base::kGelu;
  if (name == "tanh") return Base::kTanh;
  TORCH_CHECK(false, "better_kan: unknown base activation '", std::string(name), "'");
}

// ---------------------------------------------------------------- base activations (ATen's vectorized kernels)

// out = base(x), x and out (in, batch) (out may be a strided view)
void base_forward(Base base, const at::Tensor& x, at::Tensor out) {
  switch (base) {
    case Base::kSilu: at::silu_out(out, x); break;
    case Base::kIdentity: out.copy_(x); break;
    case Base::kZero: out.zero_(); break;
    case Base::kGelu: out.copy_(at::gelu(x)); break;  // gelu_out into this strided view writes garbage in float32
    case Base::kTanh: at::tanh_out(out, x); break;
  }
}

// base'(x) * grad
at::Tensor base_backward(Base base, const at::Tensor& grad, const at::Tensor& x) {
  switch (base) {
    case Base::kSilu: return at::silu_backward(grad, x);
    case Base::kIdentity: return grad;
    case Base::kZero: return at::zeros_like(grad);
    case Base::kGelu: return at::gelu_backward(grad, x);
    case Base::kTanh: return at::tanh_backward(grad, at::tanh(x));
  }
  return at::zeros_like(grad);
}

// ---------------------------------------------------------------- closed-form uniform B-splines
//
// M_k(z) = sum_j w_j (s_j - |z|)_+^k with s_j = (k+1)/2 - j, w_j = (-1)^j C(k+1, j) / k!,
// j < ceil((k+1)/2); M_k'(z) = -sign(z) sum_j k w_j (s_j - |z|)_+^(k-1).

struct CardinalTerms {
  int k = 0;
  int count = 0;
  double shift[16];
  double weight[16];
};

CardinalTerms cardinal_terms(int64_t k) {
  TORCH_CHECK(k >= 0 && k <= 30, "better_kan: spline order must be in 0..30, got ", k);
  CardinalTerms t;
  t.k = static_cast<int>(k);
  t.count = static_cast<int>((k + 2) / 2);  // ceil((k+1)/2)
  double fact = 1.0;
  for (int i = 2; i <= k; ++i) fact *= i;
  for (int j = 0; j < t.count; ++j) {
    double binom = 1.0;
    for (int i = 0; i < j; ++i) binom = binom * (k + 1 - i) / (i + 1);
    t.shift[j] = (k + 1) / 2.0 - j;
    t.weight[j] = ((j % 2) ? -1.0 : 1.0) * binom / fact;
  }
  return t;
}

// branch-free max(v, 0) and |v|, so the batch loops vectorize; NaN stays NaN (as clamp_min in PyTorch)
template <typename T>
inline T positive_part(T v) {
  return v < T(0) ? T(0) : v;
}

template <typename T>
inline T magnitude(T v) {
  return v < T(0) ? -v : v;
}

template <typename T>
inline T ipow(T c, int e) {
  T r = T(1);
  for (int i = 0; i < e; ++i) r *= c;
  return r;
}

// K >= 0: the order known at compile time (unrolled); K = -1: the order from ``terms``
template <typename T, int K>
inline T cardinal_value(const CardinalTerms& terms, T z) {
  const int k = K >= 0 ? K : terms.k;
  if (k == 0) return T((z >= T(-0.5)) & (z < T(0.5)));
  T r = magnitude(z);
  if (K == 3) {
    T c0 = positive_part(T(2) - r);
    T c1 = positive_part(T(1) - r);
    return (c0 * c0 * c0 - T(4) * (c1 * c1 * c1)) * T(1.0 / 6.0);
  }
  T out = T(0);
  const int count = K >= 0 ? (K + 2) / 2 : terms.count;
  for (int j = 0; j < count; ++j) {
    T c = positive_part(T(terms.shift[j]) - r);
    out += ipow(c, k) * T(terms.weight[j]);
  }
  return out;
}

template <typename T, int K>
inline T cardinal_derivative(const CardinalTerms& terms, T z) {
  const int k = K >= 0 ? K : terms.k;
  if (k == 0) return T(0);
  T r = magnitude(z);
  if (K == 3) {
    // -sign(z) (c0^2 - 4 c1^2) / 2 with c0^2 - 4 c1^2 = r (4 - 3r) >= 0 on r < 1 and c0^2 on [1, 2]:
    // z's sign bit stands in for sign(z) (no comparisons), and at z = 0 the magnitude is 0 exactly
    T c0 = positive_part(T(2) - r);
    T c1 = positive_part(T(1) - r);
    return -std::copysign(T(0.5) * (c0 * c0 - T(4) * (c1 * c1)), z);
  }
  T sign = T(int(z > T(0)) - int(z < T(0)));
  T slope = T(0);
  const int count = K >= 0 ? (K + 2) / 2 : terms.count;
  for (int j = 0; j < count; ++j) {
    T c = positive_part(T(terms.shift[j]) - r);
    T term = k == 1 ? T(c > T(0)) : ipow(c, k - 1);
    slope += term * T(terms.weight[j] * k);
  }
  return -sign * slope;
}

// ---------------------------------------------------------------- exp() the vectorizer can vectorize
//
// libm's exp is a call the loops cannot vectorize. exp(x) = 2^k e^r with k = round(x / ln 2),
// r = x - k ln 2 (two-part ln 2, Cody-Waite), |r| <= ln(2)/2, e^r by its Taylor polynomial
// (degree 7 in float, 12 in double: truncation below half an ulp), 2^k built in the exponent
// bits. Below the normal range the result is 0 (instead of a subnormal under 1e-38 / 1e-308, which
// no tolerance can see), above the largest finite result it is inf, and NaN stays NaN (the integer
// conversion never sees it: that would be undefined behaviour).

template <typename To, typename From>
inline To bits_as(From v) {
#if defined(__cpp_lib_bit_cast)
  return std::bit_cast<To>(v);
#else
  To out;
  std::memcpy(&out, &v, sizeof(To));
  return out;
#endif
}

inline float vexp(float in) {
  const float x = in < -87.0f ? -87.0f : (in > 88.0f ? 88.0f : in);
  const float shifter = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float k = (x * 1.44269504088896341f + shifter) - shifter;
  float r = x - k * 0.693359375f;
  r = r - k * -2.12194440e-4f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(k == k ? k : 0.0f) + 127) << 23;
  const float out = in < -87.0f ? 0.0f : p * bits_as<float>(bits);
  return in > 88.72283905f ? std::numeric_limits<float>::infinity() : out;
}

inline double vexp(double in) {
  const double x = in < -708.0 ? -708.0 : (in > 709.0 ? 709.0 : in);
  const double shifter = 6755399441055744.0;  // 1.5 * 2^52
  const double k = (x * 1.4426950408889634074 + shifter) - shifter;
  double r = x - k * 6.93145751953125e-1;
  r = r - k * 1.42860682030941723212e-6;
  double p = 1.0 / 479001600.0;  // 1/12!
  p = p * r + 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  const int64_t bits = (static_cast<int64_t>(k == k ? k : 0.0) + 1023) << 52;
  const double out = in < -708.0 ? 0.0 : p * bits_as<double>(bits);
  return in > 709.782712893384 ? std::numeric_limits<double>::infinity() : out;
}

// ---------------------------------------------------------------- radial kernels (z: signed scaled distance)

constexpr double kSqrt3 = 1.7320508075688772;
constexpr double kSqrt5 = 2.23606797749979;

template <typename T>
inline T rbf_value(Basis kind, T z) {
  switch (kind) {
    case Basis::kGaussian: return vexp(-(z * z));
    case Basis::kInverseQuadratic: return T(1) / (z * z + T(1));
    case Basis::kMultiquadric: return std::sqrt(z * z + T(1));
    case Basis::kInverseMultiquadric: return T(1) / std::sqrt(z * z + T(1));
    case Basis::kMatern32: {
      const T r = magnitude(z) * T(kSqrt3);
      return vexp(-r) * (r + T(1));
    }
    case Basis::kMatern52: {
      const T r = magnitude(z) * T(kSqrt5);
      return vexp(-r) * (r * r / T(3) + r + T(1));
    }
    default: return T(0);
  }
}

// dphi/dz from z and phi(z)
template <typename T>
inline T rbf_derivative(Basis kind, T z, T phi) {
  switch (kind) {
    case Basis::kGaussian: return z * phi * T(-2);
    case Basis::kInverseQuadratic: return z * (phi * phi) * T(-2);
    case Basis::kMultiquadric: return z / phi;
    case Basis::kInverseMultiquadric: return -z * (phi * phi * phi);
    case Basis::kMatern32: return z * (phi / (magnitude(z) * T(kSqrt3) + T(1))) * T(-3);
    case Basis::kMatern52: {
      T r = magnitude(z) * T(kSqrt5);
      return z * (phi * (r + T(1)) / (r * r / T(3) + r + T(1))) * T(-5.0 / 3.0);
    }
    default: return T(0);
  }
}

// ---------------------------------------------------------------- batch rows: the vectorized inner loops
//
// One function per inner loop over the batch, inlined into loops over blocks of rows that are
// compiled for AVX-512, AVX2 and the baseline and picked at load time (GCC/Clang target_clones on
// x86-64 Linux); elsewhere, the baseline only.

#if defined(__x86_64__) && defined(__linux__) && ((defined(__GNUC__) && __GNUC__ >= 12 && !defined(__clang__)) || (defined(__clang__) && __clang_major__ >= 14))
#define BETTER_KAN_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define BETTER_KAN_CLONES
#endif
// a row is inlined into the cloned loop over rows that calls it: one dispatched call per block of
// rows, not per row (a call per 32-element row cost more than the row's arithmetic)
#if defined(__GNUC__) || defined(__clang__)
#define BETTER_KAN_ROW inline __attribute__((always_inline))
#else
#define BETTER_KAN_ROW inline
#endif

// out[s] = M_k(x[s] a + b)
template <typename T, int K>
BETTER_KAN_ROW void spline_row(const T* __restrict x, T* __restrict out, int64_t len, T a, T b, const CardinalTerms& terms) {
#pragma omp simd
  for (int64_t s = 0; s < len; ++s) out[s] = cardinal_value<T, K>(terms, x[s] * a + b);
}

// d[s] = M_k'(z_s) g[s] (when d), gx[s] += M_k'(z_s) a g[s]
template <typename T, int K>
BETTER_KAN_ROW void spline_grad_row(const T* __restrict x, const T* __restrict g, T* __restrict gx, T* __restrict d, int64_t len, T a,
                                       T b, const CardinalTerms& terms) {
  if (d != nullptr) {
#pragma omp simd
    for (int64_t s = 0; s < len; ++s) {
      d[s] = cardinal_derivative<T, K>(terms, x[s] * a + b) * g[s];
      gx[s] += d[s] * a;
    }
  } else {
#pragma omp simd
    for (int64_t s = 0; s < len; ++s) gx[s] += cardinal_derivative<T, K>(terms, x[s] * a + b) * a * g[s];
  }
}

// out[s] = phi(x[s] a + b)
template <typename T, Basis kind>
BETTER_KAN_ROW void rbf_row(const T* __restrict x, T* __restrict out, int64_t len, T a, T b) {
#pragma omp simd
  for (int64_t s = 0; s < len; ++s) out[s] = rbf_value(kind, x[s] * a + b);
}

template <typename T, Basis kind>
BETTER_KAN_ROW void rbf_grad_row(const T* __restrict x, const T* __restrict phi, const T* __restrict g, T* __restrict gx,
                                    T* __restrict d, int64_t len, T a, T b) {
  if (d != nullptr) {
#pragma omp simd
    for (int64_t s = 0; s < len; ++s) {
      d[s] = rbf_derivative(kind, x[s] * a + b, phi[s]) * g[s];
      gx[s] += d[s] * a;
    }
  } else {
#pragma omp simd
    for (int64_t s = 0; s < len; ++s) gx[s] += rbf_derivative(kind, x[s] * a + b, phi[s]) * g[s] * a;
  }
}

// the base branch: out[s] = silu(x[s]) = x / (1 + e^-x), and gx[s] += silu'(x[s]) g[s]
template <typename T>
BETTER_KAN_ROW void silu_row(const T* __restrict x, T* __restrict out, int64_t len) {
#pragma omp simd
  for (int64_t s = 0; s < len; ++s) out[s] = x[s] / (T(1) + vexp(-x[s]));
}

template <typename T>
BETTER_KAN_ROW void silu_grad_row(const T* __restrict x, const T* __restrict g, T* __restrict gx, int64_t len) {
#pragma omp simd
  for (int64_t s = 0; s < len; ++s) {
    const T sig = T(1) / (T(1) + vexp(-x[s]));
    gx[s] += sig * (T(1) + x[s] * (T(1) - sig)) * g[s];
  }
}

// ---------------------------------------------------------------- checks

struct Layout {
  int64_t batch, n_in, n_out, n1, n;  // n1 = n + 1 (basis functions + the base branch)
};

Layout check_inputs(const at::Tensor& x, const at::Tensor& weight, const c10::optional<at::Tensor>& bias, const at::Tensor& a,
                    const at::Tensor& b, Basis kind, int64_t order) {
  TORCH_CHECK(x.dim() == 2, "better_kan: x must be (batch, in), got ", x.sizes());
  TORCH_CHECK(weight.dim() == 3 && weight.size(1) == x.size(1), "better_kan: weight must be (out, in, n + 1) with in = ", x.size(1),
              ", got ", weight.sizes());
  TORCH_CHECK(weight.size(2) >= 2, "better_kan: weight needs at least one basis function and the base weight");
  TORCH_CHECK(x.scalar_type() == weight.scalar_type() && a.scalar_type() == x.scalar_type(),
              "better_kan: x, weight and the basis tables must share one dtype");
  Layout l{x.size(0), x.size(1), weight.size(0), weight.size(2), weight.size(2) - 1};
  if (kind == Basis::kCoxDeBoor) {
    TORCH_CHECK(order >= 0, "better_kan: spline order must be >= 0");
    TORCH_CHECK(a.dim() == 2 && a.size(0) == l.n_in && a.size(1) == l.n + order + 1, "better_kan: knots must be (in, n + order + 1) = (",
                l.n_in, ", ", l.n + order + 1, "), got ", a.sizes());
  } else {
    TORCH_CHECK(a.dim() == 2 && a.size(0) == l.n_in && a.size(1) == l.n, "better_kan: a must be (in, n) = (", l.n_in, ", ", l.n,
                "), got ", a.sizes());
    TORCH_CHECK(b.sizes() == a.sizes() && b.scalar_type() == a.scalar_type(), "better_kan: b must match a, got ", b.sizes());
  }
  if (bias.has_value() && bias->defined()) {
    TORCH_CHECK(bias->dim() == 1 && bias->size(0) == l.n_out, "better_kan: bias must be (out,), got ", bias->sizes());
    TORCH_CHECK(bias->scalar_type() == x.scalar_type(), "better_kan: bias must share x's dtype, got ", bias->scalar_type(), " and ",
                x.scalar_type());
  }
  return l;
}

// Work is laid out feature-major -- features (in, n + 1, batch), x transposed to (in, batch) -- so
// every inner loop runs over the batch: long, contiguous, vectorizable, whatever n is.
// Elements per parallel_for task: below that, one thread. BETTER_KAN_GRAIN (read once) overrides
// the default of 65536 -- for measuring what threading small layers costs or saves on a machine.
int64_t work_per_task() {
  static const int64_t value = [] {
    const char* env = std::getenv("BETTER_KAN_GRAIN");
    const long long parsed = env ? std::atoll(env) : 0;
    return parsed > 0 ? static_cast<int64_t>(parsed) : int64_t{65536};
  }();
  return value;
}

int64_t grain_over(int64_t work_per_item) { return std::max<int64_t>(1, work_per_task() / std::max<int64_t>(1, work_per_item)); }

// ---------------------------------------------------------------- Cox-de Boor, vectorized over a block of the batch
//
// level[i * kBlock + s] = B_{i,degree}(x[s]) for i < n_knots - 1 - degree. Half-open intervals
// [t_i, t_{i+1}); a repeated knot's 0/0 term counts as 0 (as basis.cox_de_boor_tables).

constexpr int64_t kBlock = 64;

template <typename T>
inline T safe_inverse(T d) {
  return d > T(0) ? T(1) / d : T(0);
}

template <typename T>
void cox_de_boor_block(const T* t, const int64_t n_knots, const int64_t degree, const T* x, const int64_t len, T* level) {
  for (int64_t i = 0; i < n_knots - 1; ++i) {
    const T lo = t[i], hi = t[i + 1];
    T* li = level + i * kBlock;
#pragma omp simd
    for (int64_t s = 0; s < len; ++s) li[s] = T((x[s] >= lo) & (x[s] < hi));
  }
  for (int64_t p = 1; p <= degree; ++p) {
    for (int64_t i = 0; i < n_knots - 1 - p; ++i) {
      const T inv_l = safe_inverse(t[i + p] - t[i]);
      const T inv_r = safe_inverse(t[i + p + 1] - t[i + 1]);
      const T b_l = -t[i] * inv_l, b_r = t[i + p + 1] * inv_r;
      T* li = level + i * kBlock;
      const T* next = li + kBlock;
#pragma omp simd
      for (int64_t s = 0; s < len; ++s) li[s] = (x[s] * inv_l + b_l) * li[s] + (b_r - x[s] * inv_r) * next[s];
    }
  }
}

// calls fn(p, s0, len) for every (input, batch block), in parallel
template <typename F>
void for_each_block(const Layout& l, int64_t work_per_block, const F& fn) {
  const int64_t blocks = (l.batch + kBlock - 1) / kBlock;
  at::parallel_for(0, l.n_in * blocks, grain_over(work_per_block), [&](int64_t lo, int64_t hi) {
    for (int64_t job = lo; job < hi; ++job) {
      const int64_t p = job / blocks, s0 = (job % blocks) * kBlock;
      fn(p, s0, std::min(kBlock, l.batch - s0));
    }
  });
}

// x (rows, cols) -> (cols, rows), contiguous (a plain loop: cheaper than a dispatched copy at these sizes)
at::Tensor transposed(const at::Tensor& x) {
  if (x.t().is_contiguous()) return x.t();  // already laid out that way: a view
  at::Tensor out = at::empty({x.size(1), x.size(0)}, x.options());
  if (x.numel() > (int64_t(1) << 16)) return out.copy_(x.t());
  at::Tensor xc = x.contiguous();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "better_kan::transposed", [&] {
    const scalar_t* src = xc.data_ptr<scalar_t>();
    scalar_t* dst = out.data_ptr<scalar_t>();
    const int64_t rows = x.size(0), cols = x.size(1);
    for (int64_t p = 0; p < cols; ++p)
      for (int64_t s = 0; s < rows; ++s) dst[p * rows + s] = src[s * cols + p];
  });
  return out;
}

// ---------------------------------------------------------------- small products
//
// A layer's three products -- y^T = W F (forward), dL/dF = W^T dL/dy^T and dL/dW = dL/dy^T F^T
// (backward), W (out, in * (n + 1)), F (in * (n + 1), batch) -- are small where a call's fixed
// cost matters: 150 x 18 x 32 and 1 x 1350 x 32 multiply-adds at the seed workload. There a BLAS
// call, its threads and its transposed operands cost several times the arithmetic (5-10 us a
// product, measured), so up to kSmallProduct multiply-adds they run as the plain loops below:
// over the batch, contiguous and vectorized like the basis rows, threaded over output rows only
// when the rows' work pays for a thread. Above it, BLAS.

constexpr int64_t kSmallProduct = int64_t(1) << 18;
// from this many outputs on, dL/dW is computed as rows over the outputs (else one dot product per weight)
constexpr int64_t kWeightGradByOutputs = 16;

bool small_product(const Layout& l) { return l.n_out * l.n_in * l.n1 * l.batch <= kSmallProduct; }

// out[r, s0:] of combine_rows, one row
template <typename T>
BETTER_KAN_ROW void combine_tail(const T* __restrict coef, int64_t rs, int64_t js, const T* __restrict in, int64_t count, int64_t len,
                                 const T* __restrict init, T* __restrict out, int64_t r, int64_t s0) {
  T* __restrict acc = out + r * len;
  const T start = init != nullptr ? init[r] : T(0);
#pragma omp simd
  for (int64_t s = s0; s < len; ++s) acc[s] = start;
  for (int64_t j = 0; j < count; ++j) {
    const T c = coef[r * rs + j * js];
    const T* __restrict row = in + j * len;
#pragma omp simd
    for (int64_t s = s0; s < len; ++s) acc[s] += c * row[s];
  }
}

// rows [r, r + R) of combine_rows over the batch's whole vectors (16 floats, 8 doubles each): the R
// sums of a vector stay in registers across j; returns where the whole vectors end
template <int R, typename T>
BETTER_KAN_ROW int64_t combine_block(const T* __restrict coef, int64_t rs, int64_t js, const T* __restrict in, int64_t count, int64_t len,
                                     const T* __restrict init, T* __restrict out, int64_t r) {
  constexpr int64_t V = 64 / sizeof(T);
  int64_t s0 = 0;
  for (; s0 + V <= len; s0 += V) {
    T acc[R][V];
    for (int q = 0; q < R; ++q) {
      const T start = init != nullptr ? init[r + q] : T(0);
#pragma omp simd
      for (int64_t t = 0; t < V; ++t) acc[q][t] = start;
    }
    for (int64_t j = 0; j < count; ++j) {
      const T* __restrict row = in + j * len + s0;
      for (int q = 0; q < R; ++q) {
        const T w = coef[(r + q) * rs + j * js];
#pragma omp simd
        for (int64_t t = 0; t < V; ++t) acc[q][t] += w * row[t];
      }
    }
    for (int q = 0; q < R; ++q)
#pragma omp simd
      for (int64_t t = 0; t < V; ++t) out[(r + q) * len + s0 + t] = acc[q][t];
  }
  return s0;
}

// one row of combine_rows over the batch's whole vectors: four partial sums over j (j mod 4), so that
// a long sum is not one chain of dependent multiply-adds; returns where the whole vectors end
template <typename T>
BETTER_KAN_ROW int64_t combine_one(const T* __restrict coef, int64_t rs, int64_t js, const T* __restrict in, int64_t count, int64_t len,
                                   const T* __restrict init, T* __restrict out, int64_t r) {
  constexpr int64_t V = 64 / sizeof(T);
  int64_t s0 = 0;
  const T* c = coef + r * rs;
  for (; s0 + V <= len; s0 += V) {
    T part[4][V] = {};
    int64_t j = 0;
    for (; j + 4 <= count; j += 4)
      for (int q = 0; q < 4; ++q) {
        const T w = c[(j + q) * js];
        const T* __restrict row = in + (j + q) * len + s0;
#pragma omp simd
        for (int64_t t = 0; t < V; ++t) part[q][t] += w * row[t];
      }
    for (; j < count; ++j) {
      const T w = c[j * js];
      const T* __restrict row = in + j * len + s0;
#pragma omp simd
      for (int64_t t = 0; t < V; ++t) part[0][t] += w * row[t];
    }
    const T start = init != nullptr ? init[r] : T(0);
#pragma omp simd
    for (int64_t t = 0; t < V; ++t) out[r * len + s0 + t] = start + ((part[0][t] + part[1][t]) + (part[2][t] + part[3][t]));
  }
  return s0;
}

// out[r, :] = init[r] + sum_j coef[r * rs + j * js] in[j, :] for rows r in [r0, r1); in (count, len).
// Four rows at a time, then one.
template <typename T>
BETTER_KAN_CLONES void combine_rows(const T* __restrict coef, int64_t rs, int64_t js, const T* __restrict in, int64_t count,
                                    int64_t len, const T* __restrict init, T* __restrict out, int64_t r0, int64_t r1) {
  int64_t r = r0;
  for (; r + 4 <= r1; r += 4) {
    const int64_t s0 = combine_block<4>(coef, rs, js, in, count, len, init, out, r);
    for (int64_t q = 0; q < 4 && s0 < len; ++q) combine_tail(coef, rs, js, in, count, len, init, out, r + q, s0);
  }
  for (; r < r1; ++r) {
    const int64_t s0 = combine_one(coef, rs, js, in, count, len, init, out, r);
    if (s0 < len) combine_tail(coef, rs, js, in, count, len, init, out, r, s0);
  }
}

// out[r, j] = <u[r, :], v[j, :]> for rows r in [r0, r1), j < nv; u (rows, len), v (nv, len); four
// v rows at a time (four independent sums)
template <typename T>
BETTER_KAN_CLONES void dot_rows(const T* __restrict u, const T* __restrict v, int64_t nv, int64_t len, T* __restrict out, int64_t r0,
                                int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    const T* __restrict ur = u + r * len;
    int64_t j = 0;
    for (; j + 4 <= nv; j += 4) {
      const T *__restrict v0 = v + j * len, *__restrict v1 = v0 + len, *__restrict v2 = v1 + len, *__restrict v3 = v2 + len;
      T s0 = T(0), s1 = T(0), s2 = T(0), s3 = T(0);
#pragma omp simd reduction(+ : s0, s1, s2, s3)
      for (int64_t s = 0; s < len; ++s) {
        s0 += ur[s] * v0[s];
        s1 += ur[s] * v1[s];
        s2 += ur[s] * v2[s];
        s3 += ur[s] * v3[s];
      }
      out[r * nv + j] = s0;
      out[r * nv + j + 1] = s1;
      out[r * nv + j + 2] = s2;
      out[r * nv + j + 3] = s3;
    }
    for (; j < nv; ++j) {
      const T* __restrict vj = v + j * len;
      T sum = T(0);
#pragma omp simd reduction(+ : sum)
      for (int64_t s = 0; s < len; ++s) sum += ur[s] * vj[s];
      out[r * nv + j] = sum;
    }
  }
}

// rows of the output in parallel, each row's work = work_per_row multiply-adds
template <typename F>
void over_rows(int64_t rows, int64_t work_per_row, const F& fn) {
  at::parallel_for(0, rows, std::max<int64_t>(1, 8 * work_per_task() / std::max<int64_t>(1, work_per_row)), fn);
}

// y (batch, out) = (W F)^T + bias, F = features (in * (n + 1), batch) -- small products only
template <typename T>
void small_forward_product(const Layout& l, const T* w, const T* f, const T* bias, T* yt) {
  const int64_t k = l.n_in * l.n1;
  over_rows(l.n_out, k * l.batch, [&](int64_t lo, int64_t hi) { combine_rows<T>(w, k, 1, f, k, l.batch, bias, yt, lo, hi); });
}

// dL/dF (in * (n + 1), batch) = W^T dL/dy^T, gyt = dL/dy^T (out, batch)
template <typename T>
void small_features_grad(const Layout& l, const T* w, const T* gyt, T* gf) {
  const int64_t k = l.n_in * l.n1;
  over_rows(k, l.n_out * l.batch, [&](int64_t lo, int64_t hi) { combine_rows<T>(w, 1, k, gyt, l.n_out, l.batch, nullptr, gf, lo, hi); });
}

// dL/dW (out, in * (n + 1)) = dL/dy^T F^T, and dL/dbias (out) = the rows' sums of dL/dy^T. With
// many outputs, as rows of dL/dW^T over the outputs (gy = dL/dy (batch, out), contiguous), then
// transposed: long vectorized rows instead of one short dot product per weight.
template <typename T>
void small_weight_grad(const Layout& l, const T* gy, const T* gyt, const T* f, T* gw, T* gbias) {
  const int64_t k = l.n_in * l.n1;
  if (gw != nullptr && l.n_out >= kWeightGradByOutputs) {
    std::vector<T> gwt(k * l.n_out);
    over_rows(k, l.n_out * l.batch, [&](int64_t lo, int64_t hi) { combine_rows<T>(f, l.batch, 1, gy, l.batch, l.n_out, nullptr, gwt.data(), lo, hi); });
    for (int64_t o = 0; o < l.n_out; ++o)
      for (int64_t j = 0; j < k; ++j) gw[o * k + j] = gwt[j * l.n_out + o];
  } else if (gw != nullptr) {
    over_rows(l.n_out, k * l.batch, [&](int64_t lo, int64_t hi) { dot_rows<T>(gyt, f, k, l.batch, gw, lo, hi); });
  }
  if (gbias != nullptr)
    for (int64_t o = 0; o < l.n_out; ++o) {
      T sum = T(0);
      for (int64_t s = 0; s < l.batch; ++s) sum += gyt[o * l.batch + s];
      gbias[o] = sum;
    }
}

// ---------------------------------------------------------------- features (forward): f (in, n + 1, batch)

// rows [lo, hi) of the (in * n) basis rows, row pi = p * n + i
template <typename T, int K>
BETTER_KAN_CLONES void spline_rows(const Layout& l, const T* xt, const T* a, const T* b, const CardinalTerms& terms, T* f, int64_t lo,
                                   int64_t hi) {
  for (int64_t pi = lo, p = lo / l.n, i = lo % l.n; pi < hi; ++pi) {
    spline_row<T, K>(xt + p * l.batch, f + (p * l.n1 + i) * l.batch, l.batch, a[pi], b[pi], terms);
    if (++i == l.n) i = 0, ++p;
  }
}

template <typename T, int K>
void uniform_features(const Layout& l, const T* xt, const T* a, const T* b, const CardinalTerms& terms, T* f) {
  at::parallel_for(0, l.n_in * l.n, grain_over(l.batch), [&](int64_t lo, int64_t hi) {
    const CardinalTerms local_terms = terms;
    spline_rows<T, K>(l, xt, a, b, local_terms, f, lo, hi);
  });
}

template <typename T, Basis kind>
BETTER_KAN_CLONES void rbf_rows(const Layout& l, const T* xt, const T* a, const T* b, T* f, int64_t lo, int64_t hi) {
  for (int64_t pi = lo, p = lo / l.n, i = lo % l.n; pi < hi; ++pi) {
    rbf_row<T, kind>(xt + p * l.batch, f + (p * l.n1 + i) * l.batch, l.batch, a[pi], b[pi]);
    if (++i == l.n) i = 0, ++p;
  }
}

template <typename T, Basis kind>
void rbf_features_of(const Layout& l, const T* xt, const T* a, const T* b, T* f) {
  at::parallel_for(0, l.n_in * l.n, grain_over(l.batch), [&](int64_t lo, int64_t hi) { rbf_rows<T, kind>(l, xt, a, b, f, lo, hi); });
}

// the base branch's rows (silu, identity, zero) of inputs [lo, hi): features[p, n, :]
template <typename T>
BETTER_KAN_CLONES void base_rows(const Layout& l, Base base, const T* xt, T* f, int64_t lo, int64_t hi) {
  for (int64_t p = lo; p < hi; ++p) {
    T* out = f + (p * l.n1 + l.n) * l.batch;
    const T* xp = xt + p * l.batch;
    if (base == Base::kSilu) {
      silu_row<T>(xp, out, l.batch);
    } else if (base == Base::kIdentity) {
      std::copy(xp, xp + l.batch, out);
    } else {
      std::fill(out, out + l.batch, T(0));
    }
  }
}

// the kernel as a template argument: branch-free inner loops
template <typename T>
void rbf_features(const Layout& l, const T* xt, const T* a, const T* b, Basis kind, T* f) {
  switch (kind) {
    case Basis::kGaussian: return rbf_features_of<T, Basis::kGaussian>(l, xt, a, b, f);
    case Basis::kInverseQuadratic: return rbf_features_of<T, Basis::kInverseQuadratic>(l, xt, a, b, f);
    case Basis::kMultiquadric: return rbf_features_of<T, Basis::kMultiquadric>(l, xt, a, b, f);
    case Basis::kInverseMultiquadric: return rbf_features_of<T, Basis::kInverseMultiquadric>(l, xt, a, b, f);
    case Basis::kMatern32: return rbf_features_of<T, Basis::kMatern32>(l, xt, a, b, f);
    case Basis::kMatern52: return rbf_features_of<T, Basis::kMatern52>(l, xt, a, b, f);
    default: TORCH_CHECK(false, "better_kan: not a radial kernel");
  }
}

template <typename T>
void cox_features(const Layout& l, const T* xt, const T* knots, int64_t order, T* f) {
  const int64_t n_knots = l.n + order + 1;
  for_each_block(l, kBlock * n_knots * (order + 1), [&](int64_t p, int64_t s0, int64_t len) {
    thread_local std::vector<T> level;
    level.resize(n_knots * kBlock);
    cox_de_boor_block(knots + p * n_knots, n_knots, order, xt + p * l.batch + s0, len, level.data());
    for (int64_t i = 0; i < l.n; ++i) std::copy(level.data() + i * kBlock, level.data() + i * kBlock + len, f + (p * l.n1 + i) * l.batch + s0);
  });
}

// features_out: where the features go -- (in, n + 1, batch) contiguous, a slice of a network's
// workspace (kan_network) -- or undefined (a tensor of their own). contiguous_out = false returns y
// as the transposed view of its feature-major (out, batch) buffer: inside a network that is the next
// layer's layout, so neither side copies (the operator's own outputs are always contiguous).
std::tuple<at::Tensor, at::Tensor> forward_cpu_into(const at::Tensor& x, const at::Tensor& weight, const c10::optional<at::Tensor>& bias,
                                                    const at::Tensor& a_in, const at::Tensor& b_in, c10::string_view basis, int64_t order,
                                                    c10::string_view base_name, const at::Tensor& features_out, bool contiguous_out) {
  const Basis kind = parse_basis(basis);
  const Base base = parse_base(base_name);
  const Layout l = check_inputs(x, weight, bias, a_in, b_in, kind, order);
  at::Tensor xt = transposed(x), a = a_in.contiguous(), b = b_in.contiguous();
  at::Tensor features = features_out.defined() ? features_out : at::empty({l.n_in, l.n1, l.batch}, x.options());
  TORCH_CHECK(features.is_contiguous() && features.sizes() == at::IntArrayRef({l.n_in, l.n1, l.batch}) &&
                  features.scalar_type() == x.scalar_type(),
              "better_kan: a workspace slice must be contiguous (in, n + 1, batch) of x's dtype");
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "better_kan::kan_linear_forward", [&] {
    const scalar_t* xp = xt.data_ptr<scalar_t>();
    scalar_t* fp = features.data_ptr<scalar_t>();
    if (kind == Basis::kCoxDeBoor) {
      cox_features<scalar_t>(l, xp, a.data_ptr<scalar_t>(), order, fp);
    } else if (kind == Basis::kUniform) {
      const CardinalTerms terms = cardinal_terms(order);
      const scalar_t* ap = a.data_ptr<scalar_t>();
      const scalar_t* bp = b.data_ptr<scalar_t>();
      switch (order) {
        case 1: uniform_features<scalar_t, 1>(l, xp, ap, bp, terms, fp); break;
        case 2: uniform_features<scalar_t, 2>(l, xp, ap, bp, terms, fp); break;
        case 3: uniform_features<scalar_t, 3>(l, xp, ap, bp, terms, fp); break;
        default: uniform_features<scalar_t, -1>(l, xp, ap, bp, terms, fp);
      }
    } else {
      rbf_features<scalar_t>(l, xp, a.data_ptr<scalar_t>(), b.data_ptr<scalar_t>(), kind, fp);
    }
  });
  if (base == Base::kSilu || base == Base::kIdentity || base == Base::kZero) {
    // in the same pass over x as the layout: no ATen call (its fixed cost is most of a small layer's)
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "better_kan::base_forward", [&] {
      const scalar_t* xp = xt.data_ptr<scalar_t>();
      scalar_t* fp = features.data_ptr<scalar_t>();
      at::parallel_for(0, l.n_in, grain_over(l.batch), [&](int64_t lo, int64_t hi) { base_rows<scalar_t>(l, base, xp, fp, lo, hi); });
    });
  } else {
    base_forward(base, xt, features.select(1, l.n));
  }
  // y^T = W (out, in * (n + 1)) @ F^T: a plain GEMM on the feature-major F (BLAS is 3-5x slower
  // on F^T^T @ W^T at these sizes), then y = (y^T)^T copied into a contiguous (batch, out): a user
  // can view, reshape and write into y exactly as into the PyTorch path's output
  at::Tensor ft = features.view({l.n_in * l.n1, l.batch});
  const bool has_bias = bias.has_value() && bias->defined();
  if (small_product(l)) {
    at::Tensor w2 = weight.contiguous(), bias_c = has_bias ? bias->contiguous() : at::Tensor();
    at::Tensor yt = at::empty({l.n_out, l.batch}, x.options());
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "better_kan::small_forward_product", [&] {
      small_forward_product<scalar_t>(l, w2.data_ptr<scalar_t>(), ft.data_ptr<scalar_t>(), has_bias ? bias_c.data_ptr<scalar_t>() : nullptr,
                                      yt.data_ptr<scalar_t>());
    });
    return {contiguous_out ? transposed(yt) : yt.t(), features};
  }
  at::Tensor w2 = weight.reshape({l.n_out, l.n_in * l.n1});
  at::Tensor yt = has_bias ? at::addmm(bias->unsqueeze(1), w2, ft) : at::mm(w2, ft);
  return {contiguous_out ? transposed(yt) : yt.t(), features};
}

std::tuple<at::Tensor, at::Tensor> kan_linear_forward_cpu(const at::Tensor& x, const at::Tensor& weight,
                                                          const c10::optional<at::Tensor>& bias, const at::Tensor& a,
                                                          const at::Tensor& b, c10::string_view basis, int64_t order,
                                                          c10::string_view base) {
  return forward_cpu_into(x, weight, bias, a, b, basis, order, base, at::Tensor(), true);
}

// ---------------------------------------------------------------- backward
//
// gxt (in, batch): sum_i phi'(z_i) a_i gF_i (the base branch is added with ATen after);
// dz (in, n, batch), when given: phi'(z_i) gF_i (for the gradients of a and b)

// inputs [lo, hi): gxt[p] = sum_i M_k'(z) a g, dz[p, i] = M_k'(z) g (when dz)
template <typename T, int K>
BETTER_KAN_CLONES void spline_grad_rows(const Layout& l, const T* xt, const T* a, const T* b, const CardinalTerms& terms, const T* gf,
                                        T* gxt, T* dz, int64_t lo, int64_t hi) {
  for (int64_t p = lo; p < hi; ++p) {
    T* gx = gxt + p * l.batch;
    std::fill(gx, gx + l.batch, T(0));
    for (int64_t i = 0; i < l.n; ++i) {
      const int64_t pi = p * l.n + i;
      spline_grad_row<T, K>(xt + p * l.batch, gf + (p * l.n1 + i) * l.batch, gx, dz != nullptr ? dz + pi * l.batch : nullptr, l.batch,
                            a[pi], b[pi], terms);
    }
  }
}

template <typename T, int K>
void uniform_backward(const Layout& l, const T* xt, const T* a, const T* b, const CardinalTerms& terms, const T* gf, T* gxt, T* dz) {
  at::parallel_for(0, l.n_in, grain_over(l.n * l.batch), [&](int64_t lo, int64_t hi) {
    const CardinalTerms local_terms = terms;
    spline_grad_rows<T, K>(l, xt, a, b, local_terms, gf, gxt, dz, lo, hi);
  });
}

template <typename T, Basis kind>
BETTER_KAN_CLONES void rbf_grad_rows(const Layout& l, const T* xt, const T* a, const T* b, const T* f, const T* gf, T* gxt, T* dz,
                                     int64_t lo, int64_t hi) {
  for (int64_t p = lo; p < hi; ++p) {
    T* gx = gxt + p * l.batch;
    std::fill(gx, gx + l.batch, T(0));
    for (int64_t i = 0; i < l.n; ++i) {
      const int64_t pi = p * l.n + i, row = (p * l.n1 + i) * l.batch;
      rbf_grad_row<T, kind>(xt + p * l.batch, f + row, gf + row, gx, dz != nullptr ? dz + pi * l.batch : nullptr, l.batch, a[pi], b[pi]);
    }
  }
}

template <typename T, Basis kind>
void rbf_backward_of(const Layout& l, const T* xt, const T* a, const T* b, const T* f, const T* gf, T* gxt, T* dz) {
  at::parallel_for(0, l.n_in, grain_over(l.n * l.batch),
                   [&](int64_t lo, int64_t hi) { rbf_grad_rows<T, kind>(l, xt, a, b, f, gf, gxt, dz, lo, hi); });
}

// the base branch's part of gxt, inputs [lo, hi): silu'(x) g or g
template <typename T>
BETTER_KAN_CLONES void base_grad_rows(const Layout& l, Base base, const T* xt, const T* gf, T* gxt, int64_t lo, int64_t hi) {
  for (int64_t p = lo; p < hi; ++p) {
    const T* g = gf + (p * l.n1 + l.n) * l.batch;
    T* gx = gxt + p * l.batch;
    if (base == Base::kSilu) {
      silu_grad_row<T>(xt + p * l.batch, g, gx, l.batch);
    } else {
      for (int64_t s = 0; s < l.batch; ++s) gx[s] += g[s];
    }
  }
}

template <typename T>
void rbf_backward(const Layout& l, const T* xt, const T* a, const T* b, const T* f, Basis kind, const T* gf, T* gxt, T* dz) {
  switch (kind) {
    case Basis::kGaussian: return rbf_backward_of<T, Basis::kGaussian>(l, xt, a, b, f, gf, gxt, dz);
    case Basis::kInverseQuadratic: return rbf_backward_of<T, Basis::kInverseQuadratic>(l, xt, a, b, f, gf, gxt, dz);
    case Basis::kMultiquadric: return rbf_backward_of<T, Basis::kMultiquadric>(l, xt, a, b, f, gf, gxt, dz);
    case Basis::kInverseMultiquadric: return rbf_backward_of<T, Basis::kInverseMultiquadric>(l, xt, a, b, f, gf, gxt, dz);
    case Basis::kMatern32: return rbf_backward_of<T, Basis::kMatern32>(l, xt, a, b, f, gf, gxt, dz);
    case Basis::kMatern52: return rbf_backward_of<T, Basis::kMatern52>(l, xt, a, b, f, gf, gxt, dz);
    default: TORCH_CHECK(false, "better_kan: not a radial kernel");
  }
}

// B'_{i,k} = k (B_{i,k-1} / (t_{i+k} - t_i) - B_{i+1,k-1} / (t_{i+k+1} - t_{i+1}))
template <typename T>
void cox_backward(const Layout& l, const T* xt, const T* knots, int64_t order, const T* gf, T* gxt) {
  const int64_t n_knots = l.n + order + 1;
  for_each_block(l, kBlock * n_knots * (order + 1), [&](int64_t p, int64_t s0, int64_t len) {
    T* gx = gxt + p * l.batch + s0;
    std::fill(gx, gx + len, T(0));
    if (order == 0) return;
    thread_local std::vector<T> level;
    level.resize(n_knots * kBlock);
    const T* t = knots + p * n_knots;
    cox_de_boor_block(t, n_knots, order - 1, xt + p * l.batch + s0, len, level.data());
    for (int64_t i = 0; i < l.n; ++i) {
      const T c_l = T(order) * safe_inverse(t[i + order] - t[i]);
      const T c_r = T(order) * safe_inverse(t[i + order + 1] - t[i + 1]);
      const T* li = level.data() + i * kBlock;
      const T* next = li + kBlock;
      const T* g = gf + (p * l.n1 + i) * l.batch + s0;
#pragma omp simd
      for (int64_t s = 0; s < len; ++s) gx[s] += (li[s] * c_l - next[s] * c_r) * g[s];
    }
  });
}

// contiguous_grad_x = false: dL/dx as the transposed view of its feature-major (in, batch) buffer
// (inside a network, the layer below's dL/dy in the layout its backward reads)
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> backward_cpu(
    const at::Tensor& grad_y_in, const at::Tensor& x, const at::Tensor& weight, const at::Tensor& features_in,
    const at::Tensor& a_in, const at::Tensor& b_in, c10::string_view basis, int64_t order, c10::string_view base_name,
    c10::IntArrayRef output_mask, bool contiguous_grad_x) {
  TORCH_CHECK(output_mask.size() == 5, "better_kan: output_mask needs 5 entries");
  const Basis kind = parse_basis(basis);
  const Base base = parse_base(base_name);
  const Layout l = check_inputs(x, weight, c10::nullopt, a_in, b_in, kind, order);
  TORCH_CHECK(grad_y_in.dim() == 2 && grad_y_in.size(0) == l.batch && grad_y_in.size(1) == l.n_out,
              "better_kan: grad_y must be (batch, out)");
  TORCH_CHECK(features_in.dim() == 3 && features_in.size(0) == l.n_in && features_in.size(1) == l.n1 && features_in.size(2) == l.batch,
              "better_kan: features must be (in, n + 1, batch)");
  const bool need_x = output_mask[0], need_w = output_mask[1], need_bias = output_mask[2];
  const bool need_ab = output_mask[3] || output_mask[4];
  TORCH_CHECK(!(need_ab && kind == Basis::kCoxDeBoor), "better_kan: knots take no gradient");
  const at::Tensor& grad_y = grad_y_in;  // BLAS takes either layout
  at::Tensor features = features_in.contiguous();
  at::Tensor ft = features.view({l.n_in * l.n1, l.batch});
  const bool small = small_product(l);
  at::Tensor w2 = small ? weight.contiguous() : weight.reshape({l.n_out, l.n_in * l.n1});
  at::Tensor gyt = small ? transposed(grad_y) : at::Tensor();  // dL/dy^T (out, batch), contiguous
  at::Tensor gy = small && need_w && l.n_out >= kWeightGradByOutputs ? grad_y.contiguous() : at::Tensor();
  // what is not asked for is a 0-element tensor of its own (outputs never alias each other)
  auto none = [&] { return at::empty({0}, x.options()); };
  at::Tensor grad_x = none(), grad_w = none(), grad_bias = none(), grad_a = none(), grad_b = none();
  if (small && (need_w || need_bias)) {
    if (need_w) grad_w = at::empty(weight.sizes(), x.options());
    if (need_bias) grad_bias = at::empty({l.n_out}, x.options());
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "better_kan::small_weight_grad", [&] {
      small_weight_grad<scalar_t>(l, gy.defined() ? gy.data_ptr<scalar_t>() : nullptr, gyt.data_ptr<scalar_t>(), ft.data_ptr<scalar_t>(), need_w ? grad_w.data_ptr<scalar_t>() : nullptr,
                                  need_bias ? grad_bias.data_ptr<scalar_t>() : nullptr);
    });
  } else {
    if (need_w) grad_w = at::mm(grad_y.t(), ft.t()).view(weight.sizes());
    if (need_bias) grad_bias = grad_y.sum(0);
  }
  if (need_x || need_ab) {
    at::Tensor xt = transposed(x), a = a_in.contiguous(), b = b_in.contiguous();
    at::Tensor gf;  // dL/dF (in, n + 1, batch), feature-major
    if (small) {
      gf = at::empty({l.n_in, l.n1, l.batch}, x.options());
      AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "better_kan::small_features_grad", [&] {
        small_features_grad<scalar_t>(l, w2.data_ptr<scalar_t>(), gyt.data_ptr<scalar_t>(), gf.data_ptr<scalar_t>());
      });
    } else {
      gf = at::mm(w2.t(), grad_y.t()).view({l.n_in, l.n1, l.batch});
    }
    at::Tensor gxt = at::empty({l.n_in, l.batch}, x.options());
    at::Tensor dz = need_ab ? at::empty({l.n_in, l.n, l.batch}, x.options()) : at::Tensor();
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "better_kan::kan_linear_backward", [&] {
      const scalar_t* xp = xt.data_ptr<scalar_t>();
      const scalar_t* gfp = gf.data_ptr<scalar_t>();
      scalar_t* gxp = gxt.data_ptr<scalar_t>();
      scalar_t* dzp = need_ab ? dz.data_ptr<scalar_t>() : nullptr;
      if (kind == Basis::kCoxDeBoor) {
        cox_backward<scalar_t>(l, xp, a.data_ptr<scalar_t>(), order, gfp, gxp);
      } else if (kind == Basis::kUniform) {
        const CardinalTerms terms = cardinal_terms(order);
        const scalar_t* ap = a.data_ptr<scalar_t>();
        const scalar_t* bp = b.data_ptr<scalar_t>();
        switch (order) {
          case 1: uniform_backward<scalar_t, 1>(l, xp, ap, bp, terms, gfp, gxp, dzp); break;
          case 2: uniform_backward<scalar_t, 2>(l, xp, ap, bp, terms, gfp, gxp, dzp); break;
          case 3: uniform_backward<scalar_t, 3>(l, xp, ap, bp, terms, gfp, gxp, dzp); break;
          default: uniform_backward<scalar_t, -1>(l, xp, ap, bp, terms, gfp, gxp, dzp);
        }
      } else {
        rbf_backward<scalar_t>(l, xp, a.data_ptr<scalar_t>(), b.data_ptr<scalar_t>(), features.data_ptr<scalar_t>(), kind, gfp, gxp, dzp);
      }
    });
    if (need_x) {
      if (base == Base::kSilu || base == Base::kIdentity) {
        AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "better_kan::base_backward", [&] {
          const scalar_t* xp = xt.data_ptr<scalar_t>();
          const scalar_t* gfp = gf.data_ptr<scalar_t>();
          scalar_t* gxp = gxt.data_ptr<scalar_t>();
          at::parallel_for(0, l.n_in, grain_over(l.batch),
                           [&](int64_t lo, int64_t hi) { base_grad_rows<scalar_t>(l, base, xp, gfp, gxp, lo, hi); });
        });
      } else if (base != Base::kZero) {
        gxt.add_(base_backward(base, gf.select(1, l.n), xt));
      }
      grad_x = contiguous_grad_x ? transposed(gxt) : gxt.t();
    }
    // z = x a + b: dL/db[p, i] = sum_s dz[p, i, s], dL/da[p, i] = sum_s dz[p, i, s] x[s, p]
    if (output_mask[4]) grad_b = dz.sum(-1);
    if (output_mask[3]) grad_a = (dz * xt.unsqueeze(1)).sum(-1);
  }
  return {grad_x, grad_w, grad_bias, grad_a, grad_b};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> kan_linear_backward_cpu(
    const at::Tensor& grad_y, const at::Tensor& x, const at::Tensor& weight, const at::Tensor& features, const at::Tensor& a,
    const at::Tensor& b, c10::string_view basis, int64_t order, c10::string_view base, c10::IntArrayRef output_mask) {
  return backward_cpu(grad_y, x, weight, features, a, b, basis, order, base, output_mask, true);
}

// ---------------------------------------------------------------- the differentiable operator

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

std::tuple<at::Tensor, at::Tensor> call_forward(const at::Tensor& x, const at::Tensor& weight, const c10::optional<at::Tensor>& bias,
                                                const at::Tensor& a, const at::Tensor& b, c10::string_view basis, int64_t order,
                                                c10::string_view base) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("better_kan::kan_linear_forward", "")
                       .typed<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&, const c10::optional<at::Tensor>&,
                                                                 const at::Tensor&, const at::Tensor&, c10::string_view, int64_t,
                                                                 c10::string_view)>();
  return op.call(x, weight, bias, a, b, basis, order, base);
}

// the layer's backward kernel, looked up once per caller
auto backward_op() {
  return c10::Dispatcher::singleton()
      .findSchemaOrThrow("better_kan::kan_linear_backward", "")
      .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>(
          const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
          c10::string_view, int64_t, c10::string_view, c10::IntArrayRef)>();
}

class KanLinearFunction : public torch::autograd::Function<KanLinearFunction> {
 public:
  // bias: a 0-element tensor when the layer has none (an undefined tensor has no device for the node)
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                            const at::Tensor& a, const at::Tensor& b, c10::string_view basis, int64_t order, c10::string_view base) {
    at::AutoDispatchBelowADInplaceOrView guard;
    c10::optional<at::Tensor> bias_opt = bias.numel() > 0 ? c10::optional<at::Tensor>(bias) : c10::nullopt;
    auto [y, features] = call_forward(x, weight, bias_opt, a, b, basis, order, base);
    ctx->save_for_backward({x, weight, features, a, b, bias});
    ctx->saved_data["basis"] = std::string(basis);
    ctx->saved_data["order"] = order;
    ctx->saved_data["base"] = std::string(base);
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static auto op = backward_op();
    auto saved = ctx->get_saved_variables();
    const std::string basis = ctx->saved_data["basis"].toStringRef();
    const std::string base = ctx->saved_data["base"].toStringRef();
    const int64_t order = ctx->saved_data["order"].toInt();
    std::vector<int64_t> mask = {ctx->needs_input_grad(0), ctx->needs_input_grad(1), ctx->needs_input_grad(2),
                                 ctx->needs_input_grad(3), ctx->needs_input_grad(4)};
    at::Tensor grad_y = grads[0];
    if (!grad_y.defined()) return {at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(),
                                   at::Tensor()};
    if (at::GradMode::is_enabled()) return differentiable_backward(saved, grad_y, basis, order, base, mask);
    auto [gx, gw, gbias, ga, gb] = op.call(grad_y, saved[0], saved[1], saved[2], saved[3], saved[4], basis, order, base, mask);
    auto pick = [&](int i, const at::Tensor& g) { return mask[i] ? g : at::Tensor(); };
    return {pick(0, gx), pick(1, gw), pick(2, gbias), pick(3, ga), pick(4, gb), at::Tensor(), at::Tensor(), at::Tensor()};
  }

  // create_graph=True (second derivatives, a loss on dy/dx): the gradient must itself be differentiable,
  // which the backward kernel is not. Recompute y with the reference's plain PyTorch ops from the saved
  // inputs (their graphs intact) and differentiate that, with a graph: exact, and only on this path.
  static variable_list differentiable_backward(const variable_list& saved, const at::Tensor& grad_y, const std::string& basis,
                                               int64_t order, const std::string& base, const std::vector<int64_t>& mask) {
    static auto reference = c10::Dispatcher::singleton()
                                .findSchemaOrThrow("better_kan::kan_linear_reference", "")
                                .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const c10::optional<at::Tensor>&, const at::Tensor&,
                                                  const at::Tensor&, c10::string_view, int64_t, c10::string_view)>();
    const at::Tensor& bias = saved[5];
    c10::optional<at::Tensor> bias_opt = bias.numel() > 0 ? c10::optional<at::Tensor>(bias) : c10::nullopt;
    at::Tensor y = reference.call(saved[0], saved[1], bias_opt, saved[3], saved[4], basis, order, base);
    const at::Tensor* inputs[5] = {&saved[0], &saved[1], &bias, &saved[3], &saved[4]};
    variable_list wanted;
    for (int i = 0; i < 5; ++i)
      if (mask[i]) wanted.push_back(*inputs[i]);
    variable_list got = wanted.empty() ? variable_list{}
                                       : torch::autograd::grad({y}, wanted, {grad_y}, /*retain_graph=*/true, /*create_graph=*/true,
                                                               /*allow_unused=*/true);
    variable_list out(8);
    for (int i = 0, j = 0; i < 5; ++i) {
      if (!mask[i]) continue;
      at::Tensor g = got[j++];
      out[i] = g.defined() ? g : at::zeros_like(*inputs[i]);
    }
    return out;
  }
};

// ---------------------------------------------------------------- the whole network as one node

std::vector<std::string> split_names(c10::string_view csv, size_t layers, const char* what) {
  std::vector<std::string> out;
  size_t start = 0;
  const std::string text(csv);
  while (true) {
    const size_t end = text.find(',', start);
    out.push_back(text.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  TORCH_CHECK(out.size() == layers, "better_kan: kan_network needs one ", what, " per layer (", layers, "), got ", out.size(), ": '", text,
              "'");
  return out;
}

void check_network(const at::Tensor& x, at::TensorList weights, at::TensorList biases, at::TensorList a, at::TensorList b,
                   at::IntArrayRef orders) {
  const size_t n = weights.size();
  TORCH_CHECK(n >= 1, "better_kan: kan_network needs at least one layer");
  TORCH_CHECK(biases.size() == n && a.size() == n && b.size() == n && orders.size() == n,
              "better_kan: kan_network needs one bias, a, b and order per layer (", n, " weights)");
  TORCH_CHECK(x.dim() == 2, "better_kan: x must be (batch, in), got ", x.sizes());
  for (size_t l = 0; l + 1 < n; ++l)
    TORCH_CHECK(weights[l].dim() == 3 && weights[l + 1].dim() == 3 && weights[l].size(0) == weights[l + 1].size(1),
                "better_kan: kan_network's layers do not chain at layer ", l + 1);
}

c10::optional<at::Tensor> optional_bias(const at::Tensor& bias) {
  return bias.numel() > 0 ? c10::optional<at::Tensor>(bias) : c10::nullopt;
}

// a dense CPU tensor with data: not a fake (torch.compile's tracing), functional or other wrapper
bool plain_cpu(const at::Tensor& t) {
  static const c10::DispatchKeySet wrappers({c10::DispatchKey::Python, c10::DispatchKey::PythonTLSSnapshot, c10::DispatchKey::Functionalize});
  return t.device().is_cpu() && t.layout() == at::kStrided && !t.key_set().has_any(wrappers);
}

// On the CPU every layer's features go into one allocation: slice l is layer l's (in, n + 1, batch).
// shared: every slice starts at the same place (the largest layer's size in all) -- for a forward
// without a backward, where a layer's features are dead once its output is computed. Empty (each
// layer allocates its own, through the dispatcher) off the CPU -- CUDA's kernels, meta and fake
// tensors -- or when an argument is malformed (the layer's own checks then say what).
std::vector<at::Tensor> feature_workspace(const at::Tensor& x, at::TensorList weights, bool shared) {
  if (!plain_cpu(x) || x.dim() != 2 || !(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble)) return {};
  std::vector<int64_t> sizes;
  int64_t total = 0;
  for (const at::Tensor& w : weights) {
    if (!plain_cpu(w) || w.dim() != 3 || w.scalar_type() != x.scalar_type()) return {};
    sizes.push_back(w.size(1) * w.size(2) * x.size(0));
    total = shared ? std::max(total, sizes.back()) : total + sizes.back();
  }
  at::Tensor workspace = at::empty({total}, x.options());
  std::vector<at::Tensor> slices;
  int64_t offset = 0;
  for (size_t l = 0; l < weights.size(); ++l) {
    slices.push_back(workspace.narrow(0, offset, sizes[l]).view({weights[l].size(1), weights[l].size(2), x.size(0)}));
    if (!shared) offset += sizes[l];
  }
  return slices;
}

// layer l of a network: on the CPU into its workspace slice, its output left feature-major for the
// next layer (the last layer's is contiguous); else through the dispatcher
std::tuple<at::Tensor, at::Tensor> network_layer(const std::vector<at::Tensor>& workspace, size_t l, const at::Tensor& h,
                                                 const at::Tensor& weight, const at::Tensor& bias, const at::Tensor& a, const at::Tensor& b,
                                                 const std::string& basis, int64_t order, const std::string& base) {
  if (!workspace.empty() && plain_cpu(h) && plain_cpu(weight) && plain_cpu(a) && plain_cpu(b) && (bias.numel() == 0 || plain_cpu(bias))) {
    RECORD_FUNCTION("better_kan::kan_linear_forward", std::vector<c10::IValue>());  // what a profiler sees of each layer
    return forward_cpu_into(h, weight, optional_bias(bias), a, b, basis, order, base, workspace[l], l + 1 == workspace.size());
  }
  return call_forward(h, weight, optional_bias(bias), a, b, basis, order, base);
}

class KanNetworkFunction : public torch::autograd::Function<KanNetworkFunction> {
 public:
  // saved: x, then per layer (input, weight, features, a, b, bias) -- layer 0's input is x
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, at::TensorList weights, at::TensorList biases, at::TensorList a,
                            at::TensorList b, c10::string_view bases, at::IntArrayRef orders, c10::string_view base) {
    at::AutoDispatchBelowADInplaceOrView guard;
    check_network(x, weights, biases, a, b, orders);
    const size_t n = weights.size();
    const auto basis_names = split_names(bases, n, "basis");
    const auto base_names = split_names(base, n, "base activation");
    variable_list saved = {x};
    at::Tensor h = x;
    const auto workspace = feature_workspace(x, weights, /*shared=*/false);  // the backward reads every layer's
    for (size_t l = 0; l < n; ++l) {
      auto [y, features] = network_layer(workspace, l, h, weights[l], biases[l], a[l], b[l], basis_names[l], orders[l], base_names[l]);
      saved.insert(saved.end(), {h, weights[l], features, a[l], b[l], biases[l]});
      h = y;
    }
    ctx->save_for_backward(saved);
    ctx->saved_data["bases"] = std::string(bases);
    ctx->saved_data["orders"] = orders.vec();
    ctx->saved_data["base"] = std::string(base);
    return h;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static auto op = backward_op();
    auto saved = ctx->get_saved_variables();
    const size_t n = (saved.size() - 1) / 6;
    const auto basis_names = split_names(ctx->saved_data["bases"].toStringRef(), n, "basis");
    const auto base_names = split_names(ctx->saved_data["base"].toStringRef(), n, "base activation");
    const auto orders = ctx->saved_data["orders"].toIntVector();
    // inputs, as apply flattened them: x, weights[n], biases[n], a[n], b[n], then the three non-tensor arguments
    variable_list out(1 + 4 * n + 3);
    at::Tensor g = grads[0];
    if (!g.defined()) return out;
    auto needs = [&](size_t which, size_t l) { return ctx->needs_input_grad(1 + which * n + l); };
    if (at::GradMode::is_enabled()) return differentiable_backward(ctx, saved, g, basis_names, orders, base_names);
    for (size_t l = n; l-- > 0;) {
      const at::Tensor& bias = saved[1 + 6 * l + 5];
      std::vector<int64_t> mask = {l > 0 || ctx->needs_input_grad(0), needs(0, l), bias.numel() > 0 && needs(1, l), needs(2, l),
                                   needs(3, l)};
      // on the CPU the kernel itself, dL/dx left feature-major for the layer below; else the dispatcher
      const bool cpu = plain_cpu(g) && plain_cpu(saved[1 + 6 * l]) && plain_cpu(saved[2 + 6 * l]) && plain_cpu(saved[3 + 6 * l]) &&
                       plain_cpu(saved[4 + 6 * l]) && plain_cpu(saved[5 + 6 * l]);
      auto on_cpu = [&] {
        RECORD_FUNCTION("better_kan::kan_linear_backward", std::vector<c10::IValue>());  // what a profiler sees of each layer
        return backward_cpu(g, saved[1 + 6 * l], saved[2 + 6 * l], saved[3 + 6 * l], saved[4 + 6 * l], saved[5 + 6 * l], basis_names[l],
                            orders[l], base_names[l], mask, l == 0);
      };
      auto [gx, gw, gbias, ga, gb] = cpu ? on_cpu()
                                         : op.call(g, saved[1 + 6 * l], saved[2 + 6 * l], saved[3 + 6 * l], saved[4 + 6 * l],
                                                   saved[5 + 6 * l], basis_names[l], orders[l], base_names[l], mask);
      if (mask[1]) out[1 + l] = gw;
      if (mask[2]) out[1 + n + l] = gbias;
      if (mask[3]) out[1 + 2 * n + l] = ga;
      if (mask[4]) out[1 + 3 * n + l] = gb;
      g = gx;
    }
    if (ctx->needs_input_grad(0)) out[0] = g;
    return out;
  }

  // create_graph=True: recompute the network from x with the reference's plain PyTorch ops (the saved
  // inputs keep their graphs) and differentiate that, with a graph -- as the single-layer node does
  static variable_list differentiable_backward(AutogradContext* ctx, const variable_list& saved, const at::Tensor& grad_y,
                                               const std::vector<std::string>& basis_names, const std::vector<int64_t>& orders,
                                               const std::vector<std::string>& base_names) {
    static auto reference = c10::Dispatcher::singleton()
                                .findSchemaOrThrow("better_kan::kan_linear_reference", "")
                                .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const c10::optional<at::Tensor>&, const at::Tensor&,
                                                  const at::Tensor&, c10::string_view, int64_t, c10::string_view)>();
    const size_t n = basis_names.size();
    at::Tensor h = saved[0];
    for (size_t l = 0; l < n; ++l)
      h = reference.call(h, saved[2 + 6 * l], optional_bias(saved[6 + 6 * l]), saved[4 + 6 * l], saved[5 + 6 * l], basis_names[l], orders[l],
                         base_names[l]);
    std::vector<const at::Tensor*> inputs = {&saved[0]};
    for (size_t which : {2, 6, 4, 5})  // weights, biases, a, b: their slots in each layer's six
      for (size_t l = 0; l < n; ++l) inputs.push_back(&saved[which + 6 * l]);
    variable_list wanted;
    std::vector<size_t> slots;
    for (size_t i = 0; i < inputs.size(); ++i)
      if (ctx->needs_input_grad(i) && inputs[i]->numel() > 0) {
        wanted.push_back(*inputs[i]);
        slots.push_back(i);
      }
    variable_list out(1 + 4 * n + 3);
    if (wanted.empty()) return out;
    variable_list got = torch::autograd::grad({h}, wanted, {grad_y}, /*retain_graph=*/true, /*create_graph=*/true, /*allow_unused=*/true);
    for (size_t j = 0; j < slots.size(); ++j) out[slots[j]] = got[j].defined() ? got[j] : at::zeros_like(*inputs[slots[j]]);
    return out;
  }
};

at::Tensor kan_network_autograd(const at::Tensor& x, at::TensorList weights, at::TensorList biases, at::TensorList a, at::TensorList b,
                                c10::string_view bases, at::IntArrayRef orders, c10::string_view base) {
  return KanNetworkFunction::apply(x, weights, biases, a, b, bases, orders, base);
}

// below autograd (inference mode, torch.compile's traced graph): the layers' forwards only
at::Tensor kan_network_plain(const at::Tensor& x, at::TensorList weights, at::TensorList biases, at::TensorList a, at::TensorList b,
                             c10::string_view bases, at::IntArrayRef orders, c10::string_view base) {
  check_network(x, weights, biases, a, b, orders);
  const auto basis_names = split_names(bases, weights.size(), "basis");
  const auto base_names = split_names(base, weights.size(), "base activation");
  at::Tensor h = x;
  const auto workspace = feature_workspace(x, weights, /*shared=*/true);  // no backward: one layer's at a time
  for (size_t l = 0; l < weights.size(); ++l)
    h = std::get<0>(network_layer(workspace, l, h, weights[l], biases[l], a[l], b[l], basis_names[l], orders[l], base_names[l]));
  return h;
}

at::Tensor kan_linear_autograd(const at::Tensor& x, const at::Tensor& weight, const c10::optional<at::Tensor>& bias, const at::Tensor& a,
                               const at::Tensor& b, c10::string_view basis, int64_t order, c10::string_view base) {
  const bool has_bias = bias.has_value() && bias->defined();
  return KanLinearFunction::apply(x, weight, has_bias ? *bias : at::empty({0}, x.options()), a, b, basis, order, base);
}

// below autograd (inference mode, or inside a graph torch.compile traced): the forward only
at::Tensor kan_linear_plain(const at::Tensor& x, const at::Tensor& weight, const c10::optional<at::Tensor>& bias, const at::Tensor& a,
                            const at::Tensor& b, c10::string_view basis, int64_t order, c10::string_view base) {
  return std::get<0>(call_forward(x, weight, bias, a, b, basis, order, base));
}

}  // namespace

// shapes only (meta tensors, torch.compile's fake tensors with symbolic sizes): better_kan/native.py
TORCH_LIBRARY(better_kan, m) {
  m.set_python_module("better_kan.native");
  m.def("kan_linear(Tensor x, Tensor weight, Tensor? bias, Tensor a, Tensor b, str basis, int order, str base) -> Tensor");
  m.def("kan_linear_reference(Tensor x, Tensor weight, Tensor? bias, Tensor a, Tensor b, str basis, int order, str base) -> Tensor");
  m.def("kan_network(Tensor x, Tensor[] weights, Tensor[] biases, Tensor[] a, Tensor[] b, str bases, int[] orders, str base) -> Tensor");
  m.def(
      "kan_linear_forward(Tensor x, Tensor weight, Tensor? bias, Tensor a, Tensor b, str basis, int order, str base) "
      "-> (Tensor, Tensor)");
  m.def(
      "kan_linear_backward(Tensor grad_y, Tensor x, Tensor weight, Tensor features, Tensor a, Tensor b, str basis, int order, "
      "str base, int[] output_mask) -> (Tensor, Tensor, Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(better_kan, CPU, m) {
  m.impl("kan_linear_forward", &kan_linear_forward_cpu);
  m.impl("kan_linear_backward", &kan_linear_backward_cpu);
}

// the forward and backward kernels are not differentiable themselves: called directly with inputs that
// need a gradient they raise one clear error (never a silent zero); kan_linear's node never asks them to
TORCH_LIBRARY_IMPL(better_kan, Autograd, m) {
  m.impl("kan_linear", &kan_linear_autograd);
  m.impl("kan_network", &kan_network_autograd);
  m.impl("kan_linear_forward", torch::autograd::autogradNotImplementedFallback());
  m.impl("kan_linear_backward", torch::autograd::autogradNotImplementedFallback());
}

TORCH_LIBRARY_IMPL(better_kan, CompositeExplicitAutograd, m) {
  m.impl("kan_linear", &kan_linear_plain);
  m.impl("kan_network", &kan_network_plain);
}

}  // namespace better_kan

// importable as the Python module better_kan._C (importing it registers the operators)
// SOURCE_SHA256: the sha256 of the source it was built from (better_kan.native checks it against the source)
extern "C" PyMODINIT_FUNC PyInit__C(void) {
  static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_C", "better_kan's native CPU kernels", -1, nullptr};
  PyObject* m = PyModule_Create(&module);
  if (m != nullptr && PyModule_AddStringConstant(m, "SOURCE_SHA256", BETTER_KAN_STR(BETTER_KAN_SOURCE_SHA256)) != 0) {
    Py_DECREF(m);
    return nullptr;
  }
  return m;
}
