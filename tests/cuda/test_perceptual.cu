// The perceptual terms on the device against the host: SSIM (loss and gradient, double on both
// sides, so they agree to rounding) and LPIPS (VGG16 on the device, in double and in float,
// against the host class in double, with the formula weights of tests/test_train_perceptual.cpp).
#include "cuda/support.cuh"
#include "support/lpips_weights.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include <ldm/io/safetensors.hpp>
#include <ldm/nn/state_dict.hpp>
#include <ldm/train/lpips.hpp>
#include <ldm/train/ssim.hpp>

#include "support/temp_folder.hpp"

using namespace ldm;  // `cuda` alone is ambiguous with libcu++'s namespace: say ldm::cuda

namespace {

// Uniform in (-1, 1) from the Philox stream (seed, offset), the images' range.
template <ShapeType S>
Tensor<float, S> host_images(std::uint64_t seed, std::uint64_t offset) {
  Tensor<float, S> x;
  for (index_t i = 0; i < S::size; ++i)
    x[i] = float(2 * double(uniform(seed, offset, i)) - 1);
  return x;
}

// Max |actual - expected| / max |expected| over the tensor, as the host LPIPS golden test measures
// float against float64; infinity if anything is not finite.
template <class T, ShapeType S>
double largest_relative_error(View<const T, S, ldm::cuda> actual, View<const double, S> expected) {
  const Tensor<T, S> got = to_host(actual);
  double worst = 0, scale = 0;
  for (index_t i = 0; i < S::size; ++i) {
    if (!std::isfinite(double(got[i]))) return std::numeric_limits<double>::infinity();
    worst = std::max(worst, std::abs(double(got[i]) - expected[i]));
    scale = std::max(scale, std::abs(expected[i]));
  }
  return worst / scale;
}

// Float through thirteen convolutions of up to 4608 terms, against double: the host golden test's
// bound for the same comparison.
constexpr double kLpipsFloatTolerance = 1e-4;
// Double on both sides: only the summation orders of the GEMMs differ.
constexpr double kLpipsDoubleTolerance = 1e-9;

// The device class in T (weights loaded from a file, or copied from the host reference) against
// the host class in double: distance and gradient of sum_n upstream[n] * distance[n].
template <class T, index_t N, index_t H, index_t W, index_t C>
void check_lpips_on_device(const std::string& what) {
  using Images = Shape<N, H, W, C>;
  using Reference = train::LPIPS<double, H, W, C>;
  using Device = train::LPIPS<T, H, W, C, ldm::cuda>;
  Reference reference;
  const auto& infos = reference.infos();
  for (std::size_t t = 0; t < infos.size(); ++t)
    nn::from_torch_layout(infos[t], test::formula_weight(std::uint32_t(t), infos[t]).data(),
                          reference.values().data());

  const Tensor<float, Images> reconstruction = host_images<Images>(31, 0);
  const Tensor<float, Images> target = host_images<Images>(31, 1);
  Tensor<float, Shape<N>> upstream;
  for (index_t n = 0; n < N; ++n)
    upstream[n] = n % 2 ? -1.25f : 0.75f;

  typename Reference::template Saved<N> saved;
  Tensor<double, Shape<N>> distance;
  Tensor<double, Images> dreconstruction;
  reference.forward(test::converted<double>(reconstruction.view()),
                    test::converted<double>(target.view()), saved, distance.view());
  reference.backward(saved, test::converted<double>(upstream.view()), dreconstruction.view());

  Device device;
  if constexpr (std::is_same_v<T, float>) {
    // The float network loads a weights file, as a real one would be: read and converted on the
    // host, copied to the device.
    ldm::test::TempFolder dir;
    io::SafetensorsWriter writer;
    for (std::size_t t = 0; t < infos.size(); ++t)
      writer.add(infos[t].name, test::formula_weight(std::uint32_t(t), infos[t]),
                 infos[t].torch_shape);
    writer.write(dir.path / "lpips.safetensors");
    device.load(io::SafetensorsFile::open(dir.path / "lpips.safetensors"));
  } else {
    copy_elements<host, ldm::cuda>(reference.values().data(), device.values().data(),
                                   std::size_t(Device::parameter_count));
  }
  Tensor<T, Images> x, y;
  Tensor<T, Shape<N>> up;
  x = reconstruction;
  y = target;
  up = upstream;
  const auto dev_x = to_device(x.view()), dev_y = to_device(y.view());
  const auto dev_up = to_device(up.view());
  typename Device::template Saved<N> dev_saved;
  auto dev_distance = test::poisoned<T, Shape<N>>();
  auto dev_dx = test::poisoned<T, Images>();
  device.forward(View<const T, Images, ldm::cuda>(dev_x), View<const T, Images, ldm::cuda>(dev_y),
                 dev_saved, dev_distance.view());
  device.backward(dev_saved, View<const T, Shape<N>, ldm::cuda>(dev_up), dev_dx.view());

  const View<const T, Shape<N>, ldm::cuda> got_distance(dev_distance);
  const View<const T, Images, ldm::cuda> got_dx(dev_dx);
  if constexpr (std::is_same_v<T, float>) {
    const double distance_error = largest_relative_error(got_distance, distance.view());
    const double gradient_error = largest_relative_error(got_dx, dreconstruction.view());
    MESSAGE(what << ": distance error " << distance_error << ", gradient error " << gradient_error);
    CHECK(distance_error <= kLpipsFloatTolerance);
    CHECK(gradient_error <= kLpipsFloatTolerance);
  } else {
    test::check_close(got_distance, distance.view(), kLpipsDoubleTolerance,
                      (what + " distance").c_str());
    test::check_close(got_dx, dreconstruction.view(), kLpipsDoubleTolerance,
                      (what + " gradient").c_str());
  }

  // Reproducible: a second pass gives the same bits.
  auto again = test::poisoned<T, Images>();
  device.forward(View<const T, Images, ldm::cuda>(dev_x), View<const T, Images, ldm::cuda>(dev_y),
                 dev_saved, dev_distance.view());
  device.backward(dev_saved, View<const T, Shape<N>, ldm::cuda>(dev_up), again.view());
  const Tensor<T, Images> first = to_host(got_dx);
  const Tensor<T, Images> second = to_host(View<const T, Images, ldm::cuda>(again));
  CHECK(std::memcmp(first.data(), second.data(), Tensor<T, Images>::bytes) == 0);
}

}  // namespace

