// GroupNorm and GroupNorm + SiLU on the device against the host backend run in double on the same
// float inputs: outputs, saved statistics, input gradients, and parameter gradients that must
// accumulate into what they held.
#include "cuda/support.cuh"

#include <cstring>

using namespace ldm;  // `cuda` alone is ambiguous with libcu++'s namespace: say ldm::cuda

namespace {

template <bool Silu>
constexpr ops::NormActivation activation =
    Silu ? ops::NormActivation::silu : ops::NormActivation::none;

// The entry points, by Silu, with the call forms modules use.
template <bool Silu, index_t Groups>
void forward(auto x, auto gamma, auto beta, auto eps, auto y, auto mean, auto rstd) {
  ops::group_norm_forward<Groups, activation<Silu>>(x, gamma, beta, eps, y, mean, rstd);
}

template <bool Silu, index_t Groups>
void backward(auto x, auto gamma, auto beta, auto mean, auto rstd, auto dy, auto dx, auto dgamma,
              auto dbeta) {
  ops::group_norm_backward<Groups, activation<Silu>>(x, gamma, beta, mean, rstd, dy, dx, dgamma,
                                                     dbeta);
}

// One forward and one backward on both sides. x has a mean far from zero next to its spread in
// one channel, which single-pass float statistics would get wrong.
template <bool Silu, index_t Groups, ShapeType S>
void compare(std::uint64_t seed) {
  constexpr index_t N = S::extents[0], C = S::extents[3];
  using Vec = Shape<C>;
  using Stats = Shape<N, Groups>;
  Tensor<float, S> x = test::host_random<float, S>(seed, 2.0);
  x += 3.0f;
  const Tensor<float, S> dy = test::host_random<float, S>(seed + 1);
  Tensor<float, Vec> gamma = test::host_random<float, Vec>(seed + 2, 0.5);
  gamma += 1.0f;
  const Tensor<float, Vec> beta = test::host_random<float, Vec>(seed + 3, 0.5);
  Tensor<float, Vec> start_dgamma = test::host_random<float, Vec>(seed + 4);
  Tensor<float, Vec> start_dbeta = test::host_random<float, Vec>(seed + 5);

  // Host reference in double.
  const Tensor<double, S> xd = test::converted<double>(x), dyd = test::converted<double>(dy);
  const Tensor<double, Vec> gd = test::converted<double>(gamma), bd = test::converted<double>(beta);
  Tensor<double, S> y_ref, dx_ref;
  Tensor<double, Stats> mean_ref, rstd_ref;
  Tensor<double, Vec> dgamma_ref = test::converted<double>(start_dgamma),
                      dbeta_ref = test::converted<double>(start_dbeta);
  forward<Silu, Groups>(test::read_only(xd), test::read_only(gd), test::read_only(bd), 1e-5,
                        y_ref.view(), mean_ref.view(), rstd_ref.view());
  backward<Silu, Groups>(test::read_only(xd), test::read_only(gd), test::read_only(bd),
                         test::read_only(mean_ref), test::read_only(rstd_ref), test::read_only(dyd),
                         dx_ref.view(), dgamma_ref.view(), dbeta_ref.view());

  // Device in float, outputs poisoned.
  const Tensor<float, S, ldm::cuda> dev_x = to_device(test::read_only(x)),
                                    dev_dy = to_device(test::read_only(dy));
  const Tensor<float, Vec, ldm::cuda> dev_gamma = to_device(test::read_only(gamma)),
                                      dev_beta = to_device(test::read_only(beta));
  auto y = test::poisoned<float, S>(), dx = test::poisoned<float, S>();
  auto mean = test::poisoned<float, Stats>(), rstd = test::poisoned<float, Stats>();
  auto dgamma = to_device(test::read_only(start_dgamma)),
       dbeta = to_device(test::read_only(start_dbeta));
  forward<Silu, Groups>(test::read_only(dev_x), test::read_only(dev_gamma),
                        test::read_only(dev_beta), 1e-5f, y.view(), mean.view(), rstd.view());
  backward<Silu, Groups>(test::read_only(dev_x), test::read_only(dev_gamma),
                         test::read_only(dev_beta), test::read_only(mean), test::read_only(rstd),
                         test::read_only(dev_dy), dx.view(), dgamma.view(), dbeta.view());

  const double tol = test::kFloatTolerance;
  test::check_close(test::read_only(y), test::read_only(y_ref), tol, "y");
  test::check_close(test::read_only(mean), test::read_only(mean_ref), tol, "mean");
  test::check_close(test::read_only(rstd), test::read_only(rstd_ref), tol, "rstd");
  test::check_close(test::read_only(dx), test::read_only(dx_ref), tol, "dx");
  test::check_close(test::read_only(dgamma), test::read_only(dgamma_ref), tol,
                    "dgamma (accumulated)");
  test::check_close(test::read_only(dbeta), test::read_only(dbeta_ref), tol, "dbeta (accumulated)");

  // Deterministic: a second backward adds exactly the same gradients again and writes the same dx.
  const Tensor<float, S> dx_first = to_host(test::read_only(dx));
  const Tensor<float, Vec> dgamma_first = to_host(test::read_only(dgamma));
  auto dx_again = test::poisoned<float, S>();
  auto dgamma_again = to_device(test::read_only(start_dgamma)),
       dbeta_again = to_device(test::read_only(start_dbeta));
  backward<Silu, Groups>(test::read_only(dev_x), test::read_only(dev_gamma),
                         test::read_only(dev_beta), test::read_only(mean), test::read_only(rstd),
                         test::read_only(dev_dy), dx_again.view(), dgamma_again.view(),
                         dbeta_again.view());
  const Tensor<float, S> dx_second = to_host(test::read_only(dx_again));
  const Tensor<float, Vec> dgamma_second = to_host(test::read_only(dgamma_again));
  CHECK(std::memcmp(dx_first.data(), dx_second.data(), Tensor<float, S>::bytes) == 0);
  CHECK(std::memcmp(dgamma_first.data(), dgamma_second.data(), Tensor<float, Vec>::bytes) == 0);
}

using Odd = Shape<3, 7, 5, 12>;
// A group of 2 * 19 * 17 * 20 elements: several per thread of a block, and channel tiles past 32.
using Wide = Shape<2, 19, 17, 40>;

}  // namespace

