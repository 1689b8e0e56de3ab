#pragma once
/// @file
/// The MPI engine: `MpiSession` initialises and finalises MPI, `MpiCommunicator<Space>` is the
/// `Communicator` over a duplicate of MPI_COMM_WORLD. Link `ldm::mpi` (it defines LDM_WITH_MPI).
///
/// Sums: `SumOrder::rank_order` (the default) adds the ranks' buffers element by element in rank
/// order, x_0 + x_1 + ... + x_{K-1} left to right in the element type: each rank receives every
/// rank's copy of its own 1/K of the buffer (MPI_Alltoallv), adds them in that order, and every
/// rank gathers the sums (MPI_Allgatherv). The result is bit for bit the sequential sum, so it
/// does not depend on MPI's algorithms, and it is identical on every rank because each element is
/// added on one rank only and copied to the others. It moves what a ring all-reduce moves,
/// 2 (K - 1) / K of the buffer per rank, and needs one more buffer's worth of host memory.
/// `SumOrder::library` leaves the order to MPI (MPI_Reduce to rank 0, then MPI_Bcast of rank 0's
/// result: the MPI standard does not promise that MPI_Allreduce gives every rank the same bits,
/// the broadcast does).
///
/// Device buffers (`MpiCommunicator<ldm::cuda>`, in .cu units of a build without NCCL) are copied
/// to the host, reduced or broadcast there and copied back.

#include <mpi.h>

#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "ldm/core/copy.hpp"
#include "ldm/core/error.hpp"
#include "ldm/core/space.hpp"
#include "ldm/distributed/communicator.hpp"
#include "ldm/distributed/launcher.hpp"

namespace ldm::distributed {

namespace detail {

inline std::string mpi_error_text(int code) {
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS)
    return "MPI error " + std::to_string(code);
  return std::string(text, std::size_t(length));
}

// Every MPI call on ldm's communicator goes through here (the communicator returns errors
// instead of aborting: MPI_ERRORS_RETURN).
inline void check_mpi(int code, const char* call) {
  if (code != MPI_SUCCESS) fail("MPI call ", call, " failed: ", mpi_error_text(code));
}

inline int mpi_count(std::size_t count, const char* what) {
  if (count > std::size_t(INT_MAX)) fail_expected(what, "at most INT_MAX elements", count);
  return int(count);
}

template <class T>
MPI_Datatype mpi_type() {
  if constexpr (std::is_same_v<T, float>)
    return MPI_FLOAT;
  else if constexpr (std::is_same_v<T, double>)
    return MPI_DOUBLE;
  else if constexpr (std::is_same_v<T, std::int64_t>)
    return MPI_INT64_T;
  else
    static_assert(sizeof(T) == 0, "mpi_type: float, double or std::int64_t");
}

}  // namespace detail

/// MPI for the life of the object: initialises MPI with MPI_THREAD_FUNNELED (only the thread that
/// made the session calls MPI; `data::BackgroundLoader`'s thread never does) and finalises it.
/// Make one, first thing in main, before any communicator.
///
/// A session destroyed by an exception (thrown while it lived and not caught inside) calls
/// MPI_Abort instead of MPI_Finalize: finalising while other ranks wait in a collective would
/// hang them all. The exception's message is lost that way; `run_with_mpi` prints it first. A
/// program that catches its errors itself should end with `Communicator::abort` for the same
/// reason.
class MpiSession {
 public:
  /// Initialises MPI (unless something else already has; then this session will not finalise).
  /// @throws ldm::Error when the MPI library offers less than MPI_THREAD_FUNNELED
  MpiSession() : exceptions_at_start_(std::uncaught_exceptions()) {
    int initialised = 0;
    detail::check_mpi(MPI_Initialized(&initialised), "MPI_Initialized");
    if (!initialised) {
      detail::check_mpi(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &thread_level_),
                        "MPI_Init_thread");
      owns_ = true;
    } else {
      detail::check_mpi(MPI_Query_thread(&thread_level_), "MPI_Query_thread");
    }
    if (thread_level_ < MPI_THREAD_FUNNELED)
      fail_expected("MPI thread support", "MPI_THREAD_FUNNELED or more",
                    "level " + std::to_string(thread_level_));
  }
  /// Finalises MPI, or aborts every rank when an exception is unwinding past the session.
  ~MpiSession() {
    if (!owns_) return;
    int finalised = 0;
    MPI_Finalized(&finalised);
    if (finalised) return;
    if (std::uncaught_exceptions() > exceptions_at_start_) {
      std::fputs("ldm: an exception ended this rank; aborting the MPI job\n", stderr);
      std::fflush(stderr);
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    MPI_Finalize();
  }
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  /// The thread support MPI provides (MPI_THREAD_FUNNELED or more).
  int thread_level() const { return thread_level_; }

 private:
  int exceptions_at_start_ = 0;
  int thread_level_ = MPI_THREAD_SINGLE;
  bool owns_ = false;
};

