// The CUDA backend's core against the host: memory, copies, the executor over the shared
// evaluator, reductions through CUB, and the Philox streams.
#include "cuda/support.cuh"

#include <cstring>
#include <limits>

using namespace ldm;  // `cuda` alone is ambiguous with libcu++'s namespace: say ldm::cuda

namespace {
using Odd = Shape<3, 7, 5, 11>;  // 1155 elements: no multiple of any tile or vector width
using Big = Shape<3, 1000, 1001>;

float ulp_distance(float a, float b) {
  std::int32_t ia, ib;
  std::memcpy(&ia, &a, 4);
  std::memcpy(&ib, &b, 4);
  return float(std::abs(std::int64_t(ia) - std::int64_t(ib)));
}
}  // namespace

TEST_CASE("device tensors start at zero and round-trip through the host exactly") {
  const Tensor<float, Odd> a = test::host_random<float, Odd>(1);
  Tensor<float, Odd, ldm::cuda> zero;
  const Tensor<float, Odd> back_zero = to_host(View<const float, Odd, ldm::cuda>(zero.view()));
  for (index_t i = 0; i < Odd::size; ++i)
    REQUIRE(back_zero[i] == 0.0f);
  const Tensor<float, Odd, ldm::cuda> d = to_device(a.view());
  const Tensor<float, Odd, ldm::cuda> copied = d;  // device-to-device through the executor
  const Tensor<float, Odd> back = to_host(copied.view());
  CHECK(std::memcmp(back.data(), a.data(), Tensor<float, Odd>::bytes) == 0);
}

TEST_CASE("a training-sized allocation pattern reuses cached blocks") {
  { Tensor<float, Big, ldm::cuda> warm; }
  const auto before = cuda_device::memory_stats();
  for (int step = 0; step < 5; ++step) {
    Tensor<float, Big, ldm::cuda> a, b;
    a = b + 1.0f;
  }
  const auto after = cuda_device::memory_stats();
  CHECK(after.driver_allocations - before.driver_allocations <= 1);
  CHECK(after.in_use == before.in_use);
}

TEST_CASE("fused expressions on the device equal the host executor's") {
  const Tensor<float, Odd> x = test::host_random<float, Odd>(2);
  const Tensor<float, Shape<11>> bias = test::host_random<float, Shape<11>>(3);
  Tensor<float, Odd> expected;
  expected = silu(x * 2.0f - 0.5f) * broadcast<Odd, 0, 1, 2>(bias) + exp(clamp(x, -1.0, 1.0));
  expected += x * x;

  const auto dx = to_device(x.view());
  const auto dbias = to_device(bias.view());
  auto out = test::poisoned<float, Odd>();
  out = silu(dx * 2.0f - 0.5f) * broadcast<Odd, 0, 1, 2>(dbias) + exp(clamp(dx, -1.0, 1.0));
  out += dx * dx;
  test::check_close(View<const float, Odd, ldm::cuda>(out.view()), expected.view(),
                    test::kFloatTolerance, "fused expression");
}

TEST_CASE("bf16 destinations round as the host rounds") {
  const Tensor<float, Odd> x = test::host_random<float, Odd>(4, 3.0);
  Tensor<bf16, Odd> expected;
  expected = x * 1.5f;
  const auto dx = to_device(x.view());
  Tensor<bf16, Odd, ldm::cuda> out;
  out = dx * 1.5f;
  const Tensor<bf16, Odd> got = to_host(View<const bf16, Odd, ldm::cuda>(out.view()));
  CHECK(std::memcmp(got.data(), expected.data(), Tensor<bf16, Odd>::bytes) == 0);
}

