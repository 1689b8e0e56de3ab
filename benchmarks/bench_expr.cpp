// Fused expression vs the same work as separate passes vs memcpy, on 2^26 floats.
//
// Bytes/s counts bytes read plus bytes written by the algorithm (not the cache traffic a write
// allocation adds), so the three rows are comparable: the fused row should move at least 70% of
// memcpy's bytes per second.
//   ./build/host/benchmarks/bench_expr --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <cstring>
#include <ldm/ldm.hpp>
#include <memory>

#include "benchmark_main.hpp"

namespace {
using Big = ldm::Shape<1 << 26>;
constexpr std::int64_t bytes_of_one = sizeof(float) * Big::size;

struct Operands {
  ldm::Tensor<float, Big> x, z, y;
  Operands() {
    x = ldm::randn<Big>(1, 0);
    z = ldm::randn<Big>(1, 1);
  }
};
Operands& operands() {
  static Operands o;
  return o;
}

void BM_fused_axpbz(benchmark::State& state) {
  auto& o = operands();
  const float a = 0.5f, b = 2.0f;
  for (auto _ : state) {
    o.y = a * o.x + b * o.z;
    benchmark::DoNotOptimize(o.y.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * 3 * bytes_of_one);
}

// The same arithmetic as three passes with two temporaries, as an eager tensor library runs it.
void BM_separate_passes(benchmark::State& state) {
  auto& o = operands();
  auto ax = std::make_unique<ldm::Tensor<float, Big>>();
  auto bz = std::make_unique<ldm::Tensor<float, Big>>();
  const float a = 0.5f, b = 2.0f;
  for (auto _ : state) {
    *ax = a * o.x;
    *bz = b * o.z;
    o.y = *ax + *bz;
    benchmark::DoNotOptimize(o.y.data());
    benchmark::ClobberMemory();
  }
  // Bytes the algorithm moves: 2 + 2 + 3 arrays.
  state.SetBytesProcessed(state.iterations() * 7 * bytes_of_one);
  state.counters["useful_bytes_per_second"] = benchmark::Counter(
      double(state.iterations()) * 3 * bytes_of_one, benchmark::Counter::kIsRate);
}

// memcpy of 1.5 arrays: 1.5 read + 1.5 written = the fused row's 3 arrays of traffic.
void BM_memcpy_same_bytes(benchmark::State& state) {
  const std::size_t n = std::size_t(bytes_of_one) * 3 / 2;
  auto src = std::unique_ptr<char[]>(new char[n]);
  auto dst = std::unique_ptr<char[]>(new char[n]);
  std::memset(src.get(), 1, n);
  std::memset(dst.get(), 0, n);
  for (auto _ : state) {
    std::memcpy(dst.get(), src.get(), n);
    benchmark::DoNotOptimize(dst.get());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * 2 * std::int64_t(n));
}
}  // namespace

BENCHMARK(BM_memcpy_same_bytes)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_fused_axpbz)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_separate_passes)->Unit(benchmark::kMillisecond)->UseRealTime();
int main(int argc, char** argv) {
  return bench::run(argc, argv);
}
