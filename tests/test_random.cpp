#include <doctest/doctest.h>

#include <omp.h>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <ldm/ldm.hpp>
#include <vector>

using namespace ldm;

TEST_CASE("Philox-4x32-10 matches the published known-answer vectors") {
  // From Random123's kat_vectors (Salmon et al.): counter {c0..c3}, key {k0, k1}.
  // Our stream mapping puts block in c0/c1, offset in c2/c3 and seed in k0/k1.
  auto zero = Philox4x32::generate(0, 0, 0);
  CHECK(zero.v[0] == 0x6627e8d5u);
  CHECK(zero.v[1] == 0xe169c58du);
  CHECK(zero.v[2] == 0xbc57ac4cu);
  CHECK(zero.v[3] == 0x9b00dbd8u);

  auto ones = Philox4x32::generate(~0ull, ~0ull, ~0ull);
  CHECK(ones.v[0] == 0x408f276du);
  CHECK(ones.v[1] == 0x41c83b0eu);
  CHECK(ones.v[2] == 0xa20bc7c6u);
  CHECK(ones.v[3] == 0x6d5451fdu);

  // The digits-of-pi vector: counter {243f6a88, 85a308d3, 13198a2e, 03707344},
  // key {a4093822, 299f31d0}.
  auto pi =
      Philox4x32::generate(0x299f31d0a4093822ull, 0x0370734413198a2eull, 0x85a308d3243f6a88ull);
  CHECK(pi.v[0] == 0xd16cfe09u);
  CHECK(pi.v[1] == 0x94fdccebu);
  CHECK(pi.v[2] == 0x5001e420u);
  CHECK(pi.v[3] == 0x24126ea1u);
}

TEST_CASE("uniforms lie in the open interval (0, 1) for every 32-bit input") {
  // The extremes: 2^-25 at the bottom; at the top (k + 1/2) / 2^24 would round to exactly 1.
  CHECK(uint_to_open_unit(0u) == 0x1p-25f);
  CHECK(uint_to_open_unit(0xFFu) == 0x1p-25f);
  CHECK(uint_to_open_unit(0xFFFFFFFFu) < 1.0f);
  CHECK(uint_to_open_unit(0xFFFFFFFFu) == std::nextafter(1.0f, 0.0f));
  CHECK(uint_to_open_unit(0xFFFFFF00u) == std::nextafter(1.0f, 0.0f));

  // Every value of the 24 bits used, at both ends of the 8 bits dropped: strictly inside (0, 1),
  // non-decreasing, and the unclamped formula's value everywhere but at the top.
  float previous = 0.0f;
  bool inside = true, increasing = true, unchanged = true;
  for (std::uint32_t k = 0; k < (1u << 24); ++k) {
    const float low = uint_to_open_unit(k << 8), high = uint_to_open_unit(k << 8 | 0xFFu);
    inside = inside && low == high && low > 0.0f && low < 1.0f;
    increasing = increasing && low >= previous;
    if (k + 1 < (1u << 24)) unchanged = unchanged && low == (float(k) + 0.5f) * 0x1p-24f;
    previous = low;
  }
  CHECK(inside);
  CHECK(increasing);
  CHECK(unchanged);
}

TEST_CASE("element i of a stream is the same however the work is split") {
  constexpr index_t samples = 12, per_sample = 5 * 5 * 3;  // odd sizes: blocks straddle samples
  using Whole = Shape<samples, 5, 5, 3>;
  Tensor<float, Whole> whole, uniform_whole;
  whole = randn<Whole>(42, 7);
  uniform_whole = rand<Whole>(42, 7);

  // The same stream in windows of 1, 5 and 7 samples.
  Tensor<float, Shape<1, 5, 5, 3>> one;
  for (index_t s = 0; s < samples; ++s) {
    one = randn<Shape<1, 5, 5, 3>>(42, 7, s * per_sample);
    for (index_t i = 0; i < per_sample; ++i)
      REQUIRE(one[i] == whole[s * per_sample + i]);
  }
  Tensor<float, Shape<5, 5, 5, 3>> five;
  five = randn<Shape<5, 5, 5, 3>>(42, 7, 7 * per_sample);
  for (index_t i = 0; i < five.size; ++i)
    REQUIRE(five[i] == whole[7 * per_sample + i]);
  Tensor<float, Shape<7, 5, 5, 3>> seven;
  seven = rand<Shape<7, 5, 5, 3>>(42, 7, 5 * per_sample);
  for (index_t i = 0; i < seven.size; ++i)
    REQUIRE(seven[i] == uniform_whole[5 * per_sample + i]);

  // And however many threads draw it.
  for (int threads : {1, 2, 5}) {
    omp_set_num_threads(threads);
    using Big = Shape<1 << 17>;
    Tensor<float, Big> a;
    a = randn<Big>(3, 1);
    for (index_t i = 0; i < Big::size; i += 997)
      REQUIRE(a[i] == normal(3, 1, i));
  }
  omp_set_num_threads(omp_get_num_procs());

  // Different seeds and offsets give different streams.
  CHECK(normal(1, 0, 0) != normal(2, 0, 0));
  CHECK(normal(1, 0, 0) != normal(1, 1, 0));
}

namespace {
double normal_cdf(double x) {
  return 0.5 * std::erfc(-x / std::sqrt(2.0));
}
}  // namespace

TEST_CASE("statistics: 10^6 normals have mean 0, variance 1 and pass Kolmogorov-Smirnov") {
  using Million = Shape<1000000>;
  Tensor<float, Million> z;
  z = randn<Million>(2024);
  const double n = Million::size;
  const double m = mean(z);
  Tensor<float, Million> sq;
  sq = square(z - float(m));
  const double variance = sum(sq) / (n - 1);
  // Standard errors: 1/sqrt(n) = 1e-3 for the mean, sqrt(2/n) = 1.4e-3 for the variance; 5 sigma.
  CHECK(std::abs(m) < 5e-3);
  CHECK(std::abs(variance - 1) < 7e-3);

  std::vector<float> sorted(z.data(), z.data() + Million::size);
  std::sort(sorted.begin(), sorted.end());
  double d = 0;
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    double f = normal_cdf(sorted[i]);
    d = std::max({d, f - double(i) / n, double(i + 1) / n - f});
  }
  // The 1% critical value of the KS statistic is 1.628 / sqrt(n).
  INFO("KS statistic D = " << d);
  CHECK(d < 1.628 / std::sqrt(n));

  using Uniforms = Shape<1000000>;
  Tensor<float, Uniforms> u;
  u = rand<Uniforms>(2025);
  CHECK(min(u) > 0.0f);
  CHECK(max(u) < 1.0f);
  CHECK(std::abs(mean(u) - 0.5) < 5 * std::sqrt(1.0 / 12 / n));
  std::vector<float> us(u.data(), u.data() + Uniforms::size);
  std::sort(us.begin(), us.end());
  double du = 0;
  for (std::size_t i = 0; i < us.size(); ++i)
    du = std::max({du, us[i] - double(i) / n, double(i + 1) / n - us[i]});
  CHECK(du < 1.628 / std::sqrt(n));
}
