#include <doctest/doctest.h>
#include <omp.h>
#include <array>

#include <cmath>
#include <limits>
#include <ostream>
#include <string>
#include <type_traits>
#include <vector>

#include <ldm/ldm.hpp>
#include <ldm/ops/conv2d.hpp>

#include "support/gradcheck.hpp"

using namespace ldm;

namespace {

template <class G>
struct Named {
  using geometry = G;
  const char* name;
};

// Every geometry the library uses, plus ones that stress the index arithmetic: an asymmetric
// kernel with asymmetric padding, a stride that leaves pixels unread, and padding wider than the
// kernel so that some windows lie wholly in the padding.
template <class F>
void for_each_geometry(F&& f) {
  f(Named<ops::conv_same<1>>{"1x1"});
  f(Named<ops::conv_same<3>>{"3x3 stride 1 pad 1"});
  f(Named<ops::conv_same<3, 2>>{"3x3 stride 2 pad 1"});
  f(Named<ops::conv_down_asymmetric>{"conv_down_asymmetric"});
  f(Named<ops::Conv2dGeometry<5, 3, 2, 2, 1, 0, 1>>{"5x3 stride 2 pads (2,1,0,1)"});
  f(Named<ops::conv_same<1, 2>>{"1x1 stride 2"});
  f(Named<ops::Conv2dGeometry<2, 2, 1, 3, 2, 0, 3>>{"2x2 pads (3,2,0,3)"});
}

template <class T>
const char* type_name() {
  return std::is_same_v<T, float> ? "float" : "double";
}

// A value computed in double together with the sum of the magnitudes of the terms it adds up:
// the scale of the rounding error any summation order can make.
struct Reference {
  std::vector<double> value, magnitude;
  explicit Reference(index_t n) : value(std::size_t(n)), magnitude(std::size_t(n)) {}
  void add(index_t i, double term) {
    value[std::size_t(i)] += term;
    magnitude[std::size_t(i)] += std::abs(term);
  }
};

// The convolution written as its definition: for every output element, the sum over the window,
// skipping positions in the padding.
template <class G, class XS, index_t Co, class T>
Reference direct_forward(const T* x, const T* w, const T* b) {
  constexpr index_t N = XS::extents[0], H = XS::extents[1], W = XS::extents[2], Ci = XS::extents[3];
  using YS = ops::conv2d_output_t<G, XS, Co>;
  using WS = Shape<Co, G::kh, G::kw, Ci>;
  Reference y(YS::size);
  for (index_t n = 0; n < N; ++n)
    for (index_t oh = 0; oh < YS::extents[1]; ++oh)
      for (index_t ow = 0; ow < YS::extents[2]; ++ow)
        for (index_t co = 0; co < Co; ++co) {
          const index_t out = YS::offset(n, oh, ow, co);
          y.add(out, double(b[co]));
          for (index_t kh = 0; kh < G::kh; ++kh)
            for (index_t kw = 0; kw < G::kw; ++kw)
              for (index_t ci = 0; ci < Ci; ++ci) {
                const index_t ih = oh * G::stride - G::pad_top + kh;
                const index_t iw = ow * G::stride - G::pad_left + kw;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                y.add(out,
                      double(x[XS::offset(n, ih, iw, ci)]) * double(w[WS::offset(co, kh, kw, ci)]));
              }
        }
  return y;
}

struct DirectGradients {
  Reference dx, dw, db;
};

// The same loop nest as direct_forward, each product's upstream gradient sent back to the two
// factors it came from.
template <class G, class XS, index_t Co, class T>
DirectGradients direct_backward(const T* x, const T* w, const T* dy) {
  constexpr index_t N = XS::extents[0], H = XS::extents[1], W = XS::extents[2], Ci = XS::extents[3];
  using YS = ops::conv2d_output_t<G, XS, Co>;
  using WS = Shape<Co, G::kh, G::kw, Ci>;
  DirectGradients grad{Reference(XS::size), Reference(WS::size), Reference(Co)};
  for (index_t n = 0; n < N; ++n)
    for (index_t oh = 0; oh < YS::extents[1]; ++oh)
      for (index_t ow = 0; ow < YS::extents[2]; ++ow)
        for (index_t co = 0; co < Co; ++co) {
          const double g = dy[YS::offset(n, oh, ow, co)];
          grad.db.add(co, g);
          for (index_t kh = 0; kh < G::kh; ++kh)
            for (index_t kw = 0; kw < G::kw; ++kw)
              for (index_t ci = 0; ci < Ci; ++ci) {
                const index_t ih = oh * G::stride - G::pad_top + kh;
                const index_t iw = ow * G::stride - G::pad_left + kw;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                const index_t xi = XS::offset(n, ih, iw, ci), wi = WS::offset(co, kh, kw, ci);
                grad.dx.add(xi, g * double(w[wi]));
                grad.dw.add(wi, g * double(x[xi]));
              }
        }
  return grad;
}

// Requires |got - ref| <= 2 (terms + 1) eps_T * magnitude element by element: the worst-case
// rounding error of a sum of `terms` products in T (gamma_n), doubled because the double
// reference rounds too; one more term covers the final rounding to T. Returns the largest error
// absolutely and in units of eps_T * magnitude.
struct LargestError {
  double absolute = 0, scaled = 0;
};
std::ostream& operator<<(std::ostream& os, const LargestError& e) {
  return os << e.absolute << " (" << e.scaled << " eps x magnitude)";
}

template <class T>
LargestError require_within_rounding(const T* got, const Reference& ref, index_t terms,
                                     const std::string& what) {
  const double eps = std::numeric_limits<T>::epsilon();
  LargestError worst;
  for (std::size_t i = 0; i < ref.value.size(); ++i) {
    const double error = std::abs(double(got[i]) - ref.value[i]);
    INFO(what << ": element " << i << ": got " << got[i] << ", expected " << ref.value[i]);
    REQUIRE(error <= 2 * double(terms + 1) * eps * ref.magnitude[i]);
    worst.absolute = std::max(worst.absolute, error);
    if (error > 0) worst.scaled = std::max(worst.scaled, error / (eps * ref.magnitude[i]));
  }
  return worst;
}

// Runs the forward and both gradients of convolution G on operands drawn from `seed` and
// requires each within rounding of the direct loops; returns the largest errors (y, dx, dw, db).
template <class G, class T, class XS, index_t Co>
std::array<LargestError, 4> check_against_direct_loops(std::uint64_t seed,
                                                       const std::string& what) {
  using WS = Shape<Co, G::kh, G::kw, XS::extents[3]>;
  using YS = ops::conv2d_output_t<G, XS, Co>;
  constexpr index_t pixels = YS::size / Co;
  Tensor<T, XS> x(randn<XS>(seed, 0));
  Tensor<T, WS> w(randn<WS>(seed, 1));
  Tensor<T, Shape<Co>> b(randn<Shape<Co>>(seed, 2));
  Tensor<T, YS> dy(randn<YS>(seed, 3));
  Tensor<T, YS> y;
  Tensor<T, XS> dx;
  Tensor<T, WS> dw;
  Tensor<T, Shape<Co>> db;
  ops::conv2d_forward<G>(x, w, b, y);
  ops::conv2d_backward_input<G>(w, dy, dx);
  ops::conv2d_backward_params<G>(x, dy, dw, db);
  const Reference y_ref = direct_forward<G, XS, Co>(x.data(), w.data(), b.data());
  const DirectGradients grad = direct_backward<G, XS, Co>(x.data(), w.data(), dy.data());
  return {require_within_rounding(y.data(), y_ref, G::kh * G::kw * XS::extents[3] + 1, what + " y"),
          require_within_rounding(dx.data(), grad.dx, Co * G::kh * G::kw, what + " dx"),
          require_within_rounding(dw.data(), grad.dw, pixels, what + " dw"),
          require_within_rounding(db.data(), grad.db, pixels, what + " db")};
}

template <index_t N, index_t H, index_t W, index_t Ci, index_t Co>
struct Operands {
  using XS = Shape<N, H, W, Ci>;
  static constexpr index_t co = Co;
  template <class G>
  using WS = Shape<Co, G::kh, G::kw, Ci>;
  template <class G>
  using YS = ops::conv2d_output_t<G, XS, Co>;
};

// Small and odd, so that no extent divides another and every border case occurs.
using SmallCase = Operands<2, 7, 9, 3, 5>;
// Enough input channels for the stride-1 input gradient to run as the flipped convolution.
using WideCase = Operands<2, 5, 6, 9, 4>;

// Float convolutions other than pointwise ones take the direct kernels where the CPU has them
// (ops/conv2d/direct_simd.hpp); the cases above have fewer output channels than a vector. Here:
// channel counts that leave partial vectors and partial register tiles (21 = 16 + 5, 12 = 8 + 4;
// 7 and 17 input channels), a single input channel as in the autoencoder's conv_in, and sizes
// that split into several bands of output lines.
using OddDirectCase = Operands<3, 11, 13, 7, 21>;
using ExactVectorCase = Operands<2, 9, 7, 17, 8>;
using OneChannelCase = Operands<2, 5, 7, 1, 12>;
using ManyBandsCase = Operands<2, 33, 21, 9, 24>;

// check_against_direct_loops for every geometry on the operands of C, named `prefix` + geometry.
template <class T, class C>
void check_every_geometry(std::uint64_t seed, const std::string& prefix) {
  using XS = typename C::XS;
  for_each_geometry([&](auto named) {
    using G = typename decltype(named)::geometry;
    check_against_direct_loops<G, T, XS, C::co>(seed, prefix + named.name + " " + type_name<T>() +
                                                          " " + std::to_string(XS::extents[3]) +
                                                          "->" + std::to_string(C::co));
  });
}

#if LDM_CONV2D_DIRECT
namespace simd = ops::detail::direct;

// Runs the direct kernels of one instruction set (or none: im2col + BLAS) until destroyed.
class UseIsa {
 public:
  explicit UseIsa(simd::Isa isa) : before_(simd::selected_isa().exchange(isa)) {}
  ~UseIsa() { simd::selected_isa().store(before_); }
  UseIsa(const UseIsa&) = delete;
  UseIsa& operator=(const UseIsa&) = delete;

