// Linear layers on the device against the host op run in double: forward, input gradient, and
// weight and bias gradients accumulating onto non-zero starting values, for inputs of rank 2 and 3.
#include "cuda/support.cuh"

#include <cstdint>

using namespace ldm;  // `cuda` alone is ambiguous with libcu++'s namespace: say ldm::cuda

namespace {

template <ShapeType SX, ShapeType SY>
void check_linear() {
  constexpr index_t In = SX::extents[SX::rank - 1], Out = SY::extents[SY::rank - 1];
  test::LayerCase<SX, Shape<Out, In>, Shape<Out>, SY> c;
  ops::linear_forward(c.x_ref.view(), c.w_ref.view(), c.b_ref.view(), c.y_ref.view());
  ops::linear_backward_input(c.w_ref.view(), c.dy_ref.view(), c.dx_ref.view());
  ops::linear_backward_params(c.x_ref.view(), c.dy_ref.view(), c.dw_ref.view(), c.db_ref.view());
  ops::linear_forward(c.x_dev.view(), c.w_dev.view(), c.b_dev.view(), c.y_dev.view());
  ops::linear_backward_input(c.w_dev.view(), c.dy_dev.view(), c.dx_dev.view());
  ops::linear_backward_params(c.x_dev.view(), c.dy_dev.view(), c.dw_dev.view(), c.db_dev.view());
  c.check(test::kFloatTolerance);
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
  test::LayerCase<XS, WS, BS, YS> c;
  // The module starts from the case's weights and accumulates onto its starting gradients.
  copy(c.w.view(), linear->weight.value);
  copy(c.b.view(), linear->bias.value);
  copy(c.dw_start.view(), linear->weight.grad);
  copy(c.db_start.view(), linear->bias.grad);
  ops::linear_forward(c.x_ref.view(), c.w_ref.view(), c.b_ref.view(), c.y_ref.view());
  ops::linear_backward_input(c.w_ref.view(), c.dy_ref.view(), c.dx_ref.view());
  ops::linear_backward_params(c.x_ref.view(), c.dy_ref.view(), c.dw_ref.view(), c.db_ref.view());
  linear->forward(c.x_dev.view(), {}, c.y_dev.view());
  linear->backward(c.x_dev.view(), {}, c.dy_dev.view(), c.dx_dev.view());
  c.dw_dev = linear->weight.grad;
  c.db_dev = linear->bias.grad;
  c.check(test::kFloatTolerance);
}
