// MpiCommunicator on 2 and 3 ranks (run by mpirun, see CMakeLists.txt): sums identical on every
// rank and equal to the sequential sum in rank order, broadcasts, the maximum, and errors as
// ldm::Error.
// Both ranks run every test case in the same order, so their collectives meet.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ldm/distributed/mpi.hpp>
#include <span>
#include <string>
#include <vector>

namespace {
using ldm::distributed::MpiCommunicator;
using ldm::distributed::MpiSession;
using ldm::distributed::SumOrder;

MpiSession* session = nullptr;

// Values whose float sums depend on the order they are added in (over 3 ranks or more).
std::vector<float> rank_values(int rank, std::size_t n) {
  std::vector<float> values(n);
  for (std::size_t i = 0; i < n; ++i)
    values[i] = float(std::sin(double(i + 1) * (rank + 1.7))) * (rank % 2 ? 1e-3f : 1e3f);
  return values;
}

// x_0 + x_1 + ... in rank order (reversed: ... + x_1 + x_0) over `ranks` ranks, as one process
// adds them.
std::vector<float> sequential_sum(int ranks, std::size_t n, bool reversed = false) {
  std::vector<float> total(n, 0.0f);
  for (int k = 0; k < ranks; ++k) {
    const std::vector<float> x = rank_values(reversed ? ranks - 1 - k : k, n);
    for (std::size_t i = 0; i < n; ++i)
      total[i] = k == 0 ? x[i] : total[i] + x[i];
  }
  return total;
}

// Every rank's copy of a buffer, gathered to compare bits across ranks.
template <class T>
std::vector<T> gathered(const MpiCommunicator<>& comm, const std::vector<T>& values) {
  std::vector<T> all(values.size() * std::size_t(comm.size()));
  MPI_Allgather(values.data(), int(values.size() * sizeof(T)), MPI_BYTE, all.data(),
                int(values.size() * sizeof(T)), MPI_BYTE, comm.handle());
  return all;
}

template <class T>
bool same_bits(const T* a, const T* b, std::size_t n) {
  return std::memcmp(a, b, n * sizeof(T)) == 0;
}
}  // namespace

TEST_CASE("the world is the ranks mpirun started") {
  MpiCommunicator<> comm(*session);
  CHECK(comm.size() == std::atoi(std::getenv("OMPI_COMM_WORLD_SIZE")));
  CHECK(comm.rank() >= 0);
  CHECK(comm.rank() < comm.size());
  CHECK(ldm::distributed::launched_by_mpi());
  CHECK(ldm::distributed::launched_world_size() == comm.size());
  CHECK(session->thread_level() >= MPI_THREAD_FUNNELED);
}

TEST_CASE("all_reduce_sum in rank order is the sequential sum, the same bits on every rank") {
  for (SumOrder order : {SumOrder::rank_order, SumOrder::library}) {
    MpiCommunicator<> comm(*session, order);
    // Lengths that split evenly, unevenly, and shorter than the world.
    for (std::size_t n : {std::size_t(1), std::size_t(2), std::size_t(1001), std::size_t(4096)}) {
      std::vector<float> values = rank_values(comm.rank(), n);
      comm.all_reduce_sum(std::span<float>(values));
      const std::vector<float> expected = sequential_sum(comm.size(), n);
      if (order == SumOrder::rank_order) CHECK(same_bits(values.data(), expected.data(), n));
      for (std::size_t i = 0; i < n; ++i)
        CHECK(values[i] == doctest::Approx(expected[i]).epsilon(1e-5));
      const std::vector<float> all = gathered(comm, values);
      for (int r = 1; r < comm.size(); ++r)
        CHECK(same_bits(all.data(), all.data() + std::size_t(r) * n, n));
    }
  }
}

TEST_CASE("over 3 ranks the test data tells rank order from another order") {
  MpiCommunicator<> comm(*session);
  if (comm.size() < 3) return;
  const std::vector<float> forward = sequential_sum(comm.size(), 4096);
  const std::vector<float> backward = sequential_sum(comm.size(), 4096, true);
  CHECK_FALSE(same_bits(forward.data(), backward.data(), 4096));
}

TEST_CASE("all_reduce_sum of doubles, all_reduce_max") {
  MpiCommunicator<> comm(*session);
  const double k = comm.size();
  std::vector<double> losses{0.25 * (comm.rank() + 1), 1.0, -3.0 * comm.rank()};
  comm.all_reduce_sum(std::span<double>(losses));
  CHECK(losses == std::vector<double>{0.125 * k * (k + 1), k, -1.5 * k * (k - 1)});
  CHECK(comm.all_reduce_max(comm.rank() == 1 ? std::int64_t(1) << 40 : 7) == std::int64_t(1) << 40);
  CHECK(comm.all_reduce_max(-5 - comm.rank()) == -5);
}

TEST_CASE("broadcast of floats and of text from either root") {
  MpiCommunicator<> comm(*session);
  for (int root : {0, 1}) {
    std::vector<float> weights(513, float(comm.rank() + 10));
    comm.broadcast(std::span<float>(weights), root);
    CHECK(weights == std::vector<float>(513, float(root + 10)));
    std::string text = comm.rank() == root ? std::string(100000, 'x') + "end" : "other";
    comm.broadcast(text, root);
    CHECK(text.size() == 100003);
    CHECK(text.substr(99998) == "xxend");
  }
  comm.barrier();
}

TEST_CASE("bad roots and MPI's own errors are ldm::Error") {
  MpiCommunicator<> comm(*session);
  std::vector<float> values(4);
  std::string text;
  const std::string range = "[0, " + std::to_string(comm.size()) + ")";
  CHECK_THROWS_WITH_AS(
      comm.broadcast(std::span<float>(values), comm.size()),
      ("broadcast root: expected a rank in " + range + ", found " + std::to_string(comm.size()))
          .c_str(),
      ldm::Error);
  CHECK_THROWS_AS(comm.broadcast(text, -1), ldm::Error);
  // The communicator returns MPI's errors instead of aborting, and they read as MPI's message.
  const int code = MPI_Bcast(values.data(), 4, MPI_FLOAT, comm.size() + 3, comm.handle());
  CHECK(code != MPI_SUCCESS);
  CHECK_THROWS_WITH_AS(ldm::distributed::detail::check_mpi(code, "MPI_Bcast"),
                       doctest::Contains("MPI call MPI_Bcast failed: MPI_ERR_ROOT"), ldm::Error);
  comm.barrier();  // both ranks are still in the job
}

int main(int argc, char** argv) {
  MpiSession mpi;
  session = &mpi;
  doctest::Context context(argc, argv);
  const int failed = context.run();
  // One rank's result decides nothing alone: every rank reports failure when any failed.
  MpiCommunicator<> comm(mpi);
  return int(comm.all_reduce_max(failed != 0));
}
