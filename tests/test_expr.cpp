#include <doctest/doctest.h>

#include <omp.h>
#include <cmath>
#include <cstdint>
#include <ldm/ldm.hpp>
#include <limits>
#include <vector>

using namespace ldm;

namespace {
using S = Shape<3, 5, 7, 9>;  // odd extents everywhere: N, H, W, C

template <class T, class Sh>
void fill_normal(Tensor<T, Sh>& t, std::uint64_t seed) {
  t = randn<Sh>(seed);
}

// Element-by-element comparison with a relative tolerance, reporting the first bad index.
template <class T, class Sh, class F>
void check_each(const Tensor<T, Sh>& actual, F expected, double rel = 1e-6) {
  for (index_t i = 0; i < Sh::size; ++i) {
    double e = expected(i);
    double a = actual[i];
    REQUIRE_MESSAGE(std::abs(a - e) <= rel * (1 + std::abs(e)),
                    "index " << i << ": " << a << " vs " << e);
  }
}
}  // namespace

TEST_CASE("elementwise: arithmetic and functions against explicit loops at 3x5x7x9") {
  Tensor<float, S> a, b, y;
  fill_normal(a, 1);
  fill_normal(b, 2);

  y = a * 2.0f + b / 3.0f - 1.0f;
  check_each(y, [&](index_t i) { return a[i] * 2.0f + b[i] / 3.0f - 1.0f; });

  y = 0.5f - a * b;
  check_each(y, [&](index_t i) { return 0.5f - a[i] * b[i]; });

  y = exp(a) + log(abs(b) + 1.0f) + sqrt(square(a)) + tanh(b);
  check_each(
      y,
      [&](index_t i) {
        return std::exp(a[i]) + std::log(std::abs(b[i]) + 1.0f) + std::abs(a[i]) + std::tanh(b[i]);
      },
      1e-5);

  y = sigmoid(a) - silu(b) + rsqrt(abs(a) + 0.5f);
  check_each(
      y,
      [&](index_t i) {
        double s = 1 / (1 + std::exp(-double(a[i])));
        double silu_b = b[i] / (1 + std::exp(-double(b[i])));
        return s - silu_b + 1 / std::sqrt(std::abs(a[i]) + 0.5);
      },
      1e-5);

  y = clamp(a, -0.5, 0.25) + maximum(a, b) - minimum(a, 0.0f) - (-b);
  check_each(y, [&](index_t i) {
    return std::fmin(std::fmax(a[i], -0.5f), 0.25f) + std::fmax(a[i], b[i]) -
           std::fmin(a[i], 0.0f) + b[i];
  });
}

TEST_CASE("compound assignment evaluates against the old value") {
  Tensor<float, S> a, b, y;
  fill_normal(a, 3);
  fill_normal(b, 4);
  y = a;
  y += b * 2.0f;
  check_each(y, [&](index_t i) { return a[i] + 2 * b[i]; });
  y -= a;
  check_each(
      y, [&](index_t i) { return 2 * b[i]; }, 1e-5);
  y *= b;
  check_each(
      y, [&](index_t i) { return 2 * b[i] * b[i]; }, 1e-5);
  y /= 2.0f;
  check_each(
      y, [&](index_t i) { return b[i] * b[i]; }, 1e-5);
  y = 3.0f;
  check_each(y, [](index_t) { return 3.0; });
}

TEST_CASE("aliasing: a = a * 2 + b reads each old a[i] before writing it") {
  Tensor<float, S> a, b;
  fill_normal(a, 5);
  fill_normal(b, 6);
  Tensor<float, S> old = a;
  a = a * 2.0f + b;
  check_each(a, [&](index_t i) { return old[i] * 2 + b[i]; });
  a = b - a;
  check_each(
      a, [&](index_t i) { return b[i] - (old[i] * 2 + b[i]); }, 1e-5);
}

TEST_CASE("broadcasting along declared axes") {
  Tensor<float, S> x, y;
  fill_normal(x, 7);
  Tensor<float, Shape<9>> per_channel;
  Tensor<float, Shape<3>> per_sample;
  Tensor<float, Shape<3, 9>> per_sample_channel;
  Tensor<float, Shape<5, 7>> per_position;
  fill_normal(per_channel, 8);
  fill_normal(per_sample, 9);
  fill_normal(per_sample_channel, 10);
  fill_normal(per_position, 11);

  y = x * broadcast<S, 0, 1, 2>(per_channel);
  check_each(y, [&](index_t i) { return x[i] * per_channel[i % 9]; });

  y = x + broadcast<S, 1, 2, 3>(per_sample);
  check_each(y, [&](index_t i) { return x[i] + per_sample[i / (5 * 7 * 9)]; });

  y = broadcast<S, 1, 2>(per_sample_channel) - x;
  check_each(y, [&](index_t i) {
    index_t n = i / (5 * 7 * 9), c = i % 9;
    return per_sample_channel(n, c) - x[i];
  });

  y = broadcast<S, 0, 3>(per_position);
  check_each(y, [&](index_t i) {
    index_t h = (i / (7 * 9)) % 5, w = (i / 9) % 7;
    return per_position(h, w);
  });

  // A broadcast of an expression, not just of a tensor.
  y = x * broadcast<S, 0, 1, 2>(per_channel * 2.0f + 1.0f);
  check_each(y, [&](index_t i) { return x[i] * (per_channel[i % 9] * 2 + 1); });
}

