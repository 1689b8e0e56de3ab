#pragma once
// What bench_allreduce (MPI, host buffers) and bench_allreduce_nccl (NCCL, device buffers)
// share: the buffer sizes, the timing loop and the table. Bus bandwidth is nccl-tests' measure:
// algorithm bandwidth (bytes / time) times 2 (K - 1) / K, what a ring all-reduce moves per rank,
// so numbers compare across world sizes and with nccl-tests.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ldm/distributed/communicator.hpp>

namespace bench {

// Repetitions per size: the largest buffer is hundreds of MB, so fewer of them.
inline int repetitions(std::size_t floats) {
  return floats > 50'000'000 ? 3 : floats > 5'000'000 ? 10 : 30;
}

// Seconds per call of `reduce` on every rank: one untimed call, then the slowest rank's mean.
template <class Comm, class Reduce, class Wait>
double seconds_per_call(Comm& comm, std::size_t floats, Reduce reduce, Wait wait) {
  reduce();
  wait();
  comm.barrier();
  const int reps = repetitions(floats);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i)
    reduce();
  wait();
  const auto ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start)
          .count();
  return double(comm.all_reduce_max(std::int64_t(ns))) * 1e-9 / reps;
}

inline void print_header(int ranks) {
  std::printf("all-reduce of float buffers over %d ranks\n", ranks);
  std::printf("| floats | MB | method | ms per call | algbw GB/s | busbw GB/s |\n");
  std::printf("|---:|---:|---|---:|---:|---:|\n");
}

inline void print_row(std::size_t floats, const char* method, double seconds, int ranks) {
  const double bytes = double(floats) * sizeof(float);
  const double algbw = bytes / seconds * 1e-9;
  const double busbw = algbw * 2.0 * (ranks - 1) / ranks;
  std::printf("| %zu | %.1f | %s | %.2f | %.2f | %.2f |\n", floats, bytes * 1e-6, method,
              seconds * 1e3, algbw, busbw);
  std::fflush(stdout);
}

}  // namespace bench
