// SingleProcess: the world of one, so that code written for a Communicator runs undistributed.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstdlib>
#include <ldm/distributed/communicator.hpp>
#include <ldm/distributed/launcher.hpp>
#include <optional>
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

namespace {
// Sets (or, with nullptr, removes) environment variables for one scope, then restores them.
class ScopedEnvironment {
 public:
  ScopedEnvironment(std::initializer_list<std::pair<const char*, const char*>> settings) {
    for (const auto& [name, value] : settings) {
      const char* old = std::getenv(name);
      saved_.push_back({name, old ? std::optional<std::string>(old) : std::nullopt});
      value ? setenv(name, value, 1) : unsetenv(name);
    }
  }
  ~ScopedEnvironment() {
    for (const auto& [name, value] : saved_)
      value ? setenv(name, value->c_str(), 1) : unsetenv(name);
  }

 private:
  std::vector<std::pair<const char*, std::optional<std::string>>> saved_;
};
}  // namespace

TEST_CASE("launched_by_mpi and launched_world_size read the launchers' variables") {
  using ldm::distributed::launched_by_mpi;
  using ldm::distributed::launched_world_size;
  {
    ScopedEnvironment none{
        {"OMPI_COMM_WORLD_SIZE", nullptr}, {"PMIX_RANK", nullptr}, {"PMI_SIZE", nullptr}};
    CHECK_FALSE(launched_by_mpi());
    CHECK(launched_world_size() == std::nullopt);
    {
      ScopedEnvironment pmix{{"PMIX_RANK", "3"}};
      CHECK(launched_by_mpi());
      CHECK(launched_world_size() == std::nullopt);
    }
    {
      ScopedEnvironment pmi{{"PMI_SIZE", "4"}};
      CHECK(launched_by_mpi());
      CHECK(launched_world_size() == 4);
    }
    {
      ScopedEnvironment both{{"PMI_SIZE", "4"}, {"OMPI_COMM_WORLD_SIZE", "2"}};
      CHECK(launched_world_size() == 2);
    }
    for (const char* bad : {"", "two", "0", "-1", "2x"}) {
      ScopedEnvironment broken{{"OMPI_COMM_WORLD_SIZE", bad}};
      CHECK_THROWS_WITH_AS(launched_world_size(),
                           (std::string("environment variable OMPI_COMM_WORLD_SIZE: expected a "
                                        "positive number of processes, found '") +
                            bad + "'")
                               .c_str(),
                           ldm::Error);
    }
  }
}
