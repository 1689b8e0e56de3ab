// Every module's backward against central finite differences, in double, over its input
// gradients and every parameter gradient. Sizes are small and odd; GroupNorm uses 4 groups.
#include <doctest/doctest.h>

#include <ldm/ldm.hpp>
#include <ldm/nn.hpp>

#include "support/gradcheck.hpp"

using namespace ldm;

namespace {
constexpr double tolerance = 1e-6;  // relative to each gradient's largest magnitude, in double

template <class T, class S>
void fill(Tensor<T, S>& t, std::uint64_t offset) {
  t = randn<S>(99, offset);
}

// Checks one analytic gradient buffer against finite differences of loss() over `values`.
void expect_gradient(const char* what, const std::function<double()>& loss, double* values,
                     const double* analytic, std::size_t n) {
  auto numeric = test::numerical_gradient(loss, values, n);
  const double error = test::max_relative_error(analytic, numeric);
  MESSAGE(std::string(what) << ": largest relative error " << error);
  CHECK(error < tolerance);
}

template <class Owned>
void reset_grads(Owned& m) {
  m.grads() = 0.0;
}
}  // namespace

TEST_CASE("ResnetBlock2D with time embedding and 1x1 shortcut") {
  using Block = nn::ResnetBlock2D<double, host, 4, 3, 8, 12, 16, 4>;
  nn::Owned<Block> m(1, 1e-5);
  // Random GroupNorm affine parameters so their gradients are exercised.
  m.values() = randn<Shape<Block::parameter_count>>(5) * 0.5;
  Tensor<double, Block::input<2>> x, dx;
  Tensor<double, Block::temb_shape<2>> temb, dtemb;
  Tensor<double, Block::output<2>> y, g;
  fill(x, 1), fill(temb, 2), fill(g, 3);
  Block::Saved<2> saved;

  auto loss = [&] {
    m->forward(x, temb, saved, y.view());
    return test::dot(y.data(), g.data(), y.size);
  };
  loss();
  reset_grads(m);
  m->backward(x, temb, saved, g, dx.view(), dtemb.view());
  Tensor<double, Shape<Block::parameter_count>> param_grads;
  param_grads = m.grads();

  expect_gradient("dx", loss, x.data(), dx.data(), x.size);
  expect_gradient("dtemb", loss, temb.data(), dtemb.data(), temb.size);
  expect_gradient("parameters", loss, m.values().data(), param_grads.data(),
                  Block::parameter_count);
}

TEST_CASE("ResnetBlock2D without time embedding, identity shortcut, dropout in training") {
  using Block = nn::ResnetBlock2D<double, host, 5, 3, 8, 8, 0, 4>;
  nn::Owned<Block> m(2, 1e-6, /*dropout*/ 0.25f);
  m.values() = randn<Shape<Block::parameter_count>>(6) * 0.5;
  Tensor<double, Block::input<2>> x, dx;
  Tensor<double, Block::temb_shape<2>> no_temb, unused;
  Tensor<double, Block::output<2>> y, g;
  fill(x, 4), fill(g, 5);
  Block::Saved<2> saved;
  const nn::Mode training{true, 7, 3};

  auto loss = [&] {
    m->forward(x, no_temb, saved, y.view(), training);
    return test::dot(y.data(), g.data(), y.size);
  };
  loss();
  reset_grads(m);
  m->backward(x, no_temb, saved, g, dx.view(), unused.view());
  Tensor<double, Shape<Block::parameter_count>> param_grads;
  param_grads = m.grads();

  expect_gradient("dx", loss, x.data(), dx.data(), x.size);
  expect_gradient("parameters", loss, m.values().data(), param_grads.data(),
                  Block::parameter_count);
}

TEST_CASE("Attention: group norm, q/k/v/out projections, heads, residual") {
  using Attn = nn::Attention<double, host, 3, 5, 8, 4, 4>;
  static_assert(Attn::heads == 2);
  nn::Owned<Attn> m(3, 1e-5);
  m.values() = randn<Shape<Attn::parameter_count>>(7) * 0.5;
  Tensor<double, Attn::input<2>> x, dx, y, g;
  fill(x, 6), fill(g, 7);
  Attn::Saved<2> saved;

  auto loss = [&] {
    m->forward(x, saved, y.view());
    return test::dot(y.data(), g.data(), y.size);
  };
  loss();
  reset_grads(m);
  m->backward(x, saved, g, dx.view());
  Tensor<double, Shape<Attn::parameter_count>> param_grads;
  param_grads = m.grads();

  expect_gradient("dx", loss, x.data(), dx.data(), x.size);
  expect_gradient("parameters", loss, m.values().data(), param_grads.data(), Attn::parameter_count);
}