// 17 x 19 pools to 8 x 9, 4 x 4, 2 x 2 and 1 x 1: odd edges dropped at every pool (floor mode).
TEST_CASE("LPIPS on the device in double equals the host's (RGB, 17x19, batch 3)") {
  check_lpips_on_device<double, 3, 17, 19, 3>("double RGB");
}

TEST_CASE("LPIPS on the device in float: loaded weights, RGB and gray (17x19, batch 3)") {
  check_lpips_on_device<float, 3, 17, 19, 3>("float RGB");
  check_lpips_on_device<float, 3, 17, 19, 1>("float gray");
}

TEST_CASE("SSIM loss and gradient on the device equal the host's double path") {
  constexpr index_t N = 3, H = 13, W = 17, C = 3;
  using Images = Shape<N, H, W, C>;
  const Tensor<float, Images> target = host_images<Images>(21, 0);
  Tensor<float, Images> reconstruction = host_images<Images>(21, 1);
  // Sample 1 close to its target, where SSIM is near 1; sample 2 equal to it (loss exactly 0).
  constexpr index_t per = Images::size / N;
  for (index_t i = 0; i < per; ++i) {
    reconstruction[per + i] = 0.9f * target[per + i] + 0.1f * reconstruction[per + i];
    reconstruction[2 * per + i] = target[2 * per + i];
  }
  Tensor<float, Shape<N>> upstream;
  upstream[0] = 0.75f;
  upstream[1] = -1.25f;
  upstream[2] = 2.0f;

  const auto x = test::converted<double>(reconstruction.view()),
             y = test::converted<double>(target.view());
  const auto up = test::converted<double>(upstream.view());
  Tensor<double, Shape<N>> loss;
  Tensor<double, Images> dx;
  train::ssim_loss_forward(x, y, loss.view());
  train::ssim_loss_backward(x, y, up, dx.view());

  const auto dev_x = to_device(reconstruction.view()), dev_y = to_device(target.view());
  const auto dev_up = to_device(upstream.view());
  auto dev_loss = test::poisoned<float, Shape<N>>();
  auto dev_dx = test::poisoned<float, Images>();
  train::ssim_loss_forward(View<const float, Images, ldm::cuda>(dev_x),
                           View<const float, Images, ldm::cuda>(dev_y), dev_loss.view());
  train::ssim_loss_backward(View<const float, Images, ldm::cuda>(dev_x),
                            View<const float, Images, ldm::cuda>(dev_y),
                            View<const float, Shape<N>, ldm::cuda>(dev_up), dev_dx.view());
  const Tensor<float, Shape<N>> got = to_host(View<const float, Shape<N>, ldm::cuda>(dev_loss));
  for (index_t n = 0; n < N; ++n) {
    MESSAGE("sample " << n << ": 1 - SSIM " << got[n] << " on the device, " << loss[n]
                      << " on the host");
    // Equal images give 0 up to the last bits of double rounding, which may differ between the
    // host's and the device's (contracted) arithmetic.
    CHECK(std::abs(double(got[n]) - loss[n]) <= test::kFloatTolerance * std::abs(loss[n]) + 1e-12);
  }
  test::check_close(View<const float, Images, ldm::cuda>(dev_dx), dx.view(), test::kFloatTolerance,
                    "SSIM gradient");

  // The same inputs give the same bits: the sums run in a fixed order.
  auto again = test::poisoned<float, Images>();
  train::ssim_loss_backward(View<const float, Images, ldm::cuda>(dev_x),
                            View<const float, Images, ldm::cuda>(dev_y),
                            View<const float, Shape<N>, ldm::cuda>(dev_up), again.view());
  const Tensor<float, Images> first = to_host(View<const float, Images, ldm::cuda>(dev_dx));
  const Tensor<float, Images> second = to_host(View<const float, Images, ldm::cuda>(again));
  CHECK(std::memcmp(first.data(), second.data(), Tensor<float, Images>::bytes) == 0);
}
