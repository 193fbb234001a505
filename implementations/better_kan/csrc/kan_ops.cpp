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
  T sign = T(int(z > T(0)) - int(z < T(0)));
  if (K == 3) {
    T c0 = positive_part(T(2) - r);
    T c1 = positive_part(T(1) - r);
    return T(-0.5) * sign * (c0 * c0 - T(4) * (c1 * c1));
  }
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
// One function per inner loop over the batch, compiled for AVX-512, AVX2 and the baseline and
// picked at load time (GCC/Clang target_clones on x86-64 Linux); elsewhere, the baseline only.

#if defined(__x86_64__) && defined(__linux__) && ((defined(__GNUC__) && __GNUC__ >= 12 && !defined(__clang__)) || (defined(__clang__) && __clang_major__ >= 14))
#define BETTER_KAN_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define BETTER_KAN_CLONES
#endif

// out[s] = M_k(x[s] a + b)
template <typename T, int K>
BETTER_KAN_CLONES void spline_row(const T* __restrict x, T* __restrict out, int64_t len, T a, T b, const CardinalTerms& terms) {
#pragma omp simd
  for (int64_t s = 0; s < len; ++s) out[s] = cardinal_value<T, K>(terms, x[s] * a + b);
}

// d[s] = M_k'(z_s) g[s] (when d), gx[s] += M_k'(z_s) a g[s]
template <typename T, int K>
BETTER_KAN_CLONES void spline_grad_row(const T* __restrict x, const T* __restrict g, T* __restrict gx, T* __restrict d, int64_t len, T a,
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
BETTER_KAN_CLONES void rbf_row(const T* __restrict x, T* __restrict out, int64_t len, T a, T b) {
#pragma omp simd
  for (int64_t s = 0; s < len; ++s) out[s] = rbf_value(kind, x[s] * a + b);
}

template <typename T, Basis kind>
BETTER_KAN_CLONES void rbf_grad_row(const T* __restrict x, const T* __restrict phi, const T* __restrict g, T* __restrict gx,
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
BETTER_KAN_CLONES void silu_row(const T* __restrict x, T* __restrict out, int64_t len) {
#pragma omp simd
  for (int64_t s = 0; s < len; ++s) out[s] = x[s] / (T(1) + vexp(-x[s]));
}

template <typename T>
BETTER_KAN_CLONES void silu_grad_row(const T* __restrict x, const T* __restrict g, T* __restrict gx, int64_t len) {
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
  }
  return l;
}

// Work is laid out feature-major -- features (in, n + 1, batch), x transposed to (in, batch) -- so
// every inner loop runs over the batch: long, contiguous, vectorizable, whatever n is.
// Elements per parallel_for task: below that, one thread. BETTER_KAN_GRAIN (read once) overrides
// the default of 16384 -- for measuring what threading small layers costs or saves on a machine.
int64_t work_per_task() {
  static const int64_t value = [] {
    const char* env = std::getenv("BETTER_KAN_GRAIN");
    const long long parsed = env ? std::atoll(env) : 0;
    return parsed > 0 ? static_cast<int64_t>(parsed) : int64_t{16384};
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

// ---------------------------------------------------------------- features (forward): f (in, n + 1, batch)

template <typename T, int K>
void uniform_features(const Layout& l, const T* xt, const T* a, const T* b, const CardinalTerms& terms, T* f) {
  at::parallel_for(0, l.n_in * l.n, grain_over(l.batch), [&](int64_t lo, int64_t hi) {
    const int64_t batch = l.batch;
    const CardinalTerms local_terms = terms;
    for (int64_t pi = lo; pi < hi; ++pi) {  // pi = p * n + i
      const int64_t p = pi / l.n, i = pi % l.n;
      const T av = a[pi], bv = b[pi];
      const T* xp = xt + p * l.batch;
      T* out = f + (p * l.n1 + i) * l.batch;
      spline_row<T, K>(xp, out, batch, av, bv, local_terms);
    }
  });
}

template <typename T, Basis kind>
void rbf_features_of(const Layout& l, const T* xt, const T* a, const T* b, T* f) {
  at::parallel_for(0, l.n_in * l.n, grain_over(l.batch), [&](int64_t lo, int64_t hi) {
    const int64_t batch = l.batch;
    for (int64_t pi = lo; pi < hi; ++pi) {
      const int64_t p = pi / l.n, i = pi % l.n;
      const T av = a[pi], bv = b[pi];
      const T* xp = xt + p * l.batch;
      T* out = f + (p * l.n1 + i) * l.batch;
      rbf_row<T, kind>(xp, out, batch, av, bv);
    }
  });
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

std::tuple<at::Tensor, at::Tensor> kan_linear_forward_cpu(const at::Tensor& x, const at::Tensor& weight,
                                                          const c10::optional<at::Tensor>& bias, const at::Tensor& a_in,
                                                          const at::Tensor& b_in, c10::string_view basis, int64_t order,
                                                          c10::string_view base_name) {
  const Basis kind = parse_basis(basis);
  const Base base = parse_base(base_name);
  const Layout l = check_inputs(x, weight, bias, a_in, b_in, kind, order);
  at::Tensor xt = transposed(x), a = a_in.contiguous(), b = b_in.contiguous();
  at::Tensor features = at::empty({l.n_in, l.n1, l.batch}, x.options());
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
      at::parallel_for(0, l.n_in, grain_over(l.batch), [&](int64_t lo, int64_t hi) {
        for (int64_t p = lo; p < hi; ++p) {
          scalar_t* out = fp + (p * l.n1 + l.n) * l.batch;
          if (base == Base::kSilu) {
            silu_row<scalar_t>(xp + p * l.batch, out, l.batch);
          } else if (base == Base::kIdentity) {
            std::copy(xp + p * l.batch, xp + (p + 1) * l.batch, out);
          } else {
            std::fill(out, out + l.batch, scalar_t(0));
          }
        }
      });
    });
  } else {
    base_forward(base, xt, features.select(1, l.n));
  }
  // y^T = W (out, in * (n + 1)) @ F^T: a plain GEMM on the feature-major F (BLAS is 3-5x slower
  // on F^T^T @ W^T at these sizes), then y = (y^T)^T copied into a contiguous (batch, out): a user
  // can view, reshape and write into y exactly as into the PyTorch path's output
  at::Tensor ft = features.view({l.n_in * l.n1, l.batch});
  at::Tensor w2 = weight.reshape({l.n_out, l.n_in * l.n1});
  at::Tensor yt = (bias.has_value() && bias->defined()) ? at::addmm(bias->unsqueeze(1), w2, ft) : at::mm(w2, ft);
  return {transposed(yt), features};
}

// ---------------------------------------------------------------- backward
//
// gxt (in, batch): sum_i phi'(z_i) a_i gF_i (the base branch is added with ATen after);
// dz (in, n, batch), when given: phi'(z_i) gF_i (for the gradients of a and b)

template <typename T, int K>
void uniform_backward(const Layout& l, const T* xt, const T* a, const T* b, const CardinalTerms& terms, const T* gf, T* gxt, T* dz) {
  at::parallel_for(0, l.n_in, grain_over(l.n * l.batch), [&](int64_t lo, int64_t hi) {
    const int64_t batch = l.batch;
    const CardinalTerms local_terms = terms;
    for (int64_t p = lo; p < hi; ++p) {
      const T* xp = xt + p * batch;
      T* gx = gxt + p * batch;
      std::fill(gx, gx + batch, T(0));
      for (int64_t i = 0; i < l.n; ++i) {
        const T av = a[p * l.n + i], bv = b[p * l.n + i];
        const T* g = gf + (p * l.n1 + i) * batch;
        spline_grad_row<T, K>(xp, g, gx, dz != nullptr ? dz + (p * l.n + i) * batch : nullptr, batch, av, bv, local_terms);
      }
    }
  });
}

template <typename T, Basis kind>
void rbf_backward_of(const Layout& l, const T* xt, const T* a, const T* b, const T* f, const T* gf, T* gxt, T* dz) {
  at::parallel_for(0, l.n_in, grain_over(l.n * l.batch), [&](int64_t lo, int64_t hi) {
    const int64_t batch = l.batch;
    for (int64_t p = lo; p < hi; ++p) {
      const T* xp = xt + p * batch;
      T* gx = gxt + p * batch;
      std::fill(gx, gx + batch, T(0));
      for (int64_t i = 0; i < l.n; ++i) {
        const T av = a[p * l.n + i], bv = b[p * l.n + i];
        const T* g = gf + (p * l.n1 + i) * batch;
        const T* phi = f + (p * l.n1 + i) * batch;
        rbf_grad_row<T, kind>(xp, phi, g, gx, dz != nullptr ? dz + (p * l.n + i) * batch : nullptr, batch, av, bv);
      }
    }
  });
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

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> kan_linear_backward_cpu(
    const at::Tensor& grad_y_in, const at::Tensor& x, const at::Tensor& weight, const at::Tensor& features_in,
    const at::Tensor& a_in, const at::Tensor& b_in, c10::string_view basis, int64_t order, c10::string_view base_name,
    c10::IntArrayRef output_mask) {
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
  at::Tensor w2 = weight.reshape({l.n_out, l.n_in * l.n1});
  // what is not asked for is a 0-element tensor of its own (outputs never alias each other)
  auto none = [&] { return at::empty({0}, x.options()); };
  at::Tensor grad_x = none(), grad_w = none(), grad_bias = none(), grad_a = none(), grad_b = none();
  if (need_w) grad_w = at::mm(grad_y.t(), ft.t()).view(weight.sizes());
  if (need_bias) grad_bias = grad_y.sum(0);
  if (need_x || need_ab) {
    at::Tensor xt = transposed(x), a = a_in.contiguous(), b = b_in.contiguous();
    at::Tensor gf = at::mm(w2.t(), grad_y.t()).view({l.n_in, l.n1, l.batch});  // dL/dF, feature-major
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
          at::parallel_for(0, l.n_in, grain_over(l.batch), [&](int64_t lo, int64_t hi) {
            for (int64_t p = lo; p < hi; ++p) {
              const scalar_t* g = gfp + (p * l.n1 + l.n) * l.batch;
              scalar_t* gx = gxp + p * l.batch;
              if (base == Base::kSilu) {
                silu_grad_row<scalar_t>(xp + p * l.batch, g, gx, l.batch);
              } else {
                for (int64_t s = 0; s < l.batch; ++s) gx[s] += g[s];
              }
            }
          });
        });
      } else if (base != Base::kZero) {
        gxt.add_(base_backward(base, gf.select(1, l.n), xt));
      }
      grad_x = gxt.t().contiguous();
    }
    // z = x a + b: dL/db[p, i] = sum_s dz[p, i, s], dL/da[p, i] = sum_s dz[p, i, s] x[s, p]
    if (output_mask[4]) grad_b = dz.sum(-1);
    if (output_mask[3]) grad_a = (dz * xt.unsqueeze(1)).sum(-1);
  }
  return {grad_x, grad_w, grad_bias, grad_a, grad_b};
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
    for (size_t l = 0; l < n; ++l) {
      auto [y, features] = call_forward(h, weights[l], optional_bias(biases[l]), a[l], b[l], basis_names[l], orders[l], base_names[l]);
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
      auto [gx, gw, gbias, ga, gb] = op.call(g, saved[1 + 6 * l], saved[2 + 6 * l], saved[3 + 6 * l], saved[4 + 6 * l],
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
  for (size_t l = 0; l < weights.size(); ++l)
    h = std::get<0>(call_forward(h, weights[l], optional_bias(biases[l]), a[l], b[l], basis_names[l], orders[l], base_names[l]));
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
