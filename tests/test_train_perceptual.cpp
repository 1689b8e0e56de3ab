// The perceptual terms of the autoencoder loss: LPIPS (VGG16) against the lpips package, SSIM
// against a direct double-precision reference, and the gradients of both, of max pooling and of
// ReLU against central finite differences in double.
//
// The LPIPS golden file (tools/golden/make_lpips_golden.py) stores no weights: VGG16's are 59 MB.
// Both sides compute them from the same formula instead (tests/support/lpips_weights.hpp, the
// script's docstring and the file's "weights" metadata), exactly: integer hashing and one float64
// expression per weight, rounded once to float32. The file holds the inputs, the package's
// distances and the gradient with respect to the reconstruction, computed in float64; ldm runs in
// float32 with the weights loaded through a safetensors file in PyTorch's layout, as real ones are.
// Tolerance: relative error <= 1e-4 against each tensor's largest magnitude, element by element.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include <ldm/core/random.hpp>
#include <ldm/core/tensor.hpp>
#include <ldm/expr/assign.hpp>
#include <ldm/expr/elementwise.hpp>
#include <ldm/expr/host_executor.hpp>
#include <ldm/io/safetensors.hpp>
#include <ldm/nn/state_dict.hpp>
#include <ldm/ops/pool.hpp>
#include <ldm/train/lpips.hpp>
#include <ldm/train/ssim.hpp>

#include "support/golden.hpp"
#include "support/gradcheck.hpp"
#include "support/lpips_weights.hpp"
#include "support/temp_folder.hpp"

using namespace ldm;
namespace fs = std::filesystem;

namespace {

constexpr double golden_tolerance = 1e-4;

template <class L>
void fill_formula_weights(L& lpips) {
  const auto& infos = lpips.infos();
  for (std::size_t t = 0; t < infos.size(); ++t)
    nn::from_torch_layout(infos[t], test::formula_weight(std::uint32_t(t), infos[t]).data(),
                          lpips.values().data());
}

// The formula weights as a weights file in the lpips package's names and layouts.
template <class L>
fs::path write_formula_weights(const L& lpips, const fs::path& path) {
  io::SafetensorsWriter writer;
  const auto& infos = lpips.infos();
  for (std::size_t t = 0; t < infos.size(); ++t)
    writer.add(infos[t].name, test::formula_weight(std::uint32_t(t), infos[t]),
               infos[t].torch_shape);
  writer.write(path);
  return path;
}

void expect_close(const std::string& what, double error) {
  MESSAGE(what << ": largest relative error " << error);
  CHECK(error <= golden_tolerance);
}

template <index_t C>
void check_lpips_golden(const std::string& name, const fs::path& weights) {
  using L = train::LPIPS<float, 32, 32, C>;
  auto file = test::open_golden("lpips_vgg_random");
  L lpips;
  lpips.load(io::SafetensorsFile::open(weights));
  Tensor<float, Shape<2, 32, 32, C>> reconstruction, target, dreconstruction;
  Tensor<float, Shape<2>> upstream, distance;
  test::read_activation(file, name + ".reconstruction", reconstruction.view());
  test::read_activation(file, name + ".target", target.view());
  test::read_activation(file, "upstream", upstream.view());
  typename L::template Saved<2> saved;
  lpips.forward(reconstruction, target, saved, distance.view());
  dreconstruction = std::numeric_limits<float>::quiet_NaN();
  lpips.backward(saved, upstream, dreconstruction.view());
  expect_close(name + " distance",
               test::activation_error(file, name + ".distance", distance.view()));
  expect_close(name + " grad_reconstruction",
               test::activation_error(file, name + ".grad_reconstruction", dreconstruction.view()));
}

// Uniform in (-1, 1) from the Philox stream (seed, offset).
template <class T, ShapeType S>
void fill_images(View<T, S> x, std::uint64_t seed, std::uint64_t offset) {
  for (index_t i = 0; i < S::size; ++i)
    x[i] = T(2 * double(uniform(seed, offset, i)) - 1);
}

// Finite differences of sum_n upstream[n] * distance[n] at a spread of single elements of the
// reconstruction and along random directions through all of them. Every evaluation is a VGG16
// forward pass, hence the few of them.
template <index_t H, index_t W, index_t C>
void check_lpips_gradient(index_t elements, std::uint64_t directions) {
  constexpr index_t N = 2;
  using L = train::LPIPS<double, H, W, C>;
  using Image = Shape<N, H, W, C>;
  L lpips;
  fill_formula_weights(lpips);
  Tensor<double, Image> reconstruction, target, dreconstruction, direction;
  fill_images(reconstruction.view(), 7, 0);
  fill_images(target.view(), 7, 1);
  Tensor<double, Shape<N>> upstream, distance;
  upstream[0] = 0.7;
  upstream[1] = -1.3;
  typename L::template Saved<N> saved;
  auto loss = [&] {
    lpips.forward(reconstruction, target, saved, distance.view());
    return test::dot(distance.data(), upstream.data(), N);
  };
  loss();
  dreconstruction = std::numeric_limits<double>::quiet_NaN();
  lpips.backward(saved, upstream, dreconstruction.view());

  std::vector<double> analytic, numeric;
  for (index_t k = 0; k < elements; ++k) {
    const index_t i = (k * 7919 + 13) % Image::size;
    analytic.push_back(dreconstruction[i]);
    numeric.push_back(test::numerical_gradient(loss, reconstruction.data() + i, 1)[0]);
  }
  const double element_error = test::max_relative_error(analytic.data(), numeric);
  MESSAGE(H << "x" << W << "x" << C << ", " << elements
            << " single elements: largest relative error " << element_error);
  CHECK(element_error <= 1e-6);

  // A step along a direction moves every pre-activation and pooling window at once, and with
  // h = 1e-6 one of them already crosses its kink (ReLU at 0, a change of maximum), which bends
  // the difference quotient by ~1e-3; 1e-7 keeps clear of them while rounding stays ~1e-9.
  const double h = 1e-7;
  for (std::uint64_t d = 0; d < directions; ++d) {
    for (index_t i = 0; i < Image::size; ++i)
      direction[i] = normal(11, d, i);
    reconstruction += direction * h;
    const double up = loss();
    reconstruction -= direction * (2 * h);
    const double down = loss();
    reconstruction += direction * h;
    const double along = (up - down) / (2 * h);
    const double expected = test::dot(dreconstruction.data(), direction.data(), Image::size);
    MESSAGE(H << "x" << W << "x" << C << ", direction " << d << ": analytic " << expected
              << ", numerical " << along);
    CHECK(std::abs(expected - along) <= 1e-6 * std::abs(along));
  }
}

}  // namespace