namespace {
// A module with one input and one output, through the module contract (nn/module.hpp).
template <class Module>
void check_resampler(std::uint64_t seed) {
  nn::Owned<Module> m(seed);
  Tensor<double, typename Module::template input<2>> x, dx;
  Tensor<double, typename Module::template output<2>> y, g;
  typename Module::template Saved<2> saved;
  fill(x, 8 + seed), fill(g, 9 + seed);
  auto loss = [&] {
    m->forward(x, saved, y.view());
    return test::dot(y.data(), g.data(), y.size);
  };
  loss();
  reset_grads(m);
  m->backward(x, saved, g, dx.view());
  Tensor<double, Shape<Module::parameter_count>> param_grads;
  param_grads = m.grads();
  expect_gradient("dx", loss, x.data(), dx.data(), x.size);
  expect_gradient("parameters", loss, m.values().data(), param_grads.data(),
                  Module::parameter_count);
}
}  // namespace

TEST_CASE("Downsample2D (both paddings) and Upsample2D") {
  SUBCASE("symmetric") {
    using Down = nn::Downsample2D<double, host, 7, 9, 6>;
    static_assert(Down::output<1>::extents[1] == 4 && Down::output<1>::extents[2] == 5);
    check_resampler<Down>(4);
  }
  SUBCASE("asymmetric") {
    using Down = nn::Downsample2D<double, host, 8, 10, 6, nn::DownsamplePadding::asymmetric>;
    static_assert(Down::output<1>::extents[1] == 4 && Down::output<1>::extents[2] == 5);
    check_resampler<Down>(5);
  }
  SUBCASE("upsample") {
    check_resampler<nn::Upsample2D<double, host, 4, 5, 6>>(6);
  }
}

TEST_CASE("TimestepEmbedding: parameter gradients") {
  using Emb = nn::TimestepEmbedding<double, host, 8, 32>;
  nn::Owned<Emb> m(7);
  Tensor<float, Shape<4>> t;
  t[0] = 0, t[1] = 1, t[2] = 17, t[3] = 999;
  Tensor<double, Shape<4, 32>> y, g;
  fill(g, 14);
  Emb::Saved<4> saved;
  auto loss = [&] {
    m->forward(t, saved, y.view());
    return test::dot(y.data(), g.data(), y.size);
  };
  loss();
  reset_grads(m);
  m->backward(saved, g);
  Tensor<double, Shape<Emb::parameter_count>> param_grads;
  param_grads = m.grads();
  expect_gradient("parameters", loss, m.values().data(), param_grads.data(), Emb::parameter_count);
}

TEST_CASE("Embedding: rows by label, gradients summed per row, labels checked") {
  using Emb = nn::Embedding<double, host, 5, 3>;
  nn::Owned<Emb> emb(17);
  Tensor<std::int32_t, Shape<4>> labels;
  labels[0] = 2, labels[1] = 0, labels[2] = 2, labels[3] = 4;
  Tensor<double, Shape<4, 3>> y, dy;
  emb->forward<4>(labels, {}, y);
  for (index_t n = 0; n < 4; ++n)
    for (index_t d = 0; d < 3; ++d)
      CHECK(y(n, d) == emb.values()[labels[n] * 3 + d]);

  fill(dy, 5);
  reset_grads(emb);
  emb->backward<4>(labels, {}, dy);
  for (index_t d = 0; d < 3; ++d) {
    CHECK(emb.grads()[2 * 3 + d] == doctest::Approx(dy(0, d) + dy(2, d)));
    CHECK(emb.grads()[0 * 3 + d] == dy(1, d));
    CHECK(emb.grads()[4 * 3 + d] == dy(3, d));
    CHECK(emb.grads()[1 * 3 + d] == 0.0);
    CHECK(emb.grads()[3 * 3 + d] == 0.0);
  }

  labels[3] = 5;
  CHECK_THROWS_WITH_AS(emb->forward<4>(labels, {}, y),
                       "class labels: expected 0 <= label < 5, found labels from 0 to 5", Error);
}
