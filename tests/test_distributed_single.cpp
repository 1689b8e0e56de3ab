// SingleProcess: the world of one, so that code written for a Communicator runs undistributed.
#include <doctest/doctest.h>

#include <cstdint>
#include <ldm/distributed/communicator.hpp>
#include <span>
#include <string>
#include <vector>

namespace {
using ldm::distributed::Communicator;
using ldm::distributed::SingleProcess;

static_assert(Communicator<SingleProcess<>, ldm::host>);
static_assert(Communicator<SingleProcess<ldm::cuda>, ldm::cuda>);
static_assert(!Communicator<SingleProcess<ldm::cuda>, ldm::host>);

// What a trainer does with its communicator, written once over it.
template <class C>
requires Communicator<C, ldm::host>
float summed_gradient_and_agreed_stop(C& comm, std::vector<float>& gradients, std::int64_t& stop) {
  comm.all_reduce_sum(std::span<float>(gradients));
  stop = comm.all_reduce_max(stop);
  comm.barrier();
  return gradients[0];
}
}  // namespace

TEST_CASE("SingleProcess is rank 0 of 1 and leaves every buffer as it is") {
  SingleProcess<> comm;
  CHECK(comm.rank() == 0);
  CHECK(comm.size() == 1);
  std::vector<float> gradients{1.5f, -2.0f};
  std::int64_t stop = 42;
  CHECK(summed_gradient_and_agreed_stop(comm, gradients, stop) == 1.5f);
  CHECK(gradients == std::vector<float>{1.5f, -2.0f});
  CHECK(stop == 42);
  std::vector<double> losses{0.5};
  comm.all_reduce_sum(std::span<double>(losses));
  CHECK(losses[0] == 0.5);
  std::string text = "config";
  comm.broadcast(text, 0);
  CHECK(text == "config");
  comm.broadcast(std::span<float>(gradients), 0);
  CHECK(gradients[1] == -2.0f);
}

TEST_CASE("SingleProcess refuses a root other than 0") {
  SingleProcess<> comm;
  std::vector<float> values(3);
  std::string text;
  CHECK_THROWS_WITH_AS(comm.broadcast(std::span<float>(values), 1),
                       "broadcast root: expected a rank of the world of 1 (0), found 1",
                       ldm::Error);
  CHECK_THROWS_AS(comm.broadcast(text, -1), ldm::Error);
}
