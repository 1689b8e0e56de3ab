// The device backends of the small op families against the host: SiLU, dropout (the same mask bit
// for bit), nearest upsampling and channel concatenation, the sinusoidal timestep embedding, 2x2
// max pooling and ReLU. Floating references are the host ops in double on the same float inputs;
// ops that only select or move values are compared with the host's float results bit for bit.
#include "cuda/support.cuh"

#include <cmath>
#include <cstring>
#include <limits>

using namespace ldm;  // `cuda` alone is ambiguous with libcu++'s namespace: say ldm::cuda

namespace {

using Odd =
    Shape<3, 7, 5, 11>;  // 1155 elements: not a multiple of 4, so the last Philox block is partial

template <class T, ShapeType S>
bool same_bits(View<const T, S, ldm::cuda> device, const Tensor<T, S>& expected) {
  const Tensor<T, S> got = to_host(device);
  return std::memcmp(got.data(), expected.data(), Tensor<T, S>::bytes) == 0;
}

}  // namespace

TEST_CASE("silu forward and backward match the host in double") {
  const Tensor<float, Odd> x = test::host_random<float, Odd>(1, 4.0);
  const Tensor<float, Odd> dy = test::host_random<float, Odd>(2);
  const Tensor<double, Odd> xd = test::converted<double>(x), dyd = test::converted<double>(dy);
  Tensor<double, Odd> y_ref, dx_ref;
  ops::silu_forward(test::read_only(xd), y_ref.view());
  ops::silu_backward(test::read_only(xd), test::read_only(dyd), dx_ref.view());

  const Tensor<float, Odd, ldm::cuda> dev_x = to_device(test::read_only(x)),
                                      dev_dy = to_device(test::read_only(dy));
  auto y = test::poisoned<float, Odd>(), dx = test::poisoned<float, Odd>();
  ops::silu_forward(test::read_only(dev_x), y.view());
  ops::silu_backward(test::read_only(dev_x), test::read_only(dev_dy), dx.view());
  test::check_close(test::read_only(y), test::read_only(y_ref), test::kFloatTolerance, "silu");
  test::check_close(test::read_only(dx), test::read_only(dx_ref), test::kFloatTolerance, "silu dx");
}

TEST_CASE("dropout on the device draws the host's mask") {
  const Tensor<float, Odd> x = test::host_random<float, Odd>(3);
  const Tensor<float, Odd> dy = test::host_random<float, Odd>(4);
  const Tensor<float, Odd, ldm::cuda> dev_x = to_device(test::read_only(x)),
                                      dev_dy = to_device(test::read_only(dy));
  // Seeds and offsets past 32 bits, so both halves of Philox's key and counter words matter.
  const std::uint64_t seed = 0x123456789abcdefULL, offset = (std::uint64_t(7) << 40) | 5;
  for (float p : {0.0f, 0.1f, 0.5f, 0.9f, 1.0f}) {
    CAPTURE(p);
    Tensor<float, Odd> y_ref, dx_ref;
    ops::dropout_forward(test::read_only(x), p, seed, offset, y_ref.view());
    ops::dropout_backward(test::read_only(dy), p, seed, offset, dx_ref.view());
    auto y = test::poisoned<float, Odd>(), dx = test::poisoned<float, Odd>();
    ops::dropout_forward(test::read_only(dev_x), p, seed, offset, y.view());
    ops::dropout_backward(test::read_only(dev_dy), p, seed, offset, dx.view());
    CHECK(same_bits(test::read_only(y), y_ref));
    CHECK(same_bits(test::read_only(dx), dx_ref));
  }
  // In place, as ResnetBlock2D applies it.
  Tensor<float, Odd> in_place_ref = x;
  ops::dropout_forward(test::read_only(x), 0.3f, 9, 2, in_place_ref.view());
  Tensor<float, Odd, ldm::cuda> in_place = dev_x;
  ops::dropout_forward(View<const float, Odd, ldm::cuda>(in_place), 0.3f, 9, 2, in_place.view());
  CHECK(same_bits(test::read_only(in_place), in_place_ref));
}

TEST_CASE("nearest upsampling and channel concatenation match the host") {
  using X = Shape<3, 7, 5, 6>;
  using Y = Shape<3, 14, 10, 6>;
  const Tensor<float, X> x = test::host_random<float, X>(5);
  const Tensor<float, Y> dy = test::host_random<float, Y>(6);
  Tensor<float, Y> y_ref;
  ops::upsample_nearest2x_forward(test::read_only(x), y_ref.view());
  const Tensor<double, Y> dyd = test::converted<double>(dy);
  Tensor<double, X> dx_ref;
  ops::upsample_nearest2x_backward(test::read_only(dyd), dx_ref.view());

  auto y = test::poisoned<float, Y>();
  auto dx = test::poisoned<float, X>();
  const Tensor<float, X, ldm::cuda> dev_x = to_device(test::read_only(x));
  const Tensor<float, Y, ldm::cuda> dev_dy = to_device(test::read_only(dy));
  ops::upsample_nearest2x_forward(test::read_only(dev_x), y.view());
  ops::upsample_nearest2x_backward(test::read_only(dev_dy), dx.view());
  CHECK(same_bits(test::read_only(y), y_ref));
  test::check_close(test::read_only(dx), test::read_only(dx_ref), test::kFloatTolerance,
                    "upsample dx");

  using A = Shape<3, 7, 5, 5>;
  using B = Shape<3, 7, 5, 9>;
  using Cat = Shape<3, 7, 5, 14>;
  const Tensor<float, A> a = test::host_random<float, A>(7);
  const Tensor<float, B> b = test::host_random<float, B>(8);
  const Tensor<float, Cat> dcat = test::host_random<float, Cat>(9);
  Tensor<float, Cat> cat_ref;
  Tensor<float, A> da_ref;
  Tensor<float, B> db_ref;
  ops::concat_channels(test::read_only(a), test::read_only(b), cat_ref.view());
  ops::split_channels(test::read_only(dcat), da_ref.view(), db_ref.view());

  const Tensor<float, A, ldm::cuda> dev_a = to_device(test::read_only(a));
  const Tensor<float, B, ldm::cuda> dev_b = to_device(test::read_only(b));
  const Tensor<float, Cat, ldm::cuda> dev_dcat = to_device(test::read_only(dcat));
  auto cat = test::poisoned<float, Cat>();
  auto da = test::poisoned<float, A>();
  auto db = test::poisoned<float, B>();
  ops::concat_channels(test::read_only(dev_a), test::read_only(dev_b), cat.view());
  ops::split_channels(test::read_only(dev_dcat), da.view(), db.view());
  CHECK(same_bits(test::read_only(cat), cat_ref));
  CHECK(same_bits(test::read_only(da), da_ref));
  CHECK(same_bits(test::read_only(db), db_ref));
}