TEST_CASE("reductions over chosen axes and over everything") {
  Tensor<float, S> x;
  fill_normal(x, 12);

  Tensor<float, Shape<9>> channel_sum, channel_mean, channel_max;
  channel_sum = sum<0, 1, 2>(x);
  channel_mean = mean<0, 1, 2>(x);
  channel_max = max<0, 1, 2>(x);
  for (index_t c = 0; c < 9; ++c) {
    double s = 0, m = -INFINITY;
    for (index_t i = c; i < S::size; i += 9)
      s += x[i], m = std::fmax(m, x[i]);
    CHECK(channel_sum[c] == doctest::Approx(s).epsilon(1e-6));
    CHECK(channel_mean[c] == doctest::Approx(s / (3 * 5 * 7)).epsilon(1e-6));
    CHECK(channel_max[c] == float(m));
  }

  Tensor<float, Shape<3, 9>> per_sample_channel;
  per_sample_channel = sum<1, 2>(x);
  Tensor<float, Shape<5, 7>> spatial_min;
  spatial_min = min<0, 3>(x);
  for (index_t n = 0; n < 3; ++n)
    for (index_t c = 0; c < 9; ++c) {
      double s = 0;
      for (index_t h = 0; h < 5; ++h)
        for (index_t w = 0; w < 7; ++w)
          s += x(n, h, w, c);
      CHECK(per_sample_channel(n, c) == doctest::Approx(s).epsilon(1e-6));
    }
  for (index_t h = 0; h < 5; ++h)
    for (index_t w = 0; w < 7; ++w) {
      float m = INFINITY;
      for (index_t n = 0; n < 3; ++n)
        for (index_t c = 0; c < 9; ++c)
          m = std::fmin(m, x(n, h, w, c));
      CHECK(spatial_min(h, w) == m);
    }

  // A reduction composes with elementwise work on its own shape: the variance per channel.
  Tensor<float, S> centred;
  centred = x - broadcast<S, 0, 1, 2>(channel_mean);
  Tensor<float, Shape<9>> variance;
  variance = sum<0, 1, 2>(square(centred)) / float(3 * 5 * 7);
  for (index_t c = 0; c < 9; ++c) {
    double s = 0;
    for (index_t i = c; i < S::size; i += 9)
      s += (x[i] - channel_mean[c]) * (x[i] - channel_mean[c]);
    CHECK(variance[c] == doctest::Approx(s / 105).epsilon(1e-5));
  }

  double total = 0, largest = -INFINITY, smallest = INFINITY;
  for (index_t i = 0; i < S::size; ++i)
    total += x[i], largest = std::fmax(largest, x[i]), smallest = std::fmin(smallest, x[i]);
  CHECK(sum(x) == doctest::Approx(total).epsilon(1e-6));
  CHECK(mean(x) == doctest::Approx(total / S::size).epsilon(1e-6));
  CHECK(max(x) == float(largest));
  CHECK(min(x) == float(smallest));
  CHECK(sum(x * 2.0f) == doctest::Approx(2 * total).epsilon(1e-6));
}