TEST_CASE("LPIPS (VGG16) against the lpips package: 3 channels, and 1 replicated to 3") {
  ldm::test::TempFolder dir;
  const auto weights =
      write_formula_weights(train::LPIPS<float, 32, 32, 3>(), dir.path / "lpips.safetensors");
  check_lpips_golden<3>("rgb", weights);
  check_lpips_golden<1>("gray", weights);
}

TEST_CASE("LPIPS weights: names and sizes; missing and unexpected tensors are named") {
  ldm::test::TempFolder dir;
  train::LPIPS<float, 16, 16, 1> lpips;
  const auto& infos = lpips.infos();
  CHECK(infos.size() == 31);
  CHECK(infos.front().name == "net.slice1.0.weight");
  CHECK(infos[25].name == "net.slice5.28.bias");
  CHECK(infos.back().name == "lin4.model.1.weight");
  // As the package's LPIPS(net='vgg').parameters() count them.
  CHECK(lpips.parameter_count == 14716160);
  // Batch 32 of 32x32: VGG16's activations for 64 images, the pooled inputs included.
  CHECK(nn::saved_bytes<train::LPIPS<float, 32, 32, 1>::Saved<32>> == 4 * 19857408);

  auto write = [&](const std::vector<std::string>& names, const std::string& file) {
    io::SafetensorsWriter writer;
    for (const auto& name : names)
      writer.add(name, std::vector<float>(64, 0.5f), {1, 64, 1, 1});
    writer.write(dir.path / file);
    return io::SafetensorsFile::open(dir.path / file);
  };
  CHECK_THROWS_WITH_AS(lpips.load(write({"lin0.model.1.weight"}, "missing.safetensors")),
                       doctest::Contains("'net.slice1.0.weight'"), Error);
  CHECK_THROWS_WITH_AS(lpips.load(write({"lin0.model.1.weight"}, "missing.safetensors")),
                       doctest::Contains("30 missing"), Error);
  CHECK_THROWS_WITH_AS(
      lpips.load(write({"lin0.model.1.weight", "scaling_layer.shift"}, "extra.safetensors")),
      doctest::Contains("'scaling_layer.shift'"), Error);
}

TEST_CASE("LPIPS backward by finite differences in double (16x16 gray, 16x24 RGB)") {
  check_lpips_gradient<16, 16, 1>(12, 2);
  check_lpips_gradient<16, 24, 3>(6, 1);
}

