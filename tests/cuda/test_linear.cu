// Linear layers on the device against the host op run in double: forward, input gradient, and
// weight and bias gradients accumulating onto non-zero starting values, for inputs of rank 2 and 3.
#include "cuda/support.cuh"

#include <cstdint>

using namespace ldm;  // `cuda` alone is ambiguous with libcu++'s namespace: say ldm::cuda

namespace {

template <ShapeType SX, ShapeType SY>
void check_linear() {
  constexpr index_t In = SX::extents[SX::rank - 1], Out = SY::extents[SY::rank - 1];
  using WS = Shape<Out, In>;
  using BS = Shape<Out>;
  const auto x = test::positive<SX>(1);
  const auto dy = test::positive<SY>(2);
  const auto w = test::positive<WS>(3);
  const auto b = test::positive<BS>(4);
  const auto dw0 = test::positive<WS>(5);
  const auto db0 = test::positive<BS>(6);

  const auto xd = test::converted<double>(x.view());
  const auto dyd = test::converted<double>(dy.view());
  const auto wd = test::converted<double>(w.view());
  const auto bd = test::converted<double>(b.view());
  Tensor<double, SY> y_ref;
  Tensor<double, SX> dx_ref;
  auto dw_ref = test::converted<double>(dw0.view());
  auto db_ref = test::converted<double>(db0.view());
  ops::linear_forward(xd.view(), wd.view(), bd.view(), y_ref.view());
  ops::linear_backward_input(wd.view(), dyd.view(), dx_ref.view());
  ops::linear_backward_params(xd.view(), dyd.view(), dw_ref.view(), db_ref.view());

  const auto x_dev = to_device(x.view());
  const auto dy_dev = to_device(dy.view());
  const auto w_dev = to_device(w.view());
  const auto b_dev = to_device(b.view());
  auto y = test::poisoned<float, SY>();
  auto dx = test::poisoned<float, SX>();
  auto dw = to_device(dw0.view());
  auto db = to_device(db0.view());
  ops::linear_forward(x_dev.view(), w_dev.view(), b_dev.view(), y.view());
  ops::linear_backward_input(w_dev.view(), dy_dev.view(), dx.view());
  ops::linear_backward_params(x_dev.view(), dy_dev.view(), dw.view(), db.view());

  test::check_close(test::read_only(y), y_ref.view(), test::kFloatTolerance, "y = x w^T + b");
  test::check_close(test::read_only(dx), dx_ref.view(), test::kFloatTolerance, "dx = dy w");
  test::check_close(test::read_only(dw), dw_ref.view(), test::kFloatTolerance, "dw += dy^T x");
  test::check_close(test::read_only(db), db_ref.view(), test::kFloatTolerance, "db += sum of dy");
}

}  // namespace

TEST_CASE("linear on tokens: Shape<3, 7, 12> -> 9") {
  check_linear<Shape<3, 7, 12>, Shape<3, 7, 9>>();
}

TEST_CASE("linear on vectors: one input feature, one output feature") {
  check_linear<Shape<37, 1>, Shape<37, 19>>();
  check_linear<Shape<5, 53>, Shape<5, 1>>();
}

TEST_CASE("linear over 135 rows: the bias gradient sums several blocks of rows") {
  check_linear<Shape<3, 45, 5>, Shape<3, 45, 3>>();
}

// nn::Linear over device parameters: the module's views into nn::Owned's device buffers reach the
// device ops. The parameters are overwritten with positive values so the float bound above holds.
TEST_CASE("nn::Linear on the device: forward and backward through nn::Owned") {
  using XS = Shape<3, 7, 12>;
  using YS = Shape<3, 7, 9>;
  using WS = Shape<9, 12>;
  using BS = Shape<9>;
  nn::Owned<nn::Linear<float, ldm::cuda, 12, 9>, ldm::cuda> linear(42);
  const auto w = test::positive<WS>(11);
  const auto b = test::positive<BS>(12);
  copy<float, WS, host, ldm::cuda>(w.view(), linear->weight.value);
  copy<float, BS, host, ldm::cuda>(b.view(), linear->bias.value);
  const auto x = test::positive<XS>(13);
  const auto dy = test::positive<YS>(14);

  const auto xd = test::converted<double>(x.view());
  const auto dyd = test::converted<double>(dy.view());
  const auto wd = test::converted<double>(w.view());
  const auto bd = test::converted<double>(b.view());
  Tensor<double, YS> y_ref;
  Tensor<double, XS> dx_ref;
  Tensor<double, WS> dw_ref;
  Tensor<double, BS> db_ref;
  ops::linear_forward(xd.view(), wd.view(), bd.view(), y_ref.view());
  ops::linear_backward_input(wd.view(), dyd.view(), dx_ref.view());
  ops::linear_backward_params(xd.view(), dyd.view(), dw_ref.view(), db_ref.view());

  const auto x_dev = to_device(x.view());
  const auto dy_dev = to_device(dy.view());
  auto y = test::poisoned<float, YS>();
  auto dx = test::poisoned<float, XS>();
  linear->forward(x_dev.view(), y.view());
  linear->backward(x_dev.view(), dy_dev.view(), dx.view());

  test::check_close(test::read_only(y), y_ref.view(), test::kFloatTolerance, "module forward");
  test::check_close(test::read_only(dx), dx_ref.view(), test::kFloatTolerance,
                    "module input gradient");
  test::check_close(View<const float, WS, ldm::cuda>(linear->weight.grad), dw_ref.view(),
                    test::kFloatTolerance, "module weight gradient");
  test::check_close(View<const float, BS, ldm::cuda>(linear->bias.grad), db_ref.view(),
                    test::kFloatTolerance, "module bias gradient");
}