 private:
  simd::Isa before_;
};

// The instruction sets this CPU runs, widest first, then none.
std::vector<simd::Isa> isas_here() {
  std::vector<simd::Isa> isas;
  for (auto isa : {simd::Isa::avx512, simd::Isa::avx2, simd::Isa::none})
    if (isa <= simd::widest_isa()) isas.push_back(isa);
  return isas;
}
#endif

bool direct_kernels_available() {
#if LDM_CONV2D_DIRECT
  return simd::isa() != simd::Isa::none;
#else
  return false;
#endif
}

}  // namespace

static_assert(
    std::is_same_v<ops::conv2d_output_t<ops::conv_down_asymmetric, Shape<4, 32, 32, 32>, 8>,
                   Shape<4, 16, 16, 8>>,
    "AutoencoderKL's downsampler halves 32x32 to 16x16");
static_assert(std::is_same_v<ops::conv2d_output_t<ops::conv_same<3, 2>, Shape<1, 8, 8, 32>, 32>,
                             Shape<1, 4, 4, 32>>,
              "the UNet's downsampler halves 8x8 to 4x4");
static_assert(std::is_same_v<ops::conv2d_output_t<ops::conv_same<3>, Shape<2, 7, 9, 3>, 5>,
                             Shape<2, 7, 9, 5>>);
