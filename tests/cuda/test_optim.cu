// The optimisers on the device against the same classes on the host: AdamW and EMA run one update
// functor in both spaces, rounded after every operation, so they should agree to the last bit
// (the checks allow 1e-6 and report how many elements differ at all); clipping sums squares in
// double on both sides, in different orders.
#include "cuda/support.cuh"

#include <cstdint>
#include <span>
#include <vector>

using namespace ldm;  // `cuda` alone is ambiguous with libcu++'s namespace: say ldm::cuda

namespace {

constexpr index_t kCount = 100'003;  // no multiple of a block or a tile
using Flat = Shape<kCount>;

std::span<float> span_of(View<float, Flat, ldm::cuda> v) {
  return {v.data(), std::size_t(kCount)};
}
std::span<float> span_of(View<float, Flat> v) {
  return {v.data(), std::size_t(kCount)};
}

// check_close's rule, for state that comes back as host arrays.
void check_state(const std::vector<float>& got, const std::vector<float>& expected,
                 const char* what) {
  REQUIRE(got.size() == expected.size());
  double scale = 0;
  for (float e : expected)
    scale = std::max(scale, std::abs(double(e)));
  const double floor = std::max(scale * 1e-2, std::numeric_limits<double>::min());
  std::size_t bad = 0, differing = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double a = got[i], e = expected[i];
    if (!(std::abs(a - e) / std::max(std::abs(e), floor) <= 1e-6)) ++bad;
    if (got[i] != expected[i]) ++differing;
  }
  MESSAGE(what << ": " << differing << " of " << got.size() << " elements differ in any bit");
  CHECK_MESSAGE(bad == 0, what << ": " << bad << " elements off by more than 1e-6");
}

void check_params(View<float, Flat, ldm::cuda> got, View<const float, Flat> expected,
                  const char* what) {
  const Tensor<float, Flat> back = to_host(View<const float, Flat, ldm::cuda>(got));
  check_state(std::vector<float>(back.data(), back.data() + kCount),
              std::vector<float>(expected.data(), expected.data() + kCount), what);
}

// Gradients whose mean and scale drift step to step, so the moments are not the last gradient.
Tensor<float, Flat> gradients(int step) {
  Tensor<float, Flat> g = test::host_random<float, Flat>(100 + std::uint64_t(step));
  g = g * (1 + 0.2f * float(step)) + 0.3f;
  return g;
}

void check_adamw(train::AdamWConfig config) {
  Tensor<float, Flat> params = test::host_random<float, Flat>(1);
  auto params_dev = to_device(View<const float, Flat>(params));
  train::AdamW host_adam(config, std::size_t(kCount));
  train::AdamW<ldm::cuda> device_adam(config, std::size_t(kCount));
  for (int step = 1; step <= 10; ++step) {
    const double lr = config.lr * (11 - step) / 10.0;
    host_adam.set_lr(lr);
    device_adam.set_lr(lr);
    Tensor<float, Flat> grads = gradients(step);
    auto grads_dev = to_device(View<const float, Flat>(grads));
    host_adam.step(span_of(params.view()), span_of(grads.view()));
    device_adam.step(span_of(params_dev.view()), span_of(grads_dev.view()));
  }
  CHECK(device_adam.steps() == 10);
  check_params(params_dev.view(), params.view(), "AdamW params");
  check_state(device_adam.exp_avg_host(), host_adam.exp_avg_host(), "AdamW exp_avg");
  check_state(device_adam.exp_avg_sq_host(), host_adam.exp_avg_sq_host(), "AdamW exp_avg_sq");
}

}  // namespace

TEST_CASE("AdamW on the device: ten steps equal the host's") {
  SUBCASE("torch's defaults") {
    check_adamw(train::AdamWConfig{});
  }
  SUBCASE("large decay and eps, small beta1: torch's other lerp formula") {
    check_adamw(train::AdamWConfig{
        .lr = 0.05, .beta1 = 0.3, .beta2 = 0.9, .eps = 1e-3, .weight_decay = 0.5});
  }
}

