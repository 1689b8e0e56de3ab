// The transformer modules of diffusers' cross-attention UNet blocks (LayerNorm, FeedForward with
// GEGLU, the attention of BasicTransformerBlock, BasicTransformerBlock, Transformer2DModel):
// backward against central differences in double over the inputs, the context and every
// parameter; then against diffusers itself (tools/golden/make_golden.py) in float, parameters
// loaded by their diffusers state-dict names.
#include <doctest/doctest.h>

#include <omp.h>

#include <functional>
#include <ldm/ldm.hpp>
#include <ldm/nn.hpp>
#include <set>
#include <string>

#include "support/golden.hpp"
#include "support/gradcheck.hpp"

using namespace ldm;

namespace {
constexpr double gradient_tolerance = 1e-6;  // relative to each gradient's largest magnitude
constexpr double golden_tolerance = 1e-4;    // as tests/test_nn_golden.cpp

void expect_gradient(const std::string& what, const std::function<double()>& loss, double* values,
                     const double* analytic, std::size_t n) {
  auto numeric = test::numerical_gradient(loss, values, n);
  const double error = test::max_relative_error(analytic, numeric);
  MESSAGE(what << ": largest relative error " << error);
  CHECK(error < gradient_tolerance);
}

// A module with one input and one output: forward(x, saved, y), backward(x, saved, dy, dx).
template <class M, index_t N, class... Args>
void check_plain_gradients(const std::string& name, std::uint64_t seed, Args... args) {
  nn::Owned<M> m(seed, args...);
  m.values() = randn<Shape<M::parameter_count>>(seed + 1) * 0.5;
  Tensor<double, typename M::template input<N>> x, dx;
  Tensor<double, typename M::template output<N>> y, g;
  typename M::template Saved<N> saved;
  x = randn<typename M::template input<N>>(seed + 2);
  g = randn<typename M::template output<N>>(seed + 3);
  auto loss = [&] {
    m->forward(x, saved, y.view());
    return test::dot(y.data(), g.data(), y.size);
  };
  loss();
  m.grads() = 0.0;
  dx = std::numeric_limits<double>::quiet_NaN();
  m->backward(x, saved, g, dx.view());
  Tensor<double, Shape<M::parameter_count>> param_grads;
  param_grads = m.grads();
  expect_gradient(name + " dx", loss, x.data(), dx.data(), x.size);
  expect_gradient(name + " parameters", loss, m.values().data(), param_grads.data(),
                  M::parameter_count);
}

// A module with a context: forward(x, context, saved, y), backward(..., dy, dx, dcontext).
template <class M, index_t N, class... Args>
void check_context_gradients(const std::string& name, std::uint64_t seed, Args... args) {
  nn::Owned<M> m(seed, args...);
  m.values() = randn<Shape<M::parameter_count>>(seed + 1) * 0.5;
  Tensor<double, typename M::template input<N>> x, dx;
  Tensor<double, typename M::template context<N>> context, dcontext;
  Tensor<double, typename M::template output<N>> y, g;
  typename M::template Saved<N> saved;
  x = randn<typename M::template input<N>>(seed + 2);
  context = randn<typename M::template context<N>>(seed + 3);
  g = randn<typename M::template output<N>>(seed + 4);
  auto loss = [&] {
    m->forward(x, context, saved, y.view());
    return test::dot(y.data(), g.data(), y.size);
  };
  loss();
  m.grads() = 0.0;
  dx = std::numeric_limits<double>::quiet_NaN();
  dcontext = std::numeric_limits<double>::quiet_NaN();
  m->backward(x, context, saved, g, dx.view(), dcontext.view());
  Tensor<double, Shape<M::parameter_count>> param_grads;
  param_grads = m.grads();
  expect_gradient(name + " dx", loss, x.data(), dx.data(), x.size);
  expect_gradient(name + " dcontext", loss, context.data(), dcontext.data(), context.size);
  expect_gradient(name + " parameters", loss, m.values().data(), param_grads.data(),
                  M::parameter_count);
}
}  // namespace

TEST_CASE("gradients: LayerNorm over 8 channels of 5 tokens") {
  check_plain_gradients<nn::LayerNorm<double, host, 5, 8>, 3>("LayerNorm", 10, 1e-5);
}