static_assert(std::is_same_v<
              ops::conv2d_output_t<ops::Conv2dGeometry<5, 3, 2, 2, 1, 0, 1>, Shape<2, 7, 9, 3>, 5>,
              Shape<2, 3, 4, 5>>);
static_assert(ops::conv_same<1>::pointwise && !ops::conv_same<1, 2>::pointwise &&
              !ops::conv_same<3>::pointwise);

TEST_CASE_TEMPLATE("conv2d_forward matches the direct convolution", T, float, double) {
  using C = SmallCase;
  for_each_geometry([](auto named) {
    using G = typename decltype(named)::geometry;
    Tensor<T, typename C::XS> x(randn<typename C::XS>(7, 0));
    Tensor<T, typename C::template WS<G>> w(randn<typename C::template WS<G>>(7, 1));
    Tensor<T, Shape<C::co>> b(randn<Shape<C::co>>(7, 2));
    Tensor<T, typename C::template YS<G>> y;
    ops::conv2d_forward<G>(x, w, b, y);
    const Reference expected =
        direct_forward<G, typename C::XS, C::co>(x.data(), w.data(), b.data());
    const std::string what = std::string(named.name) + " " + type_name<T>();
    const LargestError worst =
        require_within_rounding(y.data(), expected, G::kh * G::kw * C::XS::extents[3] + 1, what);
    MESSAGE(what << ": largest forward error " << worst);
  });
}

