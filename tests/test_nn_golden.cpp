// Every module against PyTorch and diffusers: weights, input and upstream gradient from a golden
// file (tools/golden/make_golden.py, computed in float64, stored in float32); ldm runs in float32.
// Tolerance: relative error <= 1e-4 against each tensor's largest magnitude, element by element.
#include <doctest/doctest.h>

#include <ldm/ldm.hpp>
#include <ldm/nn.hpp>

#include "support/golden.hpp"

using namespace ldm;

namespace {
constexpr double tolerance = 1e-4;

void expect_close(const std::string& what, double error) {
  MESSAGE(what << ": largest relative error " << error);
  CHECK(error <= tolerance);
}

template <class Owned>
void expect_parameter_gradients(const io::SafetensorsFile& file, Owned& m) {
  auto worst = test::parameter_gradient_error(file, m.infos(), m.grads().data());
  expect_close("parameter gradients (worst: " + worst.name + ")", worst.error);
}

// A module with one input and one output, through the module contract (nn/module.hpp):
// forward(x, saved, y) and backward(x, saved, dy, dx).
template <class Module, index_t N>
void check_plain(const std::string& golden) {
  auto file = test::open_golden(golden);
  nn::Owned<Module> m(0);
  test::load_parameters(file, m.infos(), m.values().data());
  Tensor<float, typename Module::template input<N>> x, dx;
  Tensor<float, typename Module::template output<N>> y, dy;
  typename Module::template Saved<N> saved;
  test::read_activation(file, "input", x.view());
  test::read_activation(file, "grad_output", dy.view());
  m->forward(x, saved, y.view());
  m->backward(x, saved, dy, dx.view());
  expect_close(golden + " output", test::activation_error(file, "output", y.view()));
  expect_close(golden + " grad_input", test::activation_error(file, "grad_input", dx.view()));
  expect_parameter_gradients(file, m);
}
}  // namespace

TEST_CASE("Conv2d: 3x3, 1x1, 3x3 stride 2") {
  check_plain<nn::Conv2d<float, host, 9, 11, 5, 7>, 2>("conv2d_3x3");
  check_plain<nn::Conv2d<float, host, 5, 7, 6, 4, ops::conv_same<1>>, 2>("conv2d_1x1");
  check_plain<nn::Conv2d<float, host, 9, 11, 5, 7, ops::conv_same<3, 2>>, 2>("conv2d_3x3_stride2");
}

TEST_CASE("Downsample2D: the UNet's (padding 1) and the autoencoder's (pad 0,1,0,1)") {
  check_plain<nn::Downsample2D<float, host, 7, 9, 6>, 2>("downsample_conv");
  check_plain<nn::Downsample2D<float, host, 8, 10, 6, nn::DownsamplePadding::asymmetric>, 2>(
      "downsample_asymmetric");
}

TEST_CASE("Linear over [3, 4, 7]") {
  using L = nn::Linear<float, host, 7, 5>;
  auto file = test::open_golden("linear");
  nn::Owned<L> m(0);
  test::load_parameters(file, m.infos(), m.values().data());
  Tensor<float, Shape<3, 4, 7>> x, dx;
  Tensor<float, Shape<3, 4, 5>> y, dy;
  test::read_activation(file, "input", x.view());
  test::read_activation(file, "grad_output", dy.view());
  m->forward(x, {}, y.view());
  m->backward(x, {}, dy, dx.view());
  expect_close("output", test::activation_error(file, "output", y.view()));
  expect_close("grad_input", test::activation_error(file, "grad_input", dx.view()));
  expect_parameter_gradients(file, m);
}

TEST_CASE("GroupNorm(4 groups, 12 channels, eps 1e-6)") {
  using GN = nn::GroupNorm<float, host, 12, 4>;
  auto file = test::open_golden("group_norm");
  nn::Owned<GN> m(0, 1e-6);
  test::load_parameters(file, m.infos(), m.values().data());
  Tensor<float, Shape<2, 5, 7, 12>> x, dx, y, dy;
  GN::Saved<2> saved;
  test::read_activation(file, "input", x.view());
  test::read_activation(file, "grad_output", dy.view());
  m->forward(x, saved, y.view());
  m->backward(x, saved, dy, dx.view());
  expect_close("output", test::activation_error(file, "output", y.view()));
  expect_close("grad_input", test::activation_error(file, "grad_input", dx.view()));
  expect_parameter_gradients(file, m);
}

