// Parameter binding, PyTorch's default initialisation, and layout conversion for files.
#include <doctest/doctest.h>

#include <cmath>
#include <ldm/ldm.hpp>
#include <ldm/nn.hpp>

using namespace ldm;

TEST_CASE("initialisation follows PyTorch's defaults") {
  using Block = nn::ResnetBlock2D<float, host, 4, 4, 8, 12, 16, 4>;
  nn::Owned<Block> m(7, 1e-5);
  const float* v = m.values().data();
  for (const auto& p : m.infos()) {
    const double bound = 1 / std::sqrt(double(p.fan_in));
    double lo = INFINITY, hi = -INFINITY, sum = 0;
    for (index_t i = 0; i < p.size; ++i) {
      lo = std::fmin(lo, v[p.offset + i]), hi = std::fmax(hi, v[p.offset + i]);
      sum += v[p.offset + i];
    }
    INFO(p.name);
    if (p.name.find("norm") != std::string::npos) {
      const double expected = p.name.ends_with("weight") ? 1 : 0;
      CHECK(lo == expected);
      CHECK(hi == expected);
    } else {
      // U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights (kaiming_uniform_, a = sqrt(5)) and biases.
      CHECK(lo >= -bound);
      CHECK(hi <= bound);
      if (p.size >= 100) {
        CHECK(hi > 0.9 * bound);
        CHECK(std::abs(sum / double(p.size)) < 4 * bound / std::sqrt(3.0 * double(p.size)));
      }
    }
  }
  CHECK(m.infos()[2].name == "conv1.weight");
  CHECK(m.infos()[2].fan_in == 8 * 9);  // Cin * KH * KW
}

TEST_CASE("the same seed gives the same parameters, another seed others") {
  using Conv = nn::Conv2d<float, host, 5, 5, 3, 4>;
  nn::Owned<Conv> a(1), b(1), c(2);
  for (index_t i = 0; i < Conv::parameter_count; ++i)
    REQUIRE(a.values()[i] == b.values()[i]);
  CHECK(a.values()[0] != c.values()[0]);
}

TEST_CASE("parameters are bound in order into one flat buffer, with diffusers' names") {
  using Block = nn::ResnetBlock2D<float, host, 4, 4, 8, 12, 16, 4>;
  nn::Owned<Block> m(0, 1e-5);
  index_t expected_offset = 0;
  for (const auto& p : m.infos()) {
    CHECK(p.offset == expected_offset);
    expected_offset += p.size;
  }
  CHECK(expected_offset == Block::parameter_count);
  CHECK(m->conv1.weight.value.data() == m.values().data() + m.infos()[2].offset);
  CHECK(m.infos()[2].name == "conv1.weight");
  CHECK(m.infos()[2].torch_shape == std::vector<std::int64_t>{12, 8, 3, 3});
}

TEST_CASE("conv weights convert between [Co, KH, KW, Ci] and PyTorch's [Co, Ci, KH, KW]") {
  using Conv = nn::Conv2d<float, host, 5, 5, 3, 4>;
  nn::Owned<Conv> m(3);
  const auto& weight = m.infos()[0];
  CHECK(weight.layout == nn::Layout::conv_ohwi);
  auto torch = nn::to_torch_layout(weight, m.values().data());
  // PyTorch element [o][c][y][x] is ldm's weight(o, y, x, c).
  for (int o = 0; o < 4; ++o)
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < 3; ++y)
        for (int x = 0; x < 3; ++x)
          REQUIRE(torch[std::size_t(((o * 3 + c) * 3 + y) * 3 + x)] == m->weight.value(o, y, x, c));
  Tensor<float, Shape<Conv::parameter_count>> copy;
  nn::from_torch_layout(weight, torch.data(), copy.data());
  for (index_t i = 0; i < weight.size; ++i)
    REQUIRE(copy[i] == m.values()[i]);
}