TEST_CASE("integer max and min start from the type's extreme values") {
  // Integers have no infinity: the identities of max and min are the type's extreme values. The
  // old identity -T(INFINITY) converted infinity to int (undefined; GCC folds it to INT_MAX) and
  // negated it, so the max of INT_MIN values came out as INT_MIN + 1. All values at one extreme
  // make a wrong identity show in the result.
  using I = std::int32_t;
  constexpr I lowest = std::numeric_limits<I>::lowest(), highest = std::numeric_limits<I>::max();
  Tensor<I, Shape<2, 3>> x;
  const I values[] = {5, -7, 12, 3, 9, -2};
  for (index_t i = 0; i < 6; ++i)
    x[i] = values[i];
  CHECK(max(x) == 12);
  CHECK(min(x) == -7);
  CHECK(sum(x) == 20);
  Tensor<I, Shape<3>> column_max, column_min;
  column_max = max<0>(x);
  column_min = min<0>(x);
  CHECK(column_max[0] == 5);
  CHECK(column_max[1] == 9);
  CHECK(column_max[2] == 12);
  CHECK(column_min[0] == 3);
  CHECK(column_min[1] == -7);
  CHECK(column_min[2] == -2);

  for (index_t i = 0; i < 6; ++i)
    x[i] = highest;
  CHECK(min(x) == highest);
  CHECK(max(x) == highest);
  column_min = min<0>(x);
  CHECK(column_min[1] == highest);
  for (index_t i = 0; i < 6; ++i)
    x[i] = lowest;
  CHECK(max(x) == lowest);
  CHECK(min(x) == lowest);
  column_max = max<0>(x);
  CHECK(column_max[1] == lowest);

  // The identities and accumulators themselves, for a type tensors do not hold as well.
  CHECK(expr::reducer::max::identity<std::uint32_t>() == 0u);
  CHECK(expr::reducer::min::identity<std::uint32_t>() == 0xFFFFFFFFu);
  CHECK(expr::reducer::max::identity<double>() == -INFINITY);
  static_assert(std::is_same_v<expr::accumulator_t<expr::reducer::sum, float>, double>);
  static_assert(std::is_same_v<expr::accumulator_t<expr::reducer::sum, I>, std::int64_t>);
  static_assert(std::is_same_v<expr::accumulator_t<expr::reducer::max, float>, float>);
  static_assert(std::is_same_v<expr::accumulator_t<expr::reducer::min, I>, I>);
}

TEST_CASE("float max and min of all-infinite values") {
  Tensor<float, Shape<3>> x;
  for (index_t i = 0; i < 3; ++i)
    x[i] = INFINITY;
  CHECK(min(x) == INFINITY);
  CHECK(max(x) == INFINITY);
  for (index_t i = 0; i < 3; ++i)
    x[i] = -INFINITY;
  CHECK(min(x) == -INFINITY);
  CHECK(max(x) == -INFINITY);
}

TEST_CASE("a full reduction does not depend on the thread count") {
  using Big = Shape<1 << 20>;
  Tensor<float, Big> x;
  x = randn<Big>(13);
  const float reference = sum(x);
  for (int threads : {1, 2, 3, 7}) {
    omp_set_num_threads(threads);
    CHECK(sum(x) == reference);
  }
  omp_set_num_threads(omp_get_num_procs());
}

TEST_CASE("large assignments run in parallel and agree with the serial loop") {
  using Big = Shape<3, 64, 64, 33>;  // above the parallel threshold, not a multiple of anything
  Tensor<float, Big> a, b, y;
  a = randn<Big>(14);
  b = rand<Big>(15);
  Tensor<float, Shape<33>> channel_sum;
  channel_sum = sum<0, 1, 2>(b);
  y = silu(a) * broadcast<Big, 0, 1, 2>(channel_sum);
  check_each(
      y,
      [&](index_t i) {
        double v = a[i];
        return v / (1 + std::exp(-v)) * channel_sum[i % 33];
      },
      1e-5);
}

TEST_CASE("bf16 tensors compute in float and round once on store") {
  Tensor<float, S> a;
  fill_normal(a, 16);
  Tensor<bf16, S> h;
  h = a;
  check_each(
      h, [&](index_t i) { return float(bf16(a[i])); }, 0);
  Tensor<float, S> y;
  y = h * 3.0f + a;
  check_each(y, [&](index_t i) { return float(bf16(a[i])) * 3.0f + a[i]; });
  h += a;
  check_each(
      h, [&](index_t i) { return float(bf16(float(bf16(a[i])) + a[i])); }, 0);
}

TEST_CASE("double tensors stay in double") {
  Tensor<double, Shape<5, 3>> d;
  d = 1.0;
  d = d / 3.0;
  CHECK(d[4] == 1.0 / 3.0);
  Tensor<float, Shape<5, 3>> f;
  f = d * 3.0;
  CHECK(f[2] == 1.0f);
}

TEST_CASE("comparisons give 1 or 0 and mask like values") {
  Tensor<float, S> a, b, y;
  fill_normal(a, 17);
  fill_normal(b, 18);
  y = (a < b) + (a <= 0.0f) * 2.0f + (a > b) * 4.0f + (b >= 0.5f) * 8.0f;
  check_each(y, [&](index_t i) {
    return double(a[i] < b[i]) + 2.0 * (a[i] <= 0) + 4.0 * (a[i] > b[i]) + 8.0 * (b[i] >= 0.5f);
  });
}