TEST_CASE("axis reductions and whole reductions match the host") {
  const Tensor<float, Odd> x = test::host_random<float, Odd>(5);
  Tensor<float, Shape<11>> expected_mean;
  expected_mean = mean<0, 1, 2>(x);
  const auto dx = to_device(x.view());
  auto got_mean = test::poisoned<float, Shape<11>>();
  got_mean = mean<0, 1, 2>(dx);
  test::check_close(View<const float, Shape<11>, ldm::cuda>(got_mean.view()), expected_mean.view(),
                    test::kFloatTolerance, "mean over N, H, W");

  const Tensor<float, Big> big = test::host_random<float, Big>(6);
  const auto dbig = to_device(big.view());
  CHECK(double(sum(dbig)) == doctest::Approx(double(sum(big))).epsilon(1e-6));
  CHECK(float(max(dbig)) == float(max(big)));
  CHECK(float(min(dbig)) == float(min(big)));
  CHECK(double(mean(dbig * dbig)) == doctest::Approx(double(mean(big * big))).epsilon(1e-6));
}

TEST_CASE("integer max and min on the device start from the type's extreme values") {
  // All values at one extreme: an identity other than the type's extreme value shows in the result.
  using I = std::int32_t;
  constexpr I lowest = std::numeric_limits<I>::lowest(), highest = std::numeric_limits<I>::max();
  Tensor<I, Shape<3, 5>> x;
  for (index_t i = 0; i < 15; ++i)
    x[i] = lowest;
  auto dx = to_device(x.view());
  CHECK(max(dx) == lowest);
  Tensor<I, Shape<5>, ldm::cuda> column;
  column = max<0>(dx);
  CHECK(to_host(View<const I, Shape<5>, ldm::cuda>(column.view()))[2] == lowest);
  for (index_t i = 0; i < 15; ++i)
    x[i] = highest;
  dx = to_device(x.view());
  CHECK(min(dx) == highest);
  column = min<0>(dx);
  CHECK(to_host(View<const I, Shape<5>, ldm::cuda>(column.view()))[2] == highest);
  for (index_t i = 0; i < 15; ++i)
    x[i] = I(i) - 7;
  dx = to_device(x.view());
  CHECK(max(dx) == 7);
  CHECK(min(dx) == -7);
  CHECK(sum(dx) == 0);
}

TEST_CASE("Philox streams on the device give the host's numbers") {
  Tensor<float, Big> host_uniform, host_normal;
  host_uniform = rand<Big>(2024, 3, 17);
  host_normal = randn<Big>(2024, 4, 17);
  Tensor<float, Big, ldm::cuda> device_uniform, device_normal;
  device_uniform = rand<Big>(2024, 3, 17);
  device_normal = randn<Big>(2024, 4, 17);
  const Tensor<float, Big> u = to_host(View<const float, Big, ldm::cuda>(device_uniform.view()));
  const Tensor<float, Big> n = to_host(View<const float, Big, ldm::cuda>(device_normal.view()));
  // Uniforms are integer arithmetic and one scaling: bit for bit.
  CHECK(std::memcmp(u.data(), host_uniform.data(), Tensor<float, Big>::bytes) == 0);
  // Normals go through log, sin and cos in double; CUDA's and glibc's differ by an ulp of double
  // at most, which survives rounding to float only at a rounding boundary.
  index_t differing = 0;
  float worst = 0;
  for (index_t i = 0; i < Big::size; ++i) {
    const float d = ulp_distance(n[i], host_normal[i]);
    differing += d != 0;
    worst = std::max(worst, d);
  }
  INFO(differing << " of " << Big::size << " normals differ; at most " << worst << " ulp");
  CHECK(worst <= 1);
  CHECK(differing <= Big::size / 100000);
}

TEST_CASE("CUDA errors name the call, file and line") {
  void* p = nullptr;
  try {
    LDM_CUDA_CHECK(cudaMalloc(&p, std::size_t(1) << 62));
    FAIL("an impossible allocation succeeded");
  } catch (const Error& e) {
    const std::string message = e.what();
    CHECK(message.find("cudaMalloc(&p, std::size_t(1) << 62)") != std::string::npos);
    CHECK(message.find("test_core.cu:") != std::string::npos);
    CHECK(message.find("cudaErrorMemoryAllocation") != std::string::npos);
  }
  (void)cudaGetLastError();
}