namespace {
template <index_t Dim>
void compare_embedding(bool flip, double freq_shift, double max_period, double scale) {
  using T = Shape<5>;
  Tensor<float, T> t;
  const float steps[5] = {0, 1, 17.5f, 500, 999};
  for (index_t n = 0; n < 5; ++n)
    t[n] = steps[n];
  Tensor<double, Shape<5, Dim>> expected;
  ops::timestep_embedding<Dim>(test::read_only(t), flip, freq_shift, expected.view(), max_period,
                               scale);
  const Tensor<float, T, ldm::cuda> dev_t = to_device(test::read_only(t));
  auto got = test::poisoned<float, Shape<5, Dim>>();
  ops::timestep_embedding<Dim>(test::read_only(dev_t), flip, freq_shift, got.view(), max_period,
                               scale);
  test::check_close(test::read_only(got), test::read_only(expected), test::kFloatTolerance,
                    "timestep embedding");
}
}  // namespace

TEST_CASE("the timestep embedding matches the host in double") {
  SUBCASE("UNet2DModel's: flipped, no shift") {
    compare_embedding<32>(true, 0, 10000, 1);
  }
  SUBCASE("odd width, shifted, scaled") {
    compare_embedding<9>(false, 1, 1000, 2.5);
  }
  SUBCASE("a freq_shift of Dim / 2 is refused") {
    const Tensor<float, Shape<2>, ldm::cuda> t;
    Tensor<float, Shape<2, 8>, ldm::cuda> out;
    CHECK_THROWS_AS(ops::timestep_embedding<8>(test::read_only(t), true, 4.0, out.view()), Error);
  }
}

TEST_CASE("max pooling and ReLU match the host bit for bit, ties and NaN included") {
  using X = Shape<3, 7, 5, 6>;  // odd H and W: the last row and column are never read
  using Y = Shape<3, 3, 2, 6>;
  // Values on a coarse grid, so windows hold ties, and one NaN.
  Tensor<float, X> x = test::host_random<float, X>(10);
  for (index_t i = 0; i < X::size; ++i)
    x[i] = std::round(x[i] * 2.0f) * 0.5f;
  x(1, 2, 3, 4) = std::numeric_limits<float>::quiet_NaN();
  const Tensor<float, Y> dy = test::host_random<float, Y>(11);
  Tensor<float, Y> y_ref;
  Tensor<float, X> dx_ref;
  ops::max_pool2x2_forward(test::read_only(x), y_ref.view());
  ops::max_pool2x2_backward(test::read_only(x), test::read_only(dy), dx_ref.view());

  const Tensor<float, X, ldm::cuda> dev_x = to_device(test::read_only(x));
  const Tensor<float, Y, ldm::cuda> dev_dy = to_device(test::read_only(dy));
  auto y = test::poisoned<float, Y>();
  auto dx = test::poisoned<float, X>();
  ops::max_pool2x2_forward(test::read_only(dev_x), y.view());
  ops::max_pool2x2_backward(test::read_only(dev_x), test::read_only(dev_dy), dx.view());
  CHECK(same_bits(test::read_only(y), y_ref));
  CHECK(same_bits(test::read_only(dx), dx_ref));

  // ReLU in place, as VGG and the classifier use it. Without the NaN: the device's arithmetic
  // gives NaNs a canonical payload, x86 keeps the operand's.
  x(1, 2, 3, 4) = 1.5f;
  Tensor<float, X> relu_ref = x, drelu_ref(x * 3.0f);
  ops::relu_forward(test::read_only(relu_ref), relu_ref.view());
  ops::relu_backward(test::read_only(relu_ref), test::read_only(drelu_ref), drelu_ref.view());
  Tensor<float, X, ldm::cuda> relu = to_device(test::read_only(x));
  Tensor<float, X, ldm::cuda> drelu(relu * 3.0f);
  ops::relu_forward(test::read_only(relu), relu.view());
  ops::relu_backward(test::read_only(relu), test::read_only(drelu), drelu.view());
  CHECK(same_bits(test::read_only(relu), relu_ref));
  CHECK(same_bits(test::read_only(drelu), drelu_ref));
}