TEST_CASE("ResnetBlock2D: with time embedding and shortcut; without either") {
  SUBCASE("temb and 1x1 shortcut") {
    using Block = nn::ResnetBlock2D<float, host, 6, 5, 8, 12, 16, 4>;
    auto file = test::open_golden("resnet_block_temb_shortcut");
    nn::Owned<Block> m(0, 1e-5);
    test::load_parameters(file, m.infos(), m.values().data());
    Tensor<float, Block::input<2>> x, dx;
    Tensor<float, Block::output<2>> y, dy;
    Tensor<float, Block::temb_shape<2>> temb, dtemb;
    Block::Saved<2> saved;
    test::read_activation(file, "input", x.view());
    test::read_activation(file, "temb", temb.view());
    test::read_activation(file, "grad_output", dy.view());
    m->forward(x, temb, saved, y.view());
    m->backward(x, temb, saved, dy, dx.view(), dtemb.view());
    expect_close("output", test::activation_error(file, "output", y.view()));
    expect_close("grad_input", test::activation_error(file, "grad_input", dx.view()));
    expect_close("grad_temb", test::activation_error(file, "grad_temb", dtemb.view()));
    expect_parameter_gradients(file, m);
  }
  SUBCASE("no temb, identity shortcut") {
    using Block = nn::ResnetBlock2D<float, host, 6, 5, 8, 8, 0, 4>;
    auto file = test::open_golden("resnet_block_no_temb");
    nn::Owned<Block> m(0, 1e-6);
    test::load_parameters(file, m.infos(), m.values().data());
    Tensor<float, Block::input<2>> x, dx, y, dy;
    Block::Saved<2> saved;
    test::read_activation(file, "input", x.view());
    test::read_activation(file, "grad_output", dy.view());
    m->forward(x, saved, y.view());
    m->backward(x, saved, dy, dx.view());
    expect_close("output", test::activation_error(file, "output", y.view()));
    expect_close("grad_input", test::activation_error(file, "grad_input", dx.view()));
    expect_parameter_gradients(file, m);
  }
}

namespace {
template <class Attn>
void check_attention(const std::string& golden, double eps) {
  auto file = test::open_golden(golden);
  nn::Owned<Attn> m(0, eps);
  test::load_parameters(file, m.infos(), m.values().data());
  Tensor<float, typename Attn::template input<2>> x, dx, y, dy;
  typename Attn::template Saved<2> saved;
  test::read_activation(file, "input", x.view());
  test::read_activation(file, "grad_output", dy.view());
  m->forward(x, saved, y.view());
  m->backward(x, saved, dy, dx.view());
  expect_close(golden + " output", test::activation_error(file, "output", y.view()));
  expect_close(golden + " grad_input", test::activation_error(file, "grad_input", dx.view()));
  expect_parameter_gradients(file, m);
}
}  // namespace

TEST_CASE("Attention: the UNet's (2 heads of 4) and the autoencoder's (1 head)") {
  check_attention<nn::Attention<float, host, 3, 5, 8, 4, 4>>("attention", 1e-5);
  check_attention<nn::Attention<float, host, 3, 5, 8, 8, 4>>("attention_one_head", 1e-6);
}

TEST_CASE("Upsample2D: nearest x2 then 3x3 conv") {
  check_plain<nn::Upsample2D<float, host, 4, 5, 6>, 2>("upsample");
}

TEST_CASE("Timesteps + TimestepEmbedding") {
  using Emb = nn::TimestepEmbedding<float, host, 8, 32>;
  auto file = test::open_golden("timestep_embedding");
  nn::Owned<Emb> m(0);
  test::load_parameters(file, m.infos(), m.values().data());
  Tensor<float, Shape<4>> t;
  Tensor<float, Shape<4, 32>> y, dy;
  Emb::Saved<4> saved;
  test::read_activation(file, "timesteps", t.view());
  test::read_activation(file, "grad_output", dy.view());
  m->forward(t, saved, y.view());
  m->backward(saved, dy);
  expect_close("sinusoid", test::activation_error(file, "sinusoidal", saved.sinusoid.view()));
  expect_close("output", test::activation_error(file, "output", y.view()));
  expect_parameter_gradients(file, m);
}
