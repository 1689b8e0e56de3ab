// Convolutions on the device against the host op run in double, for every geometry the models use
// (1x1, 3x3, stride 1 and 2, symmetric padding and AutoencoderKL's asymmetric downsampler), at odd
// sizes and with one input or one output channel: forward, input gradient, and weight and bias
// gradients accumulating onto non-zero starting values. The passes also run with small chunks of
// output pixels, so that results spread over several column matrices are checked too.
#include "cuda/support.cuh"

#include <cstdint>

using namespace ldm;  // `cuda` alone is ambiguous with libcu++'s namespace: say ldm::cuda

namespace {

// chunk = 0: the public ops; otherwise the passes with that many output pixels per chunk.
template <class G, index_t Ci, index_t Co>
void check_conv2d(const char* geometry, index_t chunk = 0) {
  using XS = Shape<3, 7, 5, Ci>;
  test::LayerCase<XS, Shape<Co, G::kh, G::kw, Ci>, Shape<Co>, ops::conv2d_output_t<G, XS, Co>> c;
  ops::conv2d_forward<G>(c.x_ref.view(), c.w_ref.view(), c.b_ref.view(), c.y_ref.view());
  ops::conv2d_backward_input<G>(c.w_ref.view(), c.dy_ref.view(), c.dx_ref.view());
  ops::conv2d_backward_params<G>(c.x_ref.view(), c.dy_ref.view(), c.dw_ref.view(), c.db_ref.view());
  if (chunk == 0) {
    ops::conv2d_forward<G>(c.x_dev.view(), c.w_dev.view(), c.b_dev.view(), c.y_dev.view());
    ops::conv2d_backward_input<G>(c.w_dev.view(), c.dy_dev.view(), c.dx_dev.view());
    ops::conv2d_backward_params<G>(c.x_dev.view(), c.dy_dev.view(), c.dw_dev.view(),
                                   c.db_dev.view());
  } else {
    ops::detail::conv2d_forward_chunked<G>(c.x_dev.view(), c.w_dev.view(), c.b_dev.view(),
                                           c.y_dev.view(), chunk);
    ops::detail::conv2d_backward_input_chunked<G>(c.w_dev.view(), c.dy_dev.view(), c.dx_dev.view(),
                                                  chunk);
    ops::detail::conv2d_backward_params_chunked<G>(c.x_dev.view(), c.dy_dev.view(), c.dw_dev.view(),
                                                   c.db_dev.view(), chunk);
  }
  INFO(geometry << ", Cin " << Ci << ", Cout " << Co << ", chunk " << chunk);
  c.check(test::kFloatTolerance);
}

// Every channel configuration of one geometry.
template <class G>
void check_geometry(const char* geometry) {
  check_conv2d<G, 12, 9>(geometry);
  check_conv2d<G, 1, 9>(geometry);
  check_conv2d<G, 12, 1>(geometry);
}

}  // namespace

TEST_CASE("pointwise 1x1 convolution (a plain GEMM on x)") {
  check_geometry<ops::conv_same<1>>("1x1");
}

TEST_CASE("3x3 convolution, stride 1, padding 1") {
  check_geometry<ops::conv_same<3>>("3x3 same");
}

TEST_CASE("3x3 convolution, stride 2, padding 1 (the UNet's downsampler)") {
  check_geometry<ops::conv_same<3, 2>>("3x3 stride 2");
}

TEST_CASE("1x1 convolution, stride 2 (im2col without padding)") {
  check_geometry<ops::conv_same<1, 2>>("1x1 stride 2");
}

TEST_CASE("3x3 stride 2 with padding only bottom and right (AutoencoderKL's downsampler)") {
  check_geometry<ops::conv_down_asymmetric>("asymmetric");
}

TEST_CASE("unpadded 3x3 and padded 5x3 kernels") {
  check_geometry<ops::Conv2dGeometry<3, 3, 1, 0, 0, 0, 0>>("3x3 valid");
  // 90-term windows: Cin = 6 keeps them within the float bound above.
  check_conv2d<ops::Conv2dGeometry<5, 3, 1, 2, 2, 1, 1>, 6, 9>("5x3 same");
  check_conv2d<ops::Conv2dGeometry<5, 3, 1, 2, 2, 1, 1>, 1, 1>("5x3 same");
}

// 105 (stride 1) or 36 (stride 2) output pixels in chunks of 16 or 7: partial last chunks, and
// input gradients gathered from several column matrices onto shared input lines.
TEST_CASE("the passes over several chunks of output pixels agree with one pass") {
  check_conv2d<ops::conv_same<3>, 12, 9>("3x3 same", 16);
  check_conv2d<ops::conv_same<3>, 12, 9>("3x3 same", 7);
  check_conv2d<ops::conv_same<3, 2>, 12, 9>("3x3 stride 2", 7);
  check_conv2d<ops::conv_down_asymmetric, 12, 9>("asymmetric", 16);
  check_conv2d<ops::conv_same<1, 2>, 5, 3>("1x1 stride 2", 1);
}

// nn::Conv2d over device parameters: the module's views into nn::Owned's device buffers reach the
// device ops. The parameters are overwritten with positive values so the float bound above holds.
TEST_CASE("nn::Conv2d on the device: forward and backward through nn::Owned") {
  using G = ops::conv_same<3, 2>;
  using Module = nn::Conv2d<float, ldm::cuda, 7, 5, 12, 9, G>;
  using XS = Module::input<3>;
  using YS = Module::output<3>;
  using WS = Shape<9, 3, 3, 12>;
  using BS = Shape<9>;
  nn::Owned<Module, ldm::cuda> conv(42);
  test::LayerCase<XS, WS, BS, YS> c;
  // The module starts from the case's weights and accumulates onto its starting gradients.
  copy(c.w.view(), conv->weight.value);
  copy(c.b.view(), conv->bias.value);
  copy(c.dw_start.view(), conv->weight.grad);
  copy(c.db_start.view(), conv->bias.grad);
  ops::conv2d_forward<G>(c.x_ref.view(), c.w_ref.view(), c.b_ref.view(), c.y_ref.view());
  ops::conv2d_backward_input<G>(c.w_ref.view(), c.dy_ref.view(), c.dx_ref.view());
  ops::conv2d_backward_params<G>(c.x_ref.view(), c.dy_ref.view(), c.dw_ref.view(), c.db_ref.view());
  conv->forward<3>(c.x_dev.view(), {}, c.y_dev.view());
  conv->backward<3>(c.x_dev.view(), {}, c.dy_dev.view(), c.dx_dev.view());
  c.dw_dev = conv->weight.grad;
  c.db_dev = conv->bias.grad;
  c.check(test::kFloatTolerance);
}
