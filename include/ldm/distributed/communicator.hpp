#pragma once
/// @file
/// What a data-parallel trainer asks of the processes it runs in: who am I, how many are we, sum
/// the gradients, agree on a number, hand rank 0's weights and words to everyone, and end us all
/// when one fails. `Communicator<C, Space>` states it; `SingleProcess` is the world of one, so a
/// program that is not distributed makes the same calls. The engines are MPI
/// (`ldm/distributed/mpi.hpp`, host buffers, or device buffers through a host copy) and NCCL
/// (`ldm/distributed/nccl.cuh`, device buffers, in .cu units).
///
/// Memory spaces: a communicator names the space of its float buffers (`buffer_space`), which is
/// where the model keeps its flat gradient and weight buffers (`ldm::host` or `ldm::cuda`). The
/// double buffers (losses, counters), integers and strings are always host values.

#include <concepts>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>

#include "ldm/core/error.hpp"
#include "ldm/core/space.hpp"

namespace ldm::distributed {

/// The calls a data-parallel trainer makes. Every rank must make the same collective calls
/// (all_reduce_*, broadcast, barrier) in the same order with buffers of the same length; the
/// sums are identical on every rank (each communicator says in what order it adds).
template <class C, class Space>
concept Communicator = std::same_as<typename C::buffer_space, Space> &&
    requires(C& c, const C& cc, std::span<float> floats, std::span<double> doubles,
             std::string& text, std::int64_t value, int root, std::string_view message) {
  { cc.rank() } -> std::same_as<int>;
  { cc.size() } -> std::same_as<int>;
  c.all_reduce_sum(floats);
  c.all_reduce_sum(doubles);
  { c.all_reduce_max(value) } -> std::same_as<std::int64_t>;
  c.broadcast(floats, root);
  c.broadcast(text, root);
  c.barrier();
  c.abort(int{}, message);
};

/// The world of one process: rank 0 of 1. Sums, maxima and broadcasts return their input and the
/// barrier returns at once, so non-distributed code paths make the same calls as distributed ones.
/// @tparam Space where the float buffers live (nothing is read or written there)
template <class Space = host>
class SingleProcess {
 public:
  static_assert(is_space_v<Space>, "SingleProcess: Space must be ldm::host or ldm::cuda");
  /// Where the float buffers live.
  using buffer_space = Space;

  /// This process's rank: 0.
  int rank() const { return 0; }
  /// The number of processes: 1.
  int size() const { return 1; }
  /// The sum over one process: `values` as they are.
  void all_reduce_sum(std::span<float> values) { (void)values; }
  /// The sum over one process: `values` as they are.
  void all_reduce_sum(std::span<double> values) { (void)values; }
  /// The maximum over one process: `value`.
  std::int64_t all_reduce_max(std::int64_t value) { return value; }
  /// Rank 0's values are already here.
  /// @throws ldm::Error when `root` is not 0
  void broadcast(std::span<float> values, int root) {
    (void)values;
    check_root(root);
  }
  /// Rank 0's text is already here.
  /// @throws ldm::Error when `root` is not 0
  void broadcast(std::string& text, int root) {
    (void)text;
    check_root(root);
  }
  /// Nothing to wait for.
  void barrier() {}
  /// Ends the process: prints `message` to stderr and exits with `code`.
  [[noreturn]] void abort(int code, std::string_view message) {
    std::fprintf(stderr, "ldm: %.*s\n", int(message.size()), message.data());
    std::fflush(stderr);
    std::_Exit(code);
  }

 private:
  static void check_root(int root) {
    if (root != 0) fail_expected("broadcast root", "a rank of the world of 1 (0)", root);
  }
};

}  // namespace ldm::distributed