TEST_CASE("group_norm on the device matches the host in double") {
  SUBCASE("groups of three channels") {
    compare<false, 4, Odd>(10);
  }
  SUBCASE("one channel per group") {
    compare<false, 12, Odd>(20);
  }
  SUBCASE("one group") {
    compare<false, 1, Odd>(30);
  }
  SUBCASE("large groups and channel tiles") {
    compare<false, 2, Wide>(40);
  }
}

TEST_CASE("group_norm_silu on the device matches the host in double") {
  SUBCASE("groups of three channels") {
    compare<true, 4, Odd>(50);
  }
  SUBCASE("one channel per group") {
    compare<true, 12, Odd>(60);
  }
  SUBCASE("large groups and channel tiles") {
    compare<true, 8, Wide>(70);
  }
}

TEST_CASE("the GroupNorm module runs on device views") {
  using S = Odd;
  constexpr index_t C = S::extents[3];
  Tensor<float, Shape<2 * C>, ldm::cuda> values, grads;
  values = 1.0f;
  nn::ParameterStore<float> store{values.data(), grads.data(), 2 * C};
  nn::GroupNorm<float, ldm::cuda, C, 4, nn::Activation::silu> norm(
      nn::ParameterBinder<float, ldm::cuda>(store), 1e-6);
  const Tensor<float, S> x = test::host_random<float, S>(80);
  const auto dev_x = to_device(test::read_only(x));
  decltype(norm)::Saved<3> saved;
  auto y = test::poisoned<float, S>(), dx = test::poisoned<float, S>();
  norm.forward<3, 7, 5>(test::read_only(dev_x), saved, y.view());
  norm.backward<3, 7, 5>(test::read_only(dev_x), saved, test::read_only(y), dx.view());
  const Tensor<float, S> got = to_host(test::read_only(dx));
  index_t finite = 0;
  for (index_t i = 0; i < S::size; ++i)
    finite += std::isfinite(got[i]);
  CHECK(finite == S::size);
}
