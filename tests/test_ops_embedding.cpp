#include <doctest/doctest.h>

#include <cmath>
#include <ldm/ldm.hpp>
#include <ldm/ops/embedding.hpp>
#include <limits>
#include <string>

using namespace ldm;

namespace {

constexpr index_t kCount = 5;
constexpr float kTimesteps[kCount] = {0.0f, 1.0f, 17.0f, 250.5f, 999.0f};

// The embedding written from the formula, element by element: frequency i of half is
// max_period^(-i / (half - freq_shift)), sin in the first half and cos in the second (swapped when
// flipped), zero in the padding element of an odd Dim.
double expected_element(index_t dim, double t, index_t e, bool flip, double freq_shift,
                        double max_period, double scale) {
  const index_t half = dim / 2;
  if (e >= 2 * half) return 0.0;
  const index_t i = e % half;
  const double arg = scale * t * std::pow(max_period, -double(i) / (double(half) - freq_shift));
  const bool first_half = e < half;
  return first_half != flip ? std::sin(arg) : std::cos(arg);
}

template <index_t Dim, class T>
void check_embedding(bool flip, double freq_shift, double tolerance, double max_period = 10000,
                     double scale = 1) {
  Tensor<float, Shape<kCount>> t;
  for (index_t n = 0; n < kCount; ++n)
    t[n] = kTimesteps[n];
  Tensor<T, Shape<kCount, Dim>> out;
  out = randn<Shape<kCount, Dim>>(3) * std::numeric_limits<float>::quiet_NaN();

  ops::timestep_embedding(t, flip, freq_shift, out, max_period, scale);

  double worst = 0;
  for (index_t n = 0; n < kCount; ++n)
    for (index_t e = 0; e < Dim; ++e) {
      const double expected =
          expected_element(Dim, kTimesteps[n], e, flip, freq_shift, max_period, scale);
      const double error = std::abs(double(out(n, e)) - expected);
      REQUIRE_MESSAGE(error <= tolerance, "t=" << kTimesteps[n] << " element " << e << ": "
                                               << double(out(n, e)) << " vs " << expected);
      worst = std::max(worst, error);
    }
  MESSAGE("Dim=" << Dim << " " << (std::is_same_v<T, float> ? std::string("float") : "double")
                 << " flip=" << flip << " freq_shift=" << freq_shift << " max_period=" << max_period
                 << " scale=" << scale << ": largest error " << worst);
}

template <class T>
void check_all_variants(double tolerance) {
  for (bool flip : {false, true}) {
    for (double shift : {0.0, 1.0}) {
      check_embedding<8, T>(flip, shift, tolerance);
      check_embedding<7, T>(flip, shift, tolerance);
    }
    check_embedding<2, T>(flip, 0.0, tolerance);
    check_embedding<3, T>(flip, 0.0, tolerance);
  }
  check_embedding<32, T>(true, 0.0, tolerance);
  check_embedding<33, T>(false, 1.0, tolerance, 100.0, 2.5);
}

}  // namespace

TEST_CASE("timestep_embedding: against the formula, flipped or not, freq_shift 0 and 1, odd Dim") {
  // Both sides compute in double, the frequencies as pow here and as exp of a logarithm in the op:
  // 1e-16 apart, times arguments up to 2500 radians. Float output adds its rounding, 6e-8 at most.
  check_all_variants<double>(1e-12);
  check_all_variants<float>(1e-7);
}

TEST_CASE("timestep_embedding: matches diffusers' get_timestep_embedding") {
  // Printed once (with %.9g) by diffusers 0.42.1 on torch 2.15.0:
  //   get_timestep_embedding(torch.tensor([0., 1., 17., 999.]), 8, flip_sin_to_cos=True,
  //                          downscale_freq_shift=0)
  constexpr double expected[4][8] = {
      {1, 1, 1, 1, 0, 0, 0, 0},
      {0.540302336, 0.995004177, 0.999949992, 0.999999523, 0.841470957, 0.099833414, 0.00999983307,
       0.000999999815},
      {-0.275163352, -0.128844425, 0.985584795, 0.999855518, -0.961397469, 0.991664827, 0.169182345,
       0.0169991795},
      {0.999649823, 0.807455063, -0.844469786, 0.541143537, -0.0264607519, -0.589929104,
       -0.535603166, 0.840930223},
  };
  Tensor<float, Shape<4>> t;
  t[0] = 0, t[1] = 1, t[2] = 17, t[3] = 999;
  Tensor<float, Shape<4, 8>> out;
  ops::timestep_embedding(t, /*flip_sin_to_cos=*/true, /*freq_shift=*/0, out);
  // diffusers works in float32: its argument 999 * frequency carries float32 rounding (an ulp of
  // 999 is 6e-5) that shows as up to 5e-6 in the sines and cosines; ours is computed in double.
  const double tolerance = 1e-5;
  double worst = 0;
  for (index_t n = 0; n < 4; ++n)
    for (index_t e = 0; e < 8; ++e) {
      const double error = std::abs(double(out(n, e)) - expected[n][e]);
      REQUIRE_MESSAGE(error <= tolerance, "row " << n << " element " << e << ": " << out(n, e)
                                                 << " vs diffusers " << expected[n][e]);
      worst = std::max(worst, error);
    }
  MESSAGE("largest difference from diffusers: " << worst << " (tolerance " << tolerance << ")");
}

TEST_CASE("timestep_embedding: a freq_shift of Dim / 2 is reported, not turned into NaN") {
  Tensor<float, Shape<1>> t;
  Tensor<float, Shape<1, 2>> out;
  CHECK_THROWS_WITH_AS(ops::timestep_embedding(t, false, 1.0, out),
                       "ldm::ops::timestep_embedding: freq_shift must differ from Dim / 2 = 1",
                       Error);
  Tensor<float, Shape<1, 9>> wide;
  CHECK_THROWS_AS(ops::timestep_embedding(t, true, 4.0, wide), Error);
}