TEST_CASE_TEMPLATE("conv2d backward: central differences in double", C, SmallCase, WideCase) {
  using XS = typename C::XS;
  for_each_geometry([](auto named) {
    using G = typename decltype(named)::geometry;
    using WS = typename C::template WS<G>;
    using YS = typename C::template YS<G>;
    Tensor<double, XS> x(randn<XS>(11, 0));
    Tensor<double, WS> w(randn<WS>(11, 1));
    Tensor<double, Shape<C::co>> b(randn<Shape<C::co>>(11, 2));
    const Tensor<double, YS> g(randn<YS>(11, 3));
    Tensor<double, YS> y;
    // loss = <y, g>, so g is exactly d(loss)/dy.
    auto loss = [&] {
      ops::conv2d_forward<G>(x, w, b, y);
      return test::dot(y.data(), g.data(), YS::size);
    };

    Tensor<double, XS> dx;
    Tensor<double, WS> dw;
    Tensor<double, Shape<C::co>> db;
    ops::conv2d_backward_input<G>(w, g, dx);
    ops::conv2d_backward_params<G>(x, g, dw, db);

    const double ex =
        test::max_relative_error(dx.data(), test::numerical_gradient(loss, x.data(), XS::size));
    const double ew =
        test::max_relative_error(dw.data(), test::numerical_gradient(loss, w.data(), WS::size));
    const double eb =
        test::max_relative_error(db.data(), test::numerical_gradient(loss, b.data(), C::co));
    MESSAGE(std::string(named.name)
            << ": largest relative gradient error dx " << ex << ", dw " << ew << ", db " << eb);
    CHECK(ex <= 1e-6);
    CHECK(ew <= 1e-6);
    CHECK(eb <= 1e-6);
  });
}

TEST_CASE_TEMPLATE("conv2d backward matches the direct loops", T, float, double) {
  using C = SmallCase;
  using XS = typename C::XS;
  for_each_geometry([](auto named) {
    using G = typename decltype(named)::geometry;
    using WS = typename C::template WS<G>;
    using YS = typename C::template YS<G>;
    Tensor<T, XS> x(randn<XS>(5, 0));
    Tensor<T, WS> w(randn<WS>(5, 1));
    Tensor<T, YS> dy(randn<YS>(5, 2));
    Tensor<T, XS> dx;
    Tensor<T, WS> dw;
    Tensor<T, Shape<C::co>> db;
    ops::conv2d_backward_input<G>(w, dy, dx);
    ops::conv2d_backward_params<G>(x, dy, dw, db);
    const DirectGradients expected = direct_backward<G, XS, C::co>(x.data(), w.data(), dy.data());
    const std::string what = std::string(named.name) + " " + type_name<T>();
    require_within_rounding(dx.data(), expected.dx, C::co * G::kh * G::kw, what + " dx");
    require_within_rounding(dw.data(), expected.dw, YS::size / C::co, what + " dw");
    require_within_rounding(db.data(), expected.db, YS::size / C::co, what + " db");
  });
}