/// Runs `body(session)` in an MpiSession and returns its exit status; an exception from it ends
/// every rank of the job, not this one alone: its message is printed as "ldm: rank R of K:
/// message" and MPI_Abort ends the job with status 1. The main() of an MPI program:
/// `return ldm::distributed::run_with_mpi([&](MpiSession& session) { ...; return 0; });`
/// @param body a callable taking `MpiSession&` and returning the exit status (int)
/// @throws ldm::Error when MPI cannot be initialised (before `body` runs)
template <class Body>
int run_with_mpi(Body body) {
  MpiSession session;
  try {
    return body(session);
  } catch (const std::exception& e) {
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    std::fprintf(stderr, "ldm: rank %d of %d: %s\n", rank, size, e.what());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
    return 1;
  }
}

/// Who adds the ranks' buffers, and in what order (see the file's notes).
enum class SumOrder {
  rank_order,  ///< x_0 + x_1 + ... in rank order, bit for bit the sequential sum (the default)
  library,     ///< MPI's order: MPI_Reduce to rank 0, then MPI_Bcast
};

/// The `Communicator` over MPI: every process of MPI_COMM_WORLD, through a duplicate of it (so
/// ldm's messages never meet the program's own) whose errors come back as ldm::Error with MPI's
/// message instead of aborting.
/// @tparam Space where the float buffers live; ldm::cuda buffers go through host copies
template <class Space = host>
class MpiCommunicator {
 public:
  static_assert(is_space_v<Space>, "MpiCommunicator: Space must be ldm::host or ldm::cuda");
  /// Where the float buffers live.
  using buffer_space = Space;

