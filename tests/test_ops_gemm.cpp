#include <doctest/doctest.h>

#include <omp.h>
#include <cmath>
#include <ldm/ldm.hpp>
#include <ldm/ops/gemm.hpp>
#include <ldm/ops/gemm/column_sums.hpp>
#include <vector>

using namespace ldm;
using ops::Trans;

namespace {
template <class T>
void check_gemm(Trans ta, Trans tb, int m, int n, int k, T alpha, T beta) {
  std::vector<T> a(std::size_t(m) * k), b(std::size_t(k) * n), c(std::size_t(m) * n);
  for (std::size_t i = 0; i < a.size(); ++i)
    a[i] = T(normal(1, 0, i));
  for (std::size_t i = 0; i < b.size(); ++i)
    b[i] = T(normal(1, 1, i));
  for (std::size_t i = 0; i < c.size(); ++i)
    c[i] = T(normal(1, 2, i));
  std::vector<T> expected = c;
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      double acc = 0;
      for (int p = 0; p < k; ++p) {
        double av = ta == Trans::yes ? a[std::size_t(p) * m + i] : a[std::size_t(i) * k + p];
        double bv = tb == Trans::yes ? b[std::size_t(j) * k + p] : b[std::size_t(p) * n + j];
        acc += av * bv;
      }
      expected[std::size_t(i) * n + j] = T(alpha * acc + beta * double(c[std::size_t(i) * n + j]));
    }
  ops::gemm(host{}, ta, tb, m, n, k, alpha, a.data(), b.data(), beta, c.data());
  const double tolerance = std::is_same_v<T, float> ? 1e-5 : 1e-12;
  for (std::size_t i = 0; i < c.size(); ++i)
    REQUIRE(std::abs(c[i] - expected[i]) <=
            tolerance * std::sqrt(double(k)) * (1 + std::abs(expected[i])));
}
}  // namespace

TEST_CASE("gemm: row-major, every transpose combination, alpha and beta, odd sizes") {
  for (Trans ta : {Trans::no, Trans::yes})
    for (Trans tb : {Trans::no, Trans::yes}) {
      check_gemm<float>(ta, tb, 7, 5, 3, 1.0f, 0.0f);
      check_gemm<float>(ta, tb, 13, 11, 17, 0.5f, 2.0f);
      check_gemm<double>(ta, tb, 9, 1, 31, -1.5, 1.0);
      check_gemm<double>(ta, tb, 1, 19, 2, 1.0, -0.25);
    }
}

TEST_CASE("add_column_sums on the host: the per-(block, column) partials' bits, any thread count") {
  // The host path reads whole rows and shares the blocks among threads; it must give exactly what
  // the one-item-per-(block, column) functors (the GPU's path) give.
  const int default_threads = omp_get_max_threads();
  for (const auto& [rows, cols] :
       {std::pair<index_t, index_t>{32768, 32}, {1000, 7}, {63, 5}, {70000, 3}, {1, 1}}) {
    std::vector<float> a(std::size_t(rows * cols)), out(static_cast<std::size_t>(cols)), expected;
    for (std::size_t i = 0; i < a.size(); ++i)
      a[i] = float(normal(3, 0, i) * 1e3 + 1e4);
    for (std::size_t i = 0; i < out.size(); ++i)
      out[i] = float(normal(3, 1, i));
    expected = out;
    const index_t block_rows = ops::detail::column_sum_block_rows(rows);
    const index_t blocks = (rows + block_rows - 1) / block_rows;
    std::vector<double> partial(std::size_t(blocks * cols));
    for (index_t i = 0; i < blocks * cols; ++i)
      ops::detail::ColumnPartialSums<float>{a.data(), partial.data(), rows, cols, block_rows}(i);
    for (index_t c = 0; c < cols; ++c)
      ops::detail::AddPartialSums<float>{partial.data(), expected.data(), blocks, cols}(c);
    for (const int threads : {1, 2, 3}) {
      std::vector<float> got = out;
      omp_set_num_threads(threads);
      ops::add_column_sums(host{}, a.data(), rows, cols, got.data());
      CAPTURE(rows);
      CAPTURE(threads);
      for (index_t c = 0; c < cols; ++c)
        REQUIRE(got[std::size_t(c)] == expected[std::size_t(c)]);
    }
  }
  omp_set_num_threads(default_threads);
}