TEST_CASE_TEMPLATE("conv2d: forward and backward_input overwrite, backward_params accumulates", T,
                   float, double) {
  using C = SmallCase;
  using XS = typename C::XS;
  for_each_geometry([](auto named) {
    using G = typename decltype(named)::geometry;
    using WS = typename C::template WS<G>;
    using YS = typename C::template YS<G>;
    INFO(named.name << " " << type_name<T>());
    const T nan = std::numeric_limits<T>::quiet_NaN();
    Tensor<T, XS> x(randn<XS>(3, 0));
    Tensor<T, WS> w(randn<WS>(3, 1));
    Tensor<T, Shape<C::co>> b(randn<Shape<C::co>>(3, 2));
    Tensor<T, YS> dy(randn<YS>(3, 3));

    Tensor<T, YS> y_clean, y_poisoned;
    y_poisoned = nan;
    ops::conv2d_forward<G>(x, w, b, y_clean);
    ops::conv2d_forward<G>(x, w, b, y_poisoned);
    for (index_t i = 0; i < YS::size; ++i)
      REQUIRE(y_poisoned[i] == y_clean[i]);

    Tensor<T, XS> dx_clean, dx_poisoned;
    dx_poisoned = nan;
    ops::conv2d_backward_input<G>(w, dy, dx_clean);
    ops::conv2d_backward_input<G>(w, dy, dx_poisoned);
    for (index_t i = 0; i < XS::size; ++i)
      REQUIRE(dx_poisoned[i] == dx_clean[i]);
    ops::conv2d_backward_input<G>(w, dy, dx_poisoned);
    for (index_t i = 0; i < XS::size; ++i)
      REQUIRE(dx_poisoned[i] == dx_clean[i]);

    Tensor<T, WS> dw;
    Tensor<T, Shape<C::co>> db;
    ops::conv2d_backward_params<G>(x, dy, dw, db);
    const Tensor<T, WS> dw_once = dw;
    const Tensor<T, Shape<C::co>> db_once = db;
    ops::conv2d_backward_params<G>(x, dy, dw, db);
    // The second call adds the same sums to a nonzero start, so only its final roundings differ.
    const double tolerance = 8 * std::numeric_limits<T>::epsilon();
    for (index_t i = 0; i < WS::size; ++i)
      REQUIRE(std::abs(dw[i] - 2 * dw_once[i]) <= tolerance * std::abs(dw_once[i]));
    for (index_t i = 0; i < C::co; ++i)
      REQUIRE(std::abs(db[i] - 2 * db_once[i]) <= tolerance * std::abs(db_once[i]));
  });
}

TEST_CASE_TEMPLATE("conv2d: batches that span several workspace chunks", T, float, double) {
  // Most chunk boundaries fall inside an image and inside an output line, where im2col and
  // col2im must hand over exactly; the static_assert keeps these sizes large enough to chunk.
  auto check = [](auto named, auto operands) {
    using G = typename decltype(named)::geometry;
    using C = decltype(operands);
    using XS = typename C::XS;
    using P = ops::detail::Conv2dProblem<G, XS, typename C::template WS<G>>;
    static_assert(P::template chunk_rows<T> < P::m,
                  "the test case must span at least two workspace chunks");
    const std::string what = std::string(named.name) + " " + type_name<T>() + ", " +
                             std::to_string(P::m) + " rows in chunks of " +
                             std::to_string(P::template chunk_rows<T>);
    const auto [ey, ex, ew, eb] = check_against_direct_loops<G, T, XS, C::co>(9, what);
    MESSAGE(what << ": largest errors y " << ey << ", dx " << ex << ", dw " << ew << ", db " << eb);
  };
  check(Named<ops::conv_same<3>>{"3x3 stride 1 pad 1"}, Operands<3, 40, 40, 32, 8>{});
  check(Named<ops::Conv2dGeometry<5, 3, 2, 2, 1, 0, 1>>{"5x3 stride 2 pads (2,1,0,1)"},
        Operands<3, 40, 40, 64, 8>{});
}