  /// Duplicates MPI_COMM_WORLD. Collective: every rank constructs its communicator together.
  /// @param session the MPI session, which must outlive the communicator
  /// @param order how sums are added
  /// @throws ldm::Error when MPI fails, or when the launcher started more processes than MPI
  /// sees (`launched_world_size()`)
  explicit MpiCommunicator(const MpiSession& session, SumOrder order = SumOrder::rank_order)
      : order_(order) {
    (void)session;
    detail::check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "MPI_Comm_dup");
    detail::check_mpi(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    detail::check_mpi(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
    detail::check_mpi(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
    // An MPI library that did not reach its launcher runs every process as a world of one, each
    // training alone and writing the same checkpoints: refuse that rather than run it.
    if (const std::optional<int> launched = launched_world_size(); launched && *launched != size_) {
      MPI_Comm_free(&comm_);
      fail("MPI world size: the launcher started ", *launched, " processes but MPI sees ", size_,
           " (this MPI library did not connect to the launcher: use the mpirun of the MPI the "
           "program was built with, or srun's matching --mpi plugin, e.g. --mpi=pmix for "
           "OpenMPI)");
    }
  }
  /// Frees the duplicate (unless MPI has already been finalised).
  ~MpiCommunicator() {
    int finalised = 0;
    MPI_Finalized(&finalised);
    if (!finalised && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
  }
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  /// This process's rank, in [0, size()).
  int rank() const { return rank_; }
  /// The number of processes.
  int size() const { return size_; }
  /// The MPI communicator, for calls this class does not make (errors return, see above).
  MPI_Comm handle() const { return comm_; }

  /// Replaces `values` (in Space) by their element-wise sum over the ranks, identical on every
  /// rank. Collective.
  /// @throws ldm::Error when MPI fails, or a rank's share exceeds INT_MAX elements
  void all_reduce_sum(std::span<float> values) {
    on_host(values, [&](std::span<float> host_values) { sum(host_values); });
  }
  /// Replaces the host `values` by their element-wise sum over the ranks, identical on every
  /// rank. Collective.
  /// @throws ldm::Error when MPI fails
  void all_reduce_sum(std::span<double> values) { sum(values); }
  /// The largest `value` of any rank (e.g. the step at which every rank stops). Collective.
  /// @throws ldm::Error when MPI fails
  std::int64_t all_reduce_max(std::int64_t value) {
    std::int64_t result = 0;
    detail::check_mpi(MPI_Allreduce(&value, &result, 1, MPI_INT64_T, MPI_MAX, comm_),
                      "MPI_Allreduce(max)");
    return result;
  }
  /// Replaces `values` (in Space) by rank `root`'s. Collective.
  /// @throws ldm::Error when `root` is not a rank, or MPI fails
  void broadcast(std::span<float> values, int root) {
    check_root(root);
    on_host(values, [&](std::span<float> host_values) {
      detail::check_mpi(
          MPI_Bcast(host_values.data(), detail::mpi_count(host_values.size(), "broadcast length"),
                    MPI_FLOAT, root, comm_),
          "MPI_Bcast");
    });
  }
  /// Replaces `text` by rank `root`'s (of any length). Collective.
  /// @throws ldm::Error when `root` is not a rank, or MPI fails
  void broadcast(std::string& text, int root) {
    check_root(root);
    std::int64_t length = std::int64_t(text.size());
    detail::check_mpi(MPI_Bcast(&length, 1, MPI_INT64_T, root, comm_), "MPI_Bcast(length)");
    text.resize(std::size_t(length));
    detail::check_mpi(MPI_Bcast(text.data(), detail::mpi_count(text.size(), "broadcast text"),
                                MPI_CHAR, root, comm_),
                      "MPI_Bcast(text)");
  }
  /// Returns when every rank has called it.
  /// @throws ldm::Error when MPI fails
  void barrier() { detail::check_mpi(MPI_Barrier(comm_), "MPI_Barrier"); }
  /// Ends every rank of the job: prints "ldm: rank R of K: message" to stderr and calls
  /// MPI_Abort with `code` (mpirun then ends the other ranks and exits non-zero).
  [[noreturn]] void abort(int code, std::string_view message) {
    std::fprintf(stderr, "ldm: rank %d of %d: %.*s\n", rank_, size_, int(message.size()),
                 message.data());
    std::fflush(stderr);
    MPI_Abort(comm_, code);
    std::_Exit(code);  // MPI_Abort does not return; this keeps [[noreturn]] true if it did
  }

 private:
  void check_root(int root) const {
    if (root < 0 || root >= size_)
      fail_expected("broadcast root", "a rank in [0, " + std::to_string(size_) + ")", root);
  }

  // Runs `work` on a host copy of a device buffer (and copies the result back), or on the buffer
  // itself when it is on the host.
  template <class Work>
  void on_host(std::span<float> values, Work work) {
    if constexpr (std::is_same_v<Space, host>) {
      work(values);
    } else {
      std::vector<float> staging = host_vector<Space>(values.data(), values.size());
      work(std::span<float>(staging));
      copy_elements<host, Space>(staging.data(), values.data(), values.size());
    }
  }

  template <class T>
  void sum(std::span<T> values) {
    if (size_ == 1 || values.empty()) return;
    if (order_ == SumOrder::library) {
      const int count = detail::mpi_count(values.size(), "all_reduce_sum length");
      detail::check_mpi(MPI_Reduce(rank_ == 0 ? MPI_IN_PLACE : values.data(), values.data(), count,
                                   detail::mpi_type<T>(), MPI_SUM, 0, comm_),
                        "MPI_Reduce(sum)");
      detail::check_mpi(MPI_Bcast(values.data(), count, detail::mpi_type<T>(), 0, comm_),
                        "MPI_Bcast(sum)");
      return;
    }
    sum_in_rank_order(values);
  }

  // Rank r owns elements [n r / K, n (r + 1) / K): it receives every rank's copy of them, adds
  // them in rank order and hands the sums to every rank.
  template <class T>
  void sum_in_rank_order(std::span<T> values) {
    const std::size_t n = values.size();
    const auto ranks = static_cast<std::size_t>(size_);
    std::vector<int> counts(ranks), offsets(ranks);
    for (int r = 0; r < size_; ++r) {
      const std::size_t begin = n * std::size_t(r) / std::size_t(size_);
      const std::size_t end = n * std::size_t(r + 1) / std::size_t(size_);
      offsets[std::size_t(r)] = detail::mpi_count(begin, "all_reduce_sum length");
      counts[std::size_t(r)] = detail::mpi_count(end - begin, "all_reduce_sum share");
    }
    const int mine = counts[std::size_t(rank_)];
    std::vector<T>& copies = scratch<T>();
    // Kept between calls: a fresh buffer of the gradient's size would be paged in on every step.
    copies.resize(static_cast<std::size_t>(mine) * ranks);
    std::vector<int> copy_counts(ranks, mine), copy_offsets(ranks);
    for (int r = 0; r < size_; ++r)
      copy_offsets[std::size_t(r)] =
          detail::mpi_count(std::size_t(r) * std::size_t(mine), "all_reduce_sum length");
    const MPI_Datatype type = detail::mpi_type<T>();
    detail::check_mpi(
        MPI_Alltoallv(values.data(), counts.data(), offsets.data(), type, copies.data(),
                      copy_counts.data(), copy_offsets.data(), type, comm_),
        "MPI_Alltoallv(sum)");
    T* own = values.data() + offsets[std::size_t(rank_)];
    for (std::size_t i = 0; i < std::size_t(mine); ++i) {
      T total = copies[i];
      for (std::size_t r = 1; r < ranks; ++r)
        total += copies[r * std::size_t(mine) + i];
      own[i] = total;
    }
    detail::check_mpi(MPI_Allgatherv(MPI_IN_PLACE, 0, type, values.data(), counts.data(),
                                     offsets.data(), type, comm_),
                      "MPI_Allgatherv(sum)");
  }

  template <class T>
  std::vector<T>& scratch() {
    if constexpr (std::is_same_v<T, float>)
      return float_copies_;
    else
      return double_copies_;
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  std::vector<float> float_copies_;
  std::vector<double> double_copies_;
  SumOrder order_ = SumOrder::rank_order;
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace ldm::distributed
