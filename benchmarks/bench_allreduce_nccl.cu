// All-reduce bandwidth of NcclCommunicator on device float buffers (the tiny configuration's UNet
// parameter count, 10x and 100x that), one rank per GPU, with ncclAllReduce beside it and
// MpiCommunicator<ldm::cuda> (host copies, what a build without NCCL does):
//   mpirun -np <GPUs> ./build/cuda/benchmarks/bench_allreduce_nccl
#include <nccl.h>

#include <cstdio>
#include <ldm/cuda.cuh>
#include <ldm/distributed/nccl.cuh>
#include <ldm/ldm.hpp>

#include "allreduce_report.hpp"
#include "benchmark_main.hpp"

namespace {
int measure(ldm::distributed::MpiSession& session) {
  using namespace ldm::distributed;
  MpiCommunicator<ldm::host> world(session);
  if (!ldm::cuda_device::available()) {
    if (world.rank() == 0) std::puts("bench_allreduce_nccl: no GPU; nothing measured");
    return 0;
  }
  use_device_of_local_rank(world);
  NcclCommunicator comm(world);
  MpiCommunicator<ldm::cuda> staged(session);
  const int ranks = comm.size();
  constexpr std::size_t unet =
      ldm::LatentDiffusion<ldm::configs::Tiny, ldm::cuda>::UNet::parameter_count;
  if (comm.rank() == 0) bench::print_header(ranks);
  for (std::size_t floats : {unet, 10 * unet, 100 * unet}) {
    ldm::Buffer<float, ldm::cuda> gradients(floats);
    const std::span<float> buffer(gradients.data(), floats);
    auto wait = [] { ldm::cuda_device::synchronize(); };
    const double ordered = bench::seconds_per_call(
        comm, floats, [&] { comm.all_reduce_sum(buffer); }, wait);
    const double library = bench::seconds_per_call(
        comm, floats,
        [&] {
          detail::check_nccl(ncclAllReduce(buffer.data(), buffer.data(), floats, ncclFloat, ncclSum,
                                           comm.handle(), ldm::cuda_device::stream()),
                             "ncclAllReduce");
        },
        wait);
    const double through_host = bench::seconds_per_call(
        staged, floats, [&] { staged.all_reduce_sum(buffer); }, wait);
    if (comm.rank() == 0) {
      bench::print_row(floats, "rank order (ldm default)", ordered, ranks);
      bench::print_row(floats, "ncclAllReduce (reference)", library, ranks);
      bench::print_row(floats, "MPI through host copies", through_host, ranks);
    }
  }
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  if (bench::version_asked(argc, argv)) return 0;
  return ldm::distributed::run_with_mpi(measure);
}