TEST_CASE("max_pool2x2: forward against a loop (floor mode, first maximum, NaN)") {
  constexpr index_t N = 2, H = 5, W = 7, C = 3;
  Tensor<float, Shape<N, H, W, C>> x, dx;
  Tensor<float, Shape<N, 2, 3, C>> y, dy;
  for (index_t i = 0; i < x.size; ++i)
    x[i] = normal(3, 0, i);
  // A tie in one window and a NaN in another.
  for (index_t a = 0; a < 2; ++a)
    for (index_t b = 0; b < 2; ++b)
      x(1, 2 + a, 4 + b, 1) = 2.5f;
  x(0, 1, 0, 2) = std::numeric_limits<float>::quiet_NaN();
  ops::max_pool2x2_forward(x, y.view());
  for (index_t n = 0; n < N; ++n)
    for (index_t oh = 0; oh < 2; ++oh)
      for (index_t ow = 0; ow < 3; ++ow)
        for (index_t c = 0; c < C; ++c) {
          if (n == 0 && oh == 0 && ow == 0 && c == 2) {
            CHECK(std::isnan(y(n, oh, ow, c)));
            continue;
          }
          float best = x(n, 2 * oh, 2 * ow, c);
          for (index_t a = 0; a < 2; ++a)
            for (index_t b = 0; b < 2; ++b)
              best = std::max(best, x(n, 2 * oh + a, 2 * ow + b, c));
          CHECK(y(n, oh, ow, c) == best);
        }

  dy = 1.0f;
  ops::max_pool2x2_backward(x, dy, dx.view());
  // The first of equal maxima takes the gradient; the NaN takes its window's.
  CHECK(dx(1, 2, 4, 1) == 1.0f);
  CHECK(dx(1, 2, 5, 1) + dx(1, 3, 4, 1) + dx(1, 3, 5, 1) == 0.0f);
  CHECK(dx(0, 1, 0, 2) == 1.0f);
  // Floor mode: the last row and column are never read.
  for (index_t n = 0; n < N; ++n)
    for (index_t c = 0; c < C; ++c) {
      for (index_t w = 0; w < W; ++w)
        CHECK(dx(n, H - 1, w, c) == 0.0f);
      for (index_t h = 0; h < H; ++h)
        CHECK(dx(n, h, W - 1, c) == 0.0f);
    }
}

TEST_CASE("max_pool2x2 and ReLU backward by finite differences in double") {
  SUBCASE("max pool") {
    Tensor<double, Shape<2, 5, 7, 3>> x, dx;
    Tensor<double, Shape<2, 2, 3, 3>> y, dy;
    for (index_t i = 0; i < x.size; ++i)
      x[i] = normal(5, 0, i);
    for (index_t i = 0; i < dy.size; ++i)
      dy[i] = normal(5, 1, i);
    ops::max_pool2x2_forward(x, y.view());
    dx = std::numeric_limits<double>::quiet_NaN();
    ops::max_pool2x2_backward(x, dy, dx.view());
    auto loss = [&] {
      ops::max_pool2x2_forward(x, y.view());
      return test::dot(y.data(), dy.data(), y.size);
    };
    const auto numeric = test::numerical_gradient(loss, x.data(), x.size);
    const double error = test::max_relative_error(dx.data(), numeric);
    MESSAGE("max pool: largest relative error " << error);
    CHECK(error <= 1e-8);
  }
  SUBCASE("ReLU") {
    Tensor<double, Shape<3, 4, 5, 6>> x, y, dx, dy;
    // Kept 1e-3 away from the kink, where the difference quotient would straddle it.
    for (index_t i = 0; i < x.size; ++i) {
      const double v = normal(6, 0, i);
      x[i] = v + (v < 0 ? -1e-3 : 1e-3);
    }
    for (index_t i = 0; i < dy.size; ++i)
      dy[i] = normal(6, 1, i);
    ops::relu_forward(x, y.view());
    dx = std::numeric_limits<double>::quiet_NaN();
    ops::relu_backward(y, dy, dx.view());
    auto loss = [&] {
      ops::relu_forward(x, y.view());
      return test::dot(y.data(), dy.data(), y.size);
    };
    const auto numeric = test::numerical_gradient(loss, x.data(), x.size);
    const double error = test::max_relative_error(dx.data(), numeric);
    MESSAGE("ReLU: largest relative error " << error);
    CHECK(error <= 1e-8);
  }
}

