// MpiCommunicator on 2 ranks (run by mpirun, see CMakeLists.txt): sums identical on every rank and
// equal to the sequential sum in rank order, broadcasts, the maximum, and errors as ldm::Error.
// Both ranks run every test case in the same order, so their collectives meet.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdint>
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

// Values whose float sums depend on the order they are added in: 1, 1e-8 and -1 scaled by rank.
std::vector<float> rank_values(int rank, std::size_t n) {
  std::vector<float> values(n);
  for (std::size_t i = 0; i < n; ++i)
    values[i] = (rank == 0 ? 1.0f : 1e-8f) * float(i % 7 + 1) + float(rank) * 0.1f * float(i % 3);
  return values;
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

TEST_CASE("the world is two ranks") {
  MpiCommunicator<> comm(*session);
  CHECK(comm.size() == 2);
  CHECK(comm.rank() >= 0);
  CHECK(comm.rank() < 2);
  CHECK(ldm::distributed::launched_by_mpi());
  CHECK(session->thread_level() >= MPI_THREAD_FUNNELED);
}

TEST_CASE("all_reduce_sum in rank order is the sequential sum, the same bits on every rank") {
  for (SumOrder order : {SumOrder::rank_order, SumOrder::library}) {
    MpiCommunicator<> comm(*session, order);
    // Lengths that split evenly, unevenly, and shorter than the world.
    for (std::size_t n : {std::size_t(1), std::size_t(2), std::size_t(1001), std::size_t(4096)}) {
      std::vector<float> values = rank_values(comm.rank(), n);
      comm.all_reduce_sum(std::span<float>(values));
      const std::vector<float> r0 = rank_values(0, n), r1 = rank_values(1, n);
      std::vector<float> expected(n);
      for (std::size_t i = 0; i < n; ++i)
        expected[i] = r0[i] + r1[i];
      if (order == SumOrder::rank_order) CHECK(same_bits(values.data(), expected.data(), n));
      for (std::size_t i = 0; i < n; ++i)
        CHECK(values[i] == doctest::Approx(expected[i]));
      const std::vector<float> all = gathered(comm, values);
      CHECK(same_bits(all.data(), all.data() + n, n));
    }
  }
}

TEST_CASE("all_reduce_sum of doubles, all_reduce_max") {
  MpiCommunicator<> comm(*session);
  std::vector<double> losses{0.25 * (comm.rank() + 1), 1.0, -3.0 * comm.rank()};
  comm.all_reduce_sum(std::span<double>(losses));
  CHECK(losses == std::vector<double>{0.75, 2.0, -3.0});
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
  CHECK_THROWS_WITH_AS(comm.broadcast(std::span<float>(values), 2),
                       "broadcast root: expected a rank in [0, 2), found 2", ldm::Error);
  CHECK_THROWS_AS(comm.broadcast(text, -1), ldm::Error);
  // The communicator returns MPI's errors instead of aborting, and they read as MPI's message.
  const int code = MPI_Bcast(values.data(), 4, MPI_FLOAT, 5, comm.handle());
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
