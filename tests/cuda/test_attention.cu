// Multi-head attention on the device against the host op run in double on the same (float-valued)
// inputs: the output, the saved probabilities, and the gradients of q, k and v. L = 7 x 5 tokens is
// no multiple of a warp, so the softmax kernels' partial last pass over a row is exercised.
#include "cuda/support.cuh"

using namespace ldm;  // `cuda` alone is ambiguous with libcu++'s namespace: say ldm::cuda

namespace {

// The probabilities meet the float bound. The output and the gradients get 3e-5: the float logits
// carry the rounding of a D-term dot product, and the softmax gradient amplifies it where a row's
// terms cancel. The host's own float path is up to 1.4e-5 from double on these very inputs (dk,
// one head), so 1e-5 would fail a correct kernel; an indexing error is off by O(1).
constexpr double kAttentionTolerance = 3e-5;

template <index_t Heads, index_t N, index_t L, index_t C>
void check_attention() {
  using S = Shape<N, L, C>;
  using P = Shape<N, Heads, L, L>;
  // Float inputs, widened for the reference, so both sides see the same values.
  const Tensor<float, S> q = test::host_random<float, S>(31);
  const Tensor<float, S> k = test::host_random<float, S>(32);
  const Tensor<float, S> v = test::host_random<float, S>(33);
  const Tensor<float, S> dout = test::host_random<float, S>(34);
  Tensor<double, S> qd, kd, vd, doutd, out, dq, dk, dv;
  Tensor<double, P> probs;
  qd = q;
  kd = k;
  vd = v;
  doutd = dout;
  ops::attention_forward<Heads>(qd, kd, vd, out.view(), probs.view());
  ops::attention_backward<Heads>(qd, kd, vd, probs, doutd, dq.view(), dk.view(), dv.view());

  const auto q_dev = to_device(q.view());
  const auto k_dev = to_device(k.view());
  const auto v_dev = to_device(v.view());
  const auto dout_dev = to_device(dout.view());
  auto out_dev = test::poisoned<float, S>();
  auto probs_dev = test::poisoned<float, P>();
  ops::attention_forward<Heads>(q_dev, k_dev, v_dev, out_dev.view(), probs_dev.view());
  test::check_close(View<const float, S, ldm::cuda>(out_dev), out.view(), kAttentionTolerance,
                    "out");
  test::check_close(View<const float, P, ldm::cuda>(probs_dev), probs.view(), test::kFloatTolerance,
                    "probs");

  auto dq_dev = test::poisoned<float, S>();
  auto dk_dev = test::poisoned<float, S>();
  auto dv_dev = test::poisoned<float, S>();
  ops::attention_backward<Heads>(q_dev, k_dev, v_dev, probs_dev, dout_dev, dq_dev.view(),
                                 dk_dev.view(), dv_dev.view());
  test::check_close(View<const float, S, ldm::cuda>(dq_dev), dq.view(), kAttentionTolerance, "dq");
  test::check_close(View<const float, S, ldm::cuda>(dk_dev), dk.view(), kAttentionTolerance, "dk");
  test::check_close(View<const float, S, ldm::cuda>(dv_dev), dv.view(), kAttentionTolerance, "dv");
}

}  // namespace

TEST_CASE("attention on the device equals the host in double: three heads") {
  check_attention<3, 3, 35, 24>();  // D = 8
}

TEST_CASE("attention on the device equals the host in double: one head") {
  check_attention<1, 3, 35, 24>();  // D = 24, the autoencoder's single-head form
}

TEST_CASE("attention on the device: more heads than samples loops over samples") {
  check_attention<4, 2, 35, 24>();  // D = 6; N < Heads takes the other batching direction
}

TEST_CASE("attention on the device: logits beyond float's exp range stay finite") {
  using S = Shape<2, 35, 24>;
  using P = Shape<2, 3, 35, 35>;
  // q x 40 puts the largest logits near 400: exp overflows unless each row's maximum is subtracted.
  const auto q = to_device(test::host_random<float, S>(41, 40.0).view());
  const auto k = to_device(test::host_random<float, S>(42).view());
  const auto v = to_device(test::host_random<float, S>(43).view());
  auto out = test::poisoned<float, S>();
  auto probs = test::poisoned<float, P>();
  ops::attention_forward<3>(q, k, v, out.view(), probs.view());
  const Tensor<float, S> out_host = to_host(View<const float, S, ldm::cuda>(out));
  const Tensor<float, P> probs_host = to_host(View<const float, P, ldm::cuda>(probs));
  for (index_t i = 0; i < S::size; ++i)
    REQUIRE(std::isfinite(out_host[i]));
  for (index_t row = 0; row < 2 * 3 * 35; ++row) {
    double total = 0;
    for (index_t j = 0; j < 35; ++j)
      total += probs_host[row * 35 + j];
    REQUIRE(total == doctest::Approx(1.0).epsilon(1e-5));
  }
}
