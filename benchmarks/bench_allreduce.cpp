// All-reduce bandwidth of MpiCommunicator on host float buffers the size of the tiny
// configuration's UNet (its parameter count: the flat gradient buffer) and 10x and 100x that:
// ldm's rank-order sum, MPI's order (MPI_Reduce + MPI_Bcast) and plain MPI_Allreduce beside them.
//   mpirun --oversubscribe -np 2 ./build/host/benchmarks/bench_allreduce
// Not a Google Benchmark program: its iteration counts differ between processes, and a rank
// that stops early would leave the others waiting in a collective.
#include <cstdio>
#include <ldm/distributed/mpi.hpp>
#include <ldm/ldm.hpp>
#include <vector>

#include "allreduce_report.hpp"
#include "benchmark_main.hpp"

namespace {
int measure(ldm::distributed::MpiSession& session) {
  using ldm::distributed::MpiCommunicator;
  using ldm::distributed::SumOrder;
  MpiCommunicator<> rank_order(session, SumOrder::rank_order);
  MpiCommunicator<> library(session, SumOrder::library);
  const int ranks = rank_order.size();
  constexpr std::size_t unet = ldm::LatentDiffusion<ldm::configs::Tiny>::UNet::parameter_count;
  if (rank_order.rank() == 0) bench::print_header(ranks);
  for (std::size_t floats : {unet, 10 * unet, 100 * unet}) {
    std::vector<float> gradients(floats, 1.0f / float(rank_order.rank() + 1));
    const std::span<float> buffer(gradients);
    auto nothing = [] {};
    const double ordered = bench::seconds_per_call(
        rank_order, floats, [&] { rank_order.all_reduce_sum(buffer); }, nothing);
    const double reduce_bcast = bench::seconds_per_call(
        library, floats, [&] { library.all_reduce_sum(buffer); }, nothing);
    const double allreduce = bench::seconds_per_call(
        library, floats,
        [&] {
          MPI_Allreduce(MPI_IN_PLACE, gradients.data(), int(floats), MPI_FLOAT, MPI_SUM,
                        library.handle());
        },
        nothing);
    if (rank_order.rank() == 0) {
      bench::print_row(floats, "rank order (ldm default)", ordered, ranks);
      bench::print_row(floats, "MPI_Reduce + MPI_Bcast", reduce_bcast, ranks);
      bench::print_row(floats, "MPI_Allreduce (reference)", allreduce, ranks);
    }
  }
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  if (bench::version_asked(argc, argv)) return 0;
  return ldm::distributed::run_with_mpi(measure);
}
