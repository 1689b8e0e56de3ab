// PSNR and SSIM on the [0, 1] scale, averaged over images: known values, the cap for identical
// images, clamping, and SSIM's luminance term, which tells the scales apart.
#include <doctest/doctest.h>

#include <ldm/eval/metrics.hpp>
#include <ldm/ldm.hpp>
#include <limits>

using namespace ldm;

namespace {
using Images = Shape<2, 16, 16, 1>;
}

TEST_CASE("psnr: known MSE, a mean over images, the cap, clamping") {
  Tensor<float, Images> a, b;
  // Image 0 differs by 0.2 on [-1, 1], 0.1 on [0, 1]: MSE 1e-2, 20 dB. Image 1 by 0.02: 40 dB.
  a.sample(0) = 0.3f;
  b.sample(0) = 0.5f;
  a.sample(1) = -0.25f;
  b.sample(1) = -0.27f;
  CHECK(eval::psnr(a, b) == doctest::Approx(30.0).epsilon(1e-5));
  CHECK(eval::psnr(b, a) == doctest::Approx(30.0).epsilon(1e-5));

  CHECK(eval::psnr(a, a) == eval::psnr_cap_db);
  // Beyond [-1, 1] both clamp to 1 (white), as a saved image would.
  a.sample(0) = 1.5f;
  b.sample(0) = 1.0f;
  CHECK(eval::psnr(a, b) == doctest::Approx((eval::psnr_cap_db + 40.0) / 2).epsilon(1e-5));
}

TEST_CASE("ssim: 1 for identical images, the luminance term on the [0, 1] scale") {
  Tensor<float, Images> a, b;
  a = randn<Images>(1) * 0.3f;
  CHECK(eval::ssim(a, a) == doctest::Approx(1.0).epsilon(1e-12));

  // Flat images have no variance, so SSIM is the luminance term alone,
  // (2 m1 m2 + C1) / (m1^2 + m2^2 + C1) with C1 = 0.01^2 on [0, 1]: means 0.25 and 0.75 for
  // -0.5 and 0.5. On [-1, 1] the same images would score about -1.
  a = -0.5f;
  b = 0.5f;
  const double c1 = 1e-4;
  const double expected = (2 * 0.25 * 0.75 + c1) / (0.25 * 0.25 + 0.75 * 0.75 + c1);
  CHECK(eval::ssim(a, b) == doctest::Approx(expected).epsilon(1e-12));
}

TEST_CASE("ssim: the mean of per-image values, symmetric, lower for noisier copies") {
  Tensor<float, Images> clean, slightly, very;
  clean = clamp(randn<Images>(2) * 0.5f, -1.0, 1.0);
  slightly = clean + randn<Images>(3) * 0.05f;
  very = clean + randn<Images>(4) * 0.5f;
  const double s = eval::ssim(clean, slightly), v = eval::ssim(clean, very);
  MESSAGE("SSIM with noise 0.05: " << s << ", with noise 0.5: " << v);
  CHECK(s < 1);
  CHECK(v < s);
  CHECK(eval::ssim(slightly, clean) == doctest::Approx(s).epsilon(1e-12));

  const double first = eval::ssim(clean.batch<1>(0), slightly.batch<1>(0));
  const double second = eval::ssim(clean.batch<1>(1), slightly.batch<1>(1));
  CHECK(s == doctest::Approx((first + second) / 2).epsilon(1e-12));
}

TEST_CASE("psnr and ssim refuse images holding a NaN or an infinity") {
  Tensor<float, Images> a, b;
  b[7] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH_AS(eval::psnr(a, b), doctest::Contains("ldm::eval::psnr: the second images"),
                       Error);
  CHECK_THROWS_WITH_AS(eval::ssim(b, a), doctest::Contains("ldm::eval::ssim: the first images"),
                       Error);
  // An infinity would otherwise clamp to a valid pixel.
  b[7] = std::numeric_limits<float>::infinity();
  CHECK_THROWS_AS(eval::psnr(a, b), Error);
}