TEST_CASE("gradients: FeedForward (GEGLU, 4x inner, and an odd inner width)") {
  check_plain_gradients<nn::FeedForward<double, host, 5, 6>, 2>("FeedForward", 20);
  check_plain_gradients<nn::FeedForward<double, host, 3, 4, 7>, 2>("FeedForward inner 7", 25);
}

TEST_CASE("gradients: attention, self (attn1) and over a context of other length and width") {
  check_plain_gradients<nn::CrossAttention<double, host, 5, 8, 4>, 2>("self-attention", 30);
  check_context_gradients<nn::CrossAttention<double, host, 5, 8, 4, 3, 6>, 2>("cross-attention",
                                                                              40);
  check_context_gradients<nn::CrossAttention<double, host, 4, 6, 6, 7, 5>, 2>(
      "cross-attention, one head, longer context", 45);
}

TEST_CASE("gradients: BasicTransformerBlock") {
  check_context_gradients<nn::BasicTransformerBlock<double, host, 5, 8, 4, 3, 6>, 2>(
      "BasicTransformerBlock", 50, 1e-5);
}

TEST_CASE("gradients: Transformer2DModel, 1x1-conv and linear projections") {
  using nn::TokenProjection;
  check_context_gradients<
      nn::Transformer2DModel<double, host, 2, 3, 8, 2, 4, 3, 6, 1, 4, TokenProjection::conv1x1>, 2>(
      "Transformer2DModel conv1x1", 60);
  check_context_gradients<
      nn::Transformer2DModel<double, host, 3, 2, 8, 2, 2, 3, 5, 2, 4, TokenProjection::linear>, 2>(
      "Transformer2DModel linear, two layers, inner 4", 70);
}

namespace {
void expect_close(const std::string& what, double error) {
  MESSAGE(what << ": largest relative error " << error);
  CHECK(error <= golden_tolerance);
}

// The file holds the module's parameters under diffusers' state-dict names: the same set of
// names as the module binds (each then read with its PyTorch shape by load_parameters).
template <class Owned>
void load_by_diffusers_names(const io::SafetensorsFile& file, Owned& m) {
  std::set<std::string> in_file, in_module;
  for (const auto& name : file.names())
    if (name != "input" && name != "context" && name != "output" && !name.starts_with("grad"))
      in_file.insert(name);
  for (const auto& info : m.infos())
    in_module.insert(info.name);
  CHECK(in_file == in_module);
  test::load_parameters(file, m.infos(), m.values().data());
}

template <class Owned>
void expect_parameter_gradients(const std::string& golden, const io::SafetensorsFile& file,
                                Owned& m) {
  auto worst = test::parameter_gradient_error(file, m.infos(), m.grads().data());
  expect_close(golden + " parameter gradients (worst: " + worst.name + ")", worst.error);
}

template <class M, index_t N, class... Args>
void check_plain_golden(const std::string& golden, Args... args) {
  auto file = test::open_golden(golden);
  nn::Owned<M> m(0, args...);
  load_by_diffusers_names(file, m);
  Tensor<float, typename M::template input<N>> x, dx;
  Tensor<float, typename M::template output<N>> y, dy;
  typename M::template Saved<N> saved;
  test::read_activation(file, "input", x.view());
  test::read_activation(file, "grad_output", dy.view());
  m->forward(x, saved, y.view());
  m->backward(x, saved, dy, dx.view());
  expect_close(golden + " output", test::activation_error(file, "output", y.view()));
  expect_close(golden + " grad_input", test::activation_error(file, "grad_input", dx.view()));
  expect_parameter_gradients(golden, file, m);
}

template <class M, index_t N, class... Args>
void check_context_golden(const std::string& golden, Args... args) {
  auto file = test::open_golden(golden);
  nn::Owned<M> m(0, args...);
  load_by_diffusers_names(file, m);
  Tensor<float, typename M::template input<N>> x, dx;
  Tensor<float, typename M::template context<N>> context, dcontext;
  Tensor<float, typename M::template output<N>> y, dy;
  typename M::template Saved<N> saved;
  test::read_activation(file, "input", x.view());
  test::read_activation(file, "context", context.view());
  test::read_activation(file, "grad_output", dy.view());
  m->forward(x, context, saved, y.view());
  m->backward(x, context, saved, dy, dx.view(), dcontext.view());
  expect_close(golden + " output", test::activation_error(file, "output", y.view()));
  expect_close(golden + " grad_input", test::activation_error(file, "grad_input", dx.view()));
  expect_close(golden + " grad_context",
               test::activation_error(file, "grad_context", dcontext.view()));
  expect_parameter_gradients(golden, file, m);
}
}  // namespace

