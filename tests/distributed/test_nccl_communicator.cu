// NcclCommunicator on device buffers, under mpirun with one rank per GPU (CTest runs 1 rank, which
// takes the same send/receive, kernel and broadcast path as K ranks): sums equal to the
// sequential sum in rank order and identical on every rank, broadcasts, host values over MPI,
// errors as ldm::Error. Exits 77 (skipped) where there is no GPU.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <ldm/cuda.cuh>
#include <ldm/distributed/nccl.cuh>
#include <span>
#include <string>
#include <vector>

namespace {
using ldm::distributed::MpiCommunicator;
using ldm::distributed::NcclCommunicator;

NcclCommunicator* nccl = nullptr;

std::vector<float> rank_values(int rank, std::size_t n) {
  std::vector<float> values(n);
  for (std::size_t i = 0; i < n; ++i)
    values[i] = float(std::sin(double(i + 1) * (rank + 1.7))) * (rank % 2 ? 1e-3f : 1e3f);
  return values;
}

std::vector<float> on_host(const ldm::Buffer<float, ldm::cuda>& device) {
  return ldm::host_vector<ldm::cuda>(device.data(), device.size());
}

ldm::Buffer<float, ldm::cuda> on_device(const std::vector<float>& host) {
  ldm::Buffer<float, ldm::cuda> device(host.size());
  ldm::copy_elements<ldm::host, ldm::cuda>(host.data(), device.data(), host.size());
  return device;
}
}  // namespace

TEST_CASE("all_reduce_sum on the device is the sequential sum in rank order") {
  for (std::size_t n : {std::size_t(1), std::size_t(1001), std::size_t(1) << 20}) {
    auto values = on_device(rank_values(nccl->rank(), n));
    nccl->all_reduce_sum(std::span<float>(values.data(), n));
    std::vector<float> expected = rank_values(0, n);
    for (int r = 1; r < nccl->size(); ++r) {
      const std::vector<float> x = rank_values(r, n);
      for (std::size_t i = 0; i < n; ++i)
        expected[i] += x[i];
    }
    const std::vector<float> sums = on_host(values);
    CHECK(std::memcmp(sums.data(), expected.data(), n * sizeof(float)) == 0);
  }
}

TEST_CASE("broadcast on the device, host values over MPI, bad roots") {
  std::vector<float> mine(777, float(nccl->rank() + 5));
  auto weights = on_device(mine);
  nccl->broadcast(std::span<float>(weights.data(), mine.size()), 0);
  CHECK(on_host(weights) == std::vector<float>(777, 5.0f));
  std::vector<double> losses{1.0};
  nccl->all_reduce_sum(std::span<double>(losses));
  CHECK(losses[0] == double(nccl->size()));
  CHECK(nccl->all_reduce_max(nccl->rank()) == nccl->size() - 1);
  std::string text = nccl->rank() == 0 ? "from rank 0" : "";
  nccl->broadcast(text, 0);
  CHECK(text == "from rank 0");
  CHECK_THROWS_AS(nccl->broadcast(std::span<float>(weights.data(), 1), nccl->size()), ldm::Error);
  CHECK_THROWS_WITH_AS(ldm::distributed::detail::check_nccl(ncclInvalidArgument, "ncclAllReduce"),
                       doctest::Contains("NCCL call ncclAllReduce failed: "), ldm::Error);
  nccl->barrier();
}

int main(int argc, char** argv) {
  return ldm::distributed::run_with_mpi([&](ldm::distributed::MpiSession& session) {
    MpiCommunicator<ldm::host> mpi(session);
    if (!ldm::cuda_device::available()) return 77;
    ldm::distributed::use_device_of_local_rank(mpi);
    NcclCommunicator comm(mpi);
    nccl = &comm;
    doctest::Context context(argc, argv);
    const int failed = context.run();
    return int(mpi.all_reduce_max(failed != 0));
  });
}
