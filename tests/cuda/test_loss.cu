// The losses on the device against the host ops run in double on the same float inputs: the
// values returned to the host, and the gradients, scaled by an upstream weight.
#include "cuda/support.cuh"

#include <cstdint>

using namespace ldm;  // `cuda` alone is ambiguous with libcu++'s namespace: say ldm::cuda

namespace {

using S = Shape<3, 7, 5, 11>;
constexpr double kUpstream = 0.37;
// The device sums the same double terms in another order, and its exp may differ from glibc's by
// an ulp of double.
constexpr double kValueTolerance = 1e-12;

struct Inputs {
  Tensor<float, S> pred, target;
  Tensor<double, S> pred_d, target_d;
  Tensor<float, S, ldm::cuda> dev_pred, dev_target;
};

Inputs inputs() {
  Inputs in;
  in.pred = test::host_random<float, S>(1);
  in.target = test::host_random<float, S>(2);
  // Exact matches, where L1's gradient is zero.
  for (index_t i = 0; i < S::size; i += 7)
    in.target[i] = in.pred[i];
  in.pred_d = test::converted<double>(in.pred);
  in.target_d = test::converted<double>(in.target);
  in.dev_pred = to_device(test::read_only(in.pred));
  in.dev_target = to_device(test::read_only(in.target));
  return in;
}

}  // namespace

TEST_CASE("mse on the device matches the host in double") {
  const Inputs in = inputs();
  const double expected =
      ops::mse_forward(test::read_only(in.pred_d), test::read_only(in.target_d));
  CHECK(ops::mse_forward(test::read_only(in.dev_pred), test::read_only(in.dev_target)) ==
        doctest::Approx(expected).epsilon(kValueTolerance));
  Tensor<double, S> grad_ref;
  ops::mse_backward(test::read_only(in.pred_d), test::read_only(in.target_d), kUpstream,
                    grad_ref.view());
  auto grad = test::poisoned<float, S>();
  ops::mse_backward(test::read_only(in.dev_pred), test::read_only(in.dev_target), kUpstream,
                    grad.view());
  test::check_close(test::read_only(grad), test::read_only(grad_ref), test::kFloatTolerance,
                    "mse dpred");
}

TEST_CASE("l1 on the device matches the host in double") {
  const Inputs in = inputs();
  const double expected = ops::l1_forward(test::read_only(in.pred_d), test::read_only(in.target_d));
  CHECK(ops::l1_forward(test::read_only(in.dev_pred), test::read_only(in.dev_target)) ==
        doctest::Approx(expected).epsilon(kValueTolerance));
  Tensor<double, S> grad_ref;
  ops::l1_backward(test::read_only(in.pred_d), test::read_only(in.target_d), kUpstream,
                   grad_ref.view());
  auto grad = test::poisoned<float, S>();
  ops::l1_backward(test::read_only(in.dev_pred), test::read_only(in.dev_target), kUpstream,
                   grad.view());
  test::check_close(test::read_only(grad), test::read_only(grad_ref), test::kFloatTolerance,
                    "l1 dpred");
}

TEST_CASE("kl on the device matches the host in double") {
  const Inputs in = inputs();  // target serves as logvar
  const double expected = ops::kl_forward(test::read_only(in.pred_d), test::read_only(in.target_d));
  CHECK(ops::kl_forward(test::read_only(in.dev_pred), test::read_only(in.dev_target)) ==
        doctest::Approx(expected).epsilon(kValueTolerance));
  Tensor<double, S> dmean_ref, dlogvar_ref;
  ops::kl_backward(test::read_only(in.pred_d), test::read_only(in.target_d), kUpstream,
                   dmean_ref.view(), dlogvar_ref.view());
  auto dmean = test::poisoned<float, S>(), dlogvar = test::poisoned<float, S>();
  ops::kl_backward(test::read_only(in.dev_pred), test::read_only(in.dev_target), kUpstream,
                   dmean.view(), dlogvar.view());
  test::check_close(test::read_only(dmean), test::read_only(dmean_ref), test::kFloatTolerance,
                    "kl dmean");
  test::check_close(test::read_only(dlogvar), test::read_only(dlogvar_ref), test::kFloatTolerance,
                    "kl dlogvar");
}

TEST_CASE("softmax cross-entropy on the device matches the host in double") {
  constexpr index_t N = 5, K = 10;
  using L = Shape<N, K>;
  const Tensor<float, L> logits = test::host_random<float, L>(3, 4.0);
  const Tensor<double, L> logits_d = test::converted<double>(logits);
  Tensor<std::int32_t, Shape<N>> labels;
  const std::int32_t classes[N] = {0, 9, 3, 3, 7};
  for (index_t n = 0; n < N; ++n)
    labels[n] = classes[n];
  const double expected =
      ops::cross_entropy_forward(test::read_only(logits_d), test::read_only(labels));
  Tensor<double, L> grad_ref;
  ops::cross_entropy_backward(test::read_only(logits_d), test::read_only(labels), kUpstream,
                              grad_ref.view());

  const Tensor<float, L, ldm::cuda> dev_logits = to_device(test::read_only(logits));
  const Tensor<std::int32_t, Shape<N>, ldm::cuda> dev_labels = to_device(test::read_only(labels));
  CHECK(ops::cross_entropy_forward(test::read_only(dev_logits), test::read_only(dev_labels)) ==
        doctest::Approx(expected).epsilon(kValueTolerance));
  auto grad = test::poisoned<float, L>();
  ops::cross_entropy_backward(test::read_only(dev_logits), test::read_only(dev_labels), kUpstream,
                              grad.view());
  test::check_close(test::read_only(grad), test::read_only(grad_ref), test::kFloatTolerance,
                    "cross-entropy dlogits");

  labels[2] = K;  // out of range: refused before any kernel reads past the row
  const Tensor<std::int32_t, Shape<N>, ldm::cuda> bad_labels = to_device(test::read_only(labels));
  CHECK_THROWS_AS(
      (void)ops::cross_entropy_forward(test::read_only(dev_logits), test::read_only(bad_labels)),
      Error);
  CHECK_THROWS_AS(ops::cross_entropy_backward(test::read_only(dev_logits),
                                              test::read_only(bad_labels), 1.0, grad.view()),
                  Error);
}