TEST_CASE("golden: torch.nn.LayerNorm(12)") {
  check_plain_golden<nn::LayerNorm<float, host, 5, 12>, 2>("layer_norm", 1e-5);
}

TEST_CASE("golden: FeedForward(8, activation_fn geglu)") {
  check_plain_golden<nn::FeedForward<float, host, 5, 8>, 2>("feed_forward_geglu");
}

TEST_CASE("golden: the transformer block's Attention, self (attn1) and cross (attn2)") {
  check_plain_golden<nn::CrossAttention<float, host, 5, 8, 4>, 2>("self_attention");
  check_context_golden<nn::CrossAttention<float, host, 5, 8, 4, 3, 6>, 2>("cross_attention");
}

TEST_CASE("golden: BasicTransformerBlock(8, 2 heads of 4, cross_attention_dim 6)") {
  check_context_golden<nn::BasicTransformerBlock<float, host, 5, 8, 4, 3, 6>, 2>(
      "basic_transformer_block", 1e-5);
}

TEST_CASE("golden: Transformer2DModel, 1x1-conv projections (one layer) and linear (two)") {
  using nn::TokenProjection;
  check_context_golden<
      nn::Transformer2DModel<float, host, 3, 5, 8, 2, 4, 3, 6, 1, 4, TokenProjection::conv1x1>, 2>(
      "transformer_2d_conv");
  check_context_golden<
      nn::Transformer2DModel<float, host, 3, 5, 8, 2, 4, 3, 6, 2, 4, TokenProjection::linear>, 2>(
      "transformer_2d_linear");
}

namespace {
// What forward and backward allocate beyond their arguments and Saved, measured by the host
// allocator, against the Scratch the module declares for the memory plans.
// exact: whether the declaration must equal the measurement; a convolution's declared band
// buffers assume every thread takes one, so it may only bound it.
template <class M, index_t N, class... Args>
void check_scratch(const std::string& name, bool exact, Args... args) {
  nn::Owned<M> m(0, args...);
  Tensor<float, typename M::template input<N>> x, dx;
  Tensor<float, typename M::template context<N>> context, dcontext;
  Tensor<float, typename M::template output<N>> y, dy;
  typename M::template Saved<N> saved;
  x = randn<typename M::template input<N>>(1);
  context = randn<typename M::template context<N>>(2);
  dy = randn<typename M::template output<N>>(3);
  const auto declared = M::template scratch<N>(ops::this_host());

  std::size_t before = memory<host>::stats().in_use;
  memory<host>::reset_peak();
  m->forward(x, context, saved, y.view());
  const std::size_t forward = memory<host>::stats().peak_in_use - before;
  before = memory<host>::stats().in_use;
  memory<host>::reset_peak();
  m->backward(x, context, saved, dy, dx.view(), dcontext.view());
  const std::size_t backward = memory<host>::stats().peak_in_use - before;
  MESSAGE(name << ": forward allocates " << forward << " bytes (declared " << declared.forward
               << "), backward " << backward << " (declared " << declared.backward << ")");
  CHECK(forward <= declared.forward);
  CHECK(backward <= declared.backward);
  if (exact) {
    CHECK(forward == declared.forward);
    CHECK(backward == declared.backward);
  }
}
}  // namespace

TEST_CASE("Scratch: what the modules allocate while they run is what they declare") {
  check_scratch<nn::CrossAttention<float, host, 5, 8, 4, 3, 6>, 2>("cross-attention", true);
  check_scratch<nn::BasicTransformerBlock<float, host, 5, 8, 4, 3, 6>, 2>("block", true, 1e-5);
  check_scratch<
      nn::Transformer2DModel<float, host, 3, 5, 8, 2, 4, 3, 6, 2, 4, nn::TokenProjection::linear>,
      2>("Transformer2DModel, linear", true);
  check_scratch<
      nn::Transformer2DModel<float, host, 3, 5, 8, 2, 4, 3, 6, 1, 4, nn::TokenProjection::conv1x1>,
      2>("Transformer2DModel, 1x1 convolutions", false);
}