namespace {

// SSIM straight from its definition: the 2-D window at every valid position, the statistics as
// weighted sums of deviations from the local means (not E[x^2] - E[x]^2), in double.
template <index_t N, index_t H, index_t W, index_t C>
std::vector<double> ssim_reference(const std::vector<double>& x, const std::vector<double>& y) {
  constexpr int K = 11;
  double g[K], total = 0;
  for (int k = 0; k < K; ++k)
    total += g[k] = std::exp(-(k - 5.0) * (k - 5.0) / (2 * 1.5 * 1.5));
  const double c1 = 0.02 * 0.02, c2 = 0.06 * 0.06;
  auto at = [](const std::vector<double>& v, index_t n, index_t h, index_t w, index_t c) {
    return v[std::size_t(((n * H + h) * W + w) * C + c)];
  };
  std::vector<double> ssim(N);
  for (index_t n = 0; n < N; ++n) {
    double sum = 0;
    for (index_t c = 0; c < C; ++c)
      for (index_t i = 0; i + K <= H; ++i)
        for (index_t j = 0; j + K <= W; ++j) {
          double mx = 0, my = 0;
          for (int a = 0; a < K; ++a)
            for (int b = 0; b < K; ++b) {
              const double weight = g[a] * g[b] / (total * total);
              mx += weight * at(x, n, i + a, j + b, c);
              my += weight * at(y, n, i + a, j + b, c);
            }
          double vx = 0, vy = 0, cxy = 0;
          for (int a = 0; a < K; ++a)
            for (int b = 0; b < K; ++b) {
              const double weight = g[a] * g[b] / (total * total);
              const double dx = at(x, n, i + a, j + b, c) - mx, dy = at(y, n, i + a, j + b, c) - my;
              vx += weight * dx * dx;
              vy += weight * dy * dy;
              cxy += weight * dx * dy;
            }
          sum += (2 * mx * my + c1) * (2 * cxy + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2));
        }
    ssim[std::size_t(n)] = sum / double(C * (H - K + 1) * (W - K + 1));
  }
  return ssim;
}

}  // namespace

TEST_CASE("SSIM loss: 1 - SSIM against a direct double reference; zero for equal images") {
  constexpr index_t N = 3, H = 16, W = 13, C = 2;
  Tensor<float, Shape<N, H, W, C>> reconstruction, target;
  fill_images(target.view(), 9, 0);
  // A close reconstruction, an unrelated one, and one of opposite sign.
  for (index_t i = 0; i < target.size / N; ++i) {
    const index_t per = target.size / N;
    reconstruction[i] = 0.9f * target[i] + 0.1f * (2 * uniform(9, 1, i) - 1);
    reconstruction[per + i] = 2 * uniform(9, 2, i) - 1;
    reconstruction[2 * per + i] = -target[2 * per + i];
  }
  Tensor<float, Shape<N>> loss;
  train::ssim_loss_forward(reconstruction, target, loss.view());
  const auto expected = ssim_reference<N, H, W, C>(
      std::vector<double>(reconstruction.data(), reconstruction.data() + reconstruction.size),
      std::vector<double>(target.data(), target.data() + target.size));
  for (index_t n = 0; n < N; ++n) {
    const double error = std::abs(double(loss[n]) - (1 - expected[n]));
    MESSAGE("sample " << n << ": 1 - SSIM " << loss[n] << ", error " << error);
    CHECK(error <= 1e-6);
  }

  train::ssim_loss_forward(target, target, loss.view());
  for (index_t n = 0; n < N; ++n)
    CHECK(loss[n] == 0.0f);
}

TEST_CASE("SSIM loss backward by finite differences in double") {
  constexpr index_t N = 2, H = 13, W = 15, C = 2;
  Tensor<double, Shape<N, H, W, C>> reconstruction, target, dreconstruction;
  fill_images(reconstruction.view(), 10, 0);
  fill_images(target.view(), 10, 1);
  // Sample 1 close to its target, where SSIM is near its maximum.
  for (index_t i = 0; i < target.size / N; ++i) {
    const index_t j = target.size / N + i;
    reconstruction[j] = 0.95 * target[j] + 0.05 * reconstruction[j];
  }
  Tensor<double, Shape<N>> upstream, loss;
  upstream[0] = 1.7;
  upstream[1] = -0.6;
  dreconstruction = std::numeric_limits<double>::quiet_NaN();
  train::ssim_loss_backward(reconstruction, target, upstream, dreconstruction.view());
  auto objective = [&] {
    train::ssim_loss_forward(reconstruction, target, loss.view());
    return test::dot(loss.data(), upstream.data(), N);
  };
  const auto numeric =
      test::numerical_gradient(objective, reconstruction.data(), reconstruction.size);
  const double error = test::max_relative_error(dreconstruction.data(), numeric);
  MESSAGE("SSIM: largest relative error " << error);
  CHECK(error <= 1e-7);
}
