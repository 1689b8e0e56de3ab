#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <ldm/ldm.hpp>
#include <type_traits>

using namespace ldm;

TEST_CASE("Shape: extents, sizes and row-major strides are constexpr") {
  using S = Shape<3, 5, 7, 9>;
  static_assert(S::rank == 4 && S::size == 945);
  static_assert(S::strides[0] == 315 && S::strides[1] == 63 && S::strides[2] == 9 &&
                S::strides[3] == 1);
  static_assert(S::offset(1, 2, 3, 4) == 315 + 2 * 63 + 3 * 9 + 4);
  static_assert(batch_of<S> == 3);
  static_assert(std::is_same_v<sample_shape_t<S>, Shape<5, 7, 9>>);
  static_assert(std::is_same_v<remove_axes_t<S, 0, 1, 2>, Shape<9>>);
  static_assert(std::is_same_v<remove_axes_t<S, 1, 2, 3>, Shape<3>>);
  static_assert(std::is_same_v<remove_axes_t<S, 0, 1, 2, 3>, Shape<>>);
  static_assert(std::is_same_v<concat_shape_t<Shape<2>, Shape<4, 6>>, Shape<2, 4, 6>>);
  static_assert(Shape<>::size == 1);
}

TEST_CASE("Tensor: zero-initialised, 64-byte aligned, indexed in NHWC") {
  Tensor<float, Shape<3, 5, 7, 9>> t;
  CHECK(reinterpret_cast<std::uintptr_t>(t.data()) % 64 == 0);
  for (index_t i = 0; i < t.size; ++i)
    REQUIRE(t[i] == 0.0f);
  t(2, 4, 6, 8) = 1.5f;
  CHECK(t[t.size - 1] == 1.5f);
  t(1, 0, 0, 0) = 2.0f;
  CHECK(t.sample(1)[0] == 2.0f);
  CHECK(t.sample(1)(0, 0, 0) == 2.0f);
}

TEST_CASE("host memory: large freed blocks are reused zeroed, counted apart, and can be freed") {
  memory<host>::release_cached();
  using Big = Shape<1, 256, 256, 4>;  // 1 MiB: above cache_min_bytes
  static_assert(Big::size * sizeof(float) >= memory<host>::cache_min_bytes);
  const std::size_t in_use = memory<host>::stats().in_use;
  const float* first = nullptr;
  {
    Tensor<float, Big> t;
    first = t.data();
    t.view() = 1.0f;
  }
  CHECK(memory<host>::stats().in_use == in_use);
  CHECK(memory<host>::stats().cached >= Big::size * sizeof(float));
  {
    Tensor<float, Big> again;  // the same size: the kept block, zeroed as any new tensor
    CHECK(again.data() == first);
    CHECK(memory<host>::stats().cached == 0);
    for (index_t i = 0; i < Big::size; i += 997)
      REQUIRE(again.data()[i] == 0.0f);
  }
  memory<host>::release_cached();
  CHECK(memory<host>::stats().cached == 0);
  CHECK(memory<host>::stats().in_use == in_use);
}

TEST_CASE("Tensor(uninitialized) skips the zeroing; in the tests its elements start as NaN") {
  // LDM_POISON_UNINITIALIZED, which every test program is built with: a module that reads an
  // uninitialised output before writing it gets NaN, not a stale value that might pass.
  Tensor<float, Shape<2, 3, 5>> f(uninitialized);
  Tensor<double, Shape<7>> d(uninitialized);
  CHECK(reinterpret_cast<std::uintptr_t>(f.data()) % 64 == 0);
  for (index_t i = 0; i < f.size; ++i)
    REQUIRE(std::isnan(f[i]));
  for (index_t i = 0; i < d.size; ++i)
    REQUIRE(std::isnan(d[i]));
  const Tensor<float, Shape<2, 3, 5>> zeroed;  // the default still zeroes
  for (index_t i = 0; i < zeroed.size; ++i)
    REQUIRE(zeroed[i] == 0.0f);
}

TEST_CASE("Tensor: copies are deep, moves steal") {
  Tensor<float, Shape<4>> a;
  a[2] = 3.0f;
  Tensor<float, Shape<4>> b = a;
  b[2] = 4.0f;
  CHECK(a[2] == 3.0f);
  const float* storage = b.data();
  Tensor<float, Shape<4>> c = std::move(b);
  CHECK(c.data() == storage);
  CHECK(c[2] == 4.0f);
  a = c;
  CHECK(a[2] == 4.0f);
  CHECK(a.data() != c.data());
}

TEST_CASE("View: assignment writes elements and never rebinds") {
  Tensor<float, Shape<2, 3>> a, b;
  b[4] = 7.0f;
  View<float, Shape<2, 3>> va = a.view();
  View<float, Shape<2, 3>> vb = b.view();
  va = vb;
  CHECK(va.data() == a.data());
  CHECK(a[4] == 7.0f);
}

TEST_CASE("View: reshape, sample and batch windows alias the same memory") {
  Tensor<float, Shape<4, 2, 3>> t;
  for (index_t i = 0; i < t.size; ++i)
    t[i] = float(i);
  auto flat = t.reshape<Shape<24>>();
  CHECK(flat.data() == t.data());
  auto middle = t.batch<2>(1);
  static_assert(std::is_same_v<decltype(middle), View<float, Shape<2, 2, 3>>>);
  CHECK(middle[0] == 6.0f);
  CHECK(middle(1, 1, 2) == 17.0f);
  middle = middle * 0.0f;
  CHECK(t[5] == 5.0f);
  CHECK(t[6] == 0.0f);
  CHECK(t[17] == 0.0f);
  CHECK(t[18] == 18.0f);
}

TEST_CASE("Error: messages say where, what was expected and what was found") {
  try {
    fail_expected("weights.safetensors: tensor 'conv.weight': shape", "[4, 3]", "[3, 4]");
    FAIL("fail_expected returned");
  } catch (const Error& e) {
    CHECK(std::string(e.what()) ==
          "weights.safetensors: tensor 'conv.weight': shape: expected [4, 3], found [3, 4]");
  }
  CHECK_THROWS_AS(fail("x", 1, "y"), Error);
  CHECK_THROWS_WITH(fail("x", 1, "y"), "x1y");
}

namespace {
// An op-style signature: deduces T and the shape from views, mutable views and tensors alike.
template <class T, index_t N, index_t C>
T first_plus_last(View<const T, Shape<N, C>> x) {
  return x[0] + x[N * C - 1];
}
}  // namespace

TEST_CASE("a function taking View<const T, S> accepts tensors and mutable views") {
  Tensor<float, Shape<2, 3>> t;
  t[0] = 1.0f;
  t[5] = 2.0f;
  CHECK(first_plus_last(t) == 3.0f);
  CHECK(first_plus_last(t.view()) == 3.0f);
  const Tensor<float, Shape<2, 3>>& ct = t;
  CHECK(first_plus_last(ct) == 3.0f);
  CHECK(first_plus_last(ct.view()) == 3.0f);
  static_assert(std::is_same_v<decltype(ct[0]), const float&>);
  static_assert(std::is_same_v<decltype(ct.view()), View<const float, Shape<2, 3>>>);
}