TEST_CASE_TEMPLATE("conv2d at odd channel counts and many bands matches the direct loops", T, float,
                   double) {
  const std::string direct = direct_kernels_available() ? "in use" : "not available";
  MESSAGE("direct SIMD kernels " << direct << " for float");
  check_every_geometry<T, OddDirectCase>(13, "");
  check_every_geometry<T, ExactVectorCase>(13, "");
  check_every_geometry<T, OneChannelCase>(13, "");
  check_every_geometry<T, ManyBandsCase>(13, "");
}

TEST_CASE("conv2d in float gives the same bits on one thread as on all") {
  // The weight gradient sums over pixels, which the threads share: its order is fixed by the
  // problem, not by the thread count or timing. Pointwise convolutions are one BLAS call, whose
  // summation order is the BLAS's business. (Forward and input gradient write each element from
  // one thread; the forward is here as the direct kernels' other half.) Without the direct kernels
  // (LDM_CPU_ISA=none, or no AVX2) the weight gradient is a BLAS call as well.
  if (!direct_kernels_available()) return;
  using C = ManyBandsCase;
  using XS = typename C::XS;
  for_each_geometry([](auto named) {
    using G = typename decltype(named)::geometry;
    if constexpr (G::pointwise) return;
    using WS = typename C::template WS<G>;
    using YS = typename C::template YS<G>;
    const std::string name = named.name;
    INFO(name);
    const Tensor<float, XS> x(randn<XS>(17, 0));
    const Tensor<float, WS> w(randn<WS>(17, 1));
    const Tensor<float, Shape<C::co>> b(randn<Shape<C::co>>(17, 2));
    const Tensor<float, YS> dy(randn<YS>(17, 3));
    struct Results {
      Tensor<float, YS> y;
      Tensor<float, WS> dw;
      Tensor<float, Shape<C::co>> db;
    };
    auto run = [&](Results& r) {
      ops::conv2d_forward<G>(x, w, b, r.y);
      ops::conv2d_backward_params<G>(x, dy, r.dw, r.db);
    };
    Results all, one;
    run(all);
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    run(one);
    omp_set_num_threads(threads);
    for (index_t i = 0; i < YS::size; ++i)
      REQUIRE(one.y[i] == all.y[i]);
    for (index_t i = 0; i < WS::size; ++i)
      REQUIRE(one.dw[i] == all.dw[i]);
    for (index_t i = 0; i < C::co; ++i)
      REQUIRE(one.db[i] == all.db[i]);
  });
}

#if LDM_CONV2D_DIRECT
namespace {

// Channel counts against both vector widths (AVX2 blocks of 16 channels, AVX-512 blocks of 32):
// 40 = 32 + 8 (AVX-512: a full block, then half a vector; AVX2: two blocks and one vector),
// 48 = 32 + 16 (a block of one whole 16-float vector), 21 and 12 (in the cases above: partial
// 16-float vectors), and 3 (a few lanes, which AVX2 takes on either setting); width 25 makes
// bands of 100 pixels, a short last tile of 4 for both tile lengths (12 and 6 pixels), and 13
// output columns at stride 2; 13 and 7 input channels (3x3: 117 and 63 rows) leave short tiles
// of weight-gradient rows (8 rows on AVX-512, 6 on AVX2).
using TwoBlocksCase = Operands<2, 9, 25, 13, 40>;
using WholeVectorBlockCase = Operands<1, 10, 25, 16, 48>;
using FewChannelsCase = Operands<2, 6, 14, 5, 3>;

template <class C, class G>
struct Outputs {
  Tensor<float, typename C::template YS<G>> y;
  Tensor<float, typename C::XS> dx;
  Tensor<float, typename C::template WS<G>> dw;
  Tensor<float, Shape<C::co>> db;
};

// The forward and both gradients of G in float on one thread count; dw and db start from zero.
template <class C, class G>
void run_all(int threads, Outputs<C, G>& out) {
  using XS = typename C::XS;
  using WS = typename C::template WS<G>;
  using YS = typename C::template YS<G>;
  const Tensor<float, XS> x(randn<XS>(19, 0));
  const Tensor<float, WS> w(randn<WS>(19, 1));
  const Tensor<float, Shape<C::co>> b(randn<Shape<C::co>>(19, 2));
  const Tensor<float, YS> dy(randn<YS>(19, 3));
  const int all = omp_get_max_threads();
  omp_set_num_threads(threads);
  ops::conv2d_forward<G>(x, w, b, out.y);
  ops::conv2d_backward_input<G>(w, dy, out.dx);
  ops::conv2d_backward_params<G>(x, dy, out.dw, out.db);
  omp_set_num_threads(all);
}

template <class T, class S>
void require_same_bits(const Tensor<T, S>& got, const Tensor<T, S>& expected,
                       const std::string& what) {
  for (index_t i = 0; i < S::size; ++i) {
    INFO(what << ": element " << i);
    REQUIRE(got[i] == expected[i]);
  }
}

}  // namespace