TEST_CASE("AdamW on the device: restored state continues as the host's") {
  const train::AdamWConfig config{};
  Tensor<float, Flat> params = test::host_random<float, Flat>(2);
  train::AdamW host_adam(config, std::size_t(kCount));
  for (int step = 1; step <= 3; ++step) {
    Tensor<float, Flat> grads = gradients(step);
    host_adam.step(span_of(params.view()), span_of(grads.view()));
  }
  auto params_dev = to_device(View<const float, Flat>(params));
  train::AdamW<ldm::cuda> device_adam(config, std::size_t(kCount));
  device_adam.restore(host_adam.steps(), host_adam.exp_avg(), host_adam.exp_avg_sq());
  CHECK(device_adam.exp_avg_host() == host_adam.exp_avg_host());
  for (int step = 4; step <= 6; ++step) {
    Tensor<float, Flat> grads = gradients(step);
    auto grads_dev = to_device(View<const float, Flat>(grads));
    host_adam.step(span_of(params.view()), span_of(grads.view()));
    device_adam.step(span_of(params_dev.view()), span_of(grads_dev.view()));
  }
  CHECK(device_adam.steps() == 6);
  check_params(params_dev.view(), params.view(), "resumed AdamW params");
  check_state(device_adam.exp_avg_sq_host(), host_adam.exp_avg_sq_host(),
              "resumed AdamW exp_avg_sq");
}

TEST_CASE("EMA on the device: ten steps, copy_to and restore equal the host's") {
  const train::EMAConfig config{.use_ema_warmup = true, .power = 0.75};
  const Tensor<float, Flat> start = test::host_random<float, Flat>(3);
  const auto start_dev = to_device(start.view());
  auto host_span = [](const Tensor<float, Flat>& t) {
    return std::span<const float>(t.data(), std::size_t(kCount));
  };
  auto device_span = [](const Tensor<float, Flat, ldm::cuda>& t) {
    return std::span<const float>(t.data(), std::size_t(kCount));
  };
  train::EMA host_ema(config, host_span(start));
  train::EMA<ldm::cuda> device_ema(config, device_span(start_dev));
  CHECK(device_ema.shadow_host() == host_ema.shadow_host());
  for (int step = 1; step <= 10; ++step) {
    const Tensor<float, Flat> params = gradients(step);
    host_ema.step(host_span(params));
    device_ema.step(device_span(to_device(params.view())));
  }
  CHECK(device_ema.optimization_step() == 10);
  check_state(device_ema.shadow_host(), host_ema.shadow_host(), "EMA shadow");

  auto out_dev = test::poisoned<float, Flat>();
  device_ema.copy_to(span_of(out_dev.view()));
  const Tensor<float, Flat> out = to_host(View<const float, Flat, ldm::cuda>(out_dev));
  CHECK(std::vector<float>(out.data(), out.data() + kCount) == device_ema.shadow_host());

  train::EMA<ldm::cuda> resumed(config, device_span(start_dev));
  resumed.restore(host_ema.optimization_step(), host_ema.shadow());
  const Tensor<float, Flat> params = gradients(11);
  host_ema.step(host_span(params));
  resumed.step(device_span(to_device(params.view())));
  CHECK(resumed.optimization_step() == 11);
  check_state(resumed.shadow_host(), host_ema.shadow_host(), "resumed EMA shadow");
}

TEST_CASE("clip_grad_norm on the device: the norm and the scaling equal the host's") {
  // A norm near 1e-3, so that the 1e-6 added to it shows in the clipping coefficient.
  Tensor<float, Flat> grads = test::host_random<float, Flat>(4, 3e-6);
  const double norm = train::clip_grad_norm(span_of(grads.view()), 1e9);

  SUBCASE("below max_norm nothing changes") {
    auto grads_dev = to_device(View<const float, Flat>(grads));
    CHECK(train::clip_grad_norm<ldm::cuda>(span_of(grads_dev.view()), 2 * norm) ==
          doctest::Approx(norm).epsilon(1e-12));
    const Tensor<float, Flat> back = to_host(View<const float, Flat, ldm::cuda>(grads_dev));
    CHECK(std::vector<float>(back.data(), back.data() + kCount) ==
          std::vector<float>(grads.data(), grads.data() + kCount));
  }
  SUBCASE("above max_norm both scale alike") {
    auto grads_dev = to_device(View<const float, Flat>(grads));
    const double max_norm = norm / 4;
    CHECK(train::clip_grad_norm<ldm::cuda>(span_of(grads_dev.view()), max_norm) ==
          doctest::Approx(norm).epsilon(1e-12));
    CHECK(train::clip_grad_norm(span_of(grads.view()), max_norm) ==
          doctest::Approx(norm).epsilon(1e-12));
    check_params(grads_dev.view(), grads.view(), "clipped gradients");
  }
  SUBCASE("an empty buffer has norm zero") {
    CHECK(train::clip_grad_norm<ldm::cuda>(std::span<float>(), 1.0) == 0.0);
  }
}