TEST_CASE("conv2d on every instruction set the CPU has matches the direct loops") {
  for (const simd::Isa isa : isas_here()) {
    const UseIsa use(isa);
    MESSAGE("direct kernels: " << simd::isa_name(isa));
    const std::string name = std::string(simd::isa_name(isa)) + " ";
    check_every_geometry<float, OddDirectCase>(23, name);
    check_every_geometry<float, OneChannelCase>(23, name);
    check_every_geometry<float, TwoBlocksCase>(23, name);
    check_every_geometry<float, WholeVectorBlockCase>(23, name);
    check_every_geometry<float, FewChannelsCase>(23, name);
  }
}

TEST_CASE("conv2d's direct kernels give the same bits on every instruction set and thread count") {
  // Each accumulator lane adds the same products in the same order whatever the vector width,
  // and the weight gradient's partial sums are fixed by the problem. The input gradient at
  // stride 2 is the BLAS's, so it is compared at one thread count only.
  if (simd::widest_isa() == simd::Isa::none) return;
  auto check = [](auto operands) {
    using C = decltype(operands);
    for_each_geometry([](auto named) {
      using G = typename decltype(named)::geometry;
      if constexpr (G::pointwise) return;
      const int all = omp_get_max_threads();
      Outputs<C, G> expected;
      {
        const UseIsa use(simd::Isa::avx2);
        run_all(all, expected);
      }
      for (const simd::Isa isa : isas_here()) {
        if (isa == simd::Isa::none) continue;
        const UseIsa use(isa);
        for (const int threads : {all, 1}) {
          const std::string what = std::string(simd::isa_name(isa)) + " " + named.name + " on " +
                                   std::to_string(threads) + " threads";
          Outputs<C, G> got;
          run_all(threads, got);
          require_same_bits(got.y, expected.y, what + " y");
          require_same_bits(got.dw, expected.dw, what + " dw");
          require_same_bits(got.db, expected.db, what + " db");
          if (threads == all || G::stride == 1)
            require_same_bits(got.dx, expected.dx, what + " dx");
        }
      }
    });
  };
  check(TwoBlocksCase{});
  check(ManyBandsCase{});
}

TEST_CASE("LDM_CPU_ISA names the instruction set of the direct kernels") {
  CHECK(simd::parse_isa(nullptr) == simd::widest_isa());
  CHECK(simd::parse_isa("") == simd::widest_isa());
  for (const simd::Isa isa : {simd::Isa::none, simd::Isa::avx2, simd::Isa::avx512}) {
    const std::string name(simd::isa_name(isa));
    INFO(name);
    if (isa <= simd::widest_isa())
      CHECK(simd::parse_isa(name.c_str()) == isa);
    else
      CHECK_THROWS_AS(simd::parse_isa(name.c_str()), Error);
  }
  for (const char* bad : {"AVX512", "sse", "avx-512", "avx2 "}) {
    INFO(bad);
    try {
      simd::parse_isa(bad);
      FAIL("no ldm::Error");
    } catch (const Error& e) {
      const std::string message = e.what();
      CHECK(message.find("LDM_CPU_ISA") != std::string::npos);
      CHECK(message.find(std::string("\"") + bad + "\"") != std::string::npos);
    }
  }
}
#endif
