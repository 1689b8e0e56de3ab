// One rank fails while the other waits in a collective; run by mpirun through
// expect_job_ends.cmake, which checks that the whole job ends, non-zero and quickly.
//   mpi_failures kill   rank 1 kills itself with SIGKILL; rank 0 waits in all_reduce_sum
//   mpi_failures abort  rank 1 calls abort(3, ...); rank 0 waits in barrier
//   mpi_failures throw  rank 1 throws past its MpiSession; rank 0 waits in barrier
//   mpi_failures error  rank 1 throws inside run_with_mpi; rank 0 waits in barrier
#include <csignal>
#include <cstdio>
#include <ldm/distributed/mpi.hpp>
#include <span>
#include <string_view>
#include <vector>

namespace {
using ldm::distributed::MpiCommunicator;
using ldm::distributed::MpiSession;

int run(MpiSession& session, std::string_view mode) {
  MpiCommunicator<> comm(session);
  comm.barrier();  // both ranks are up before one fails
  if (comm.rank() == 1) {
    if (mode == "kill") std::raise(SIGKILL);
    if (mode == "abort") comm.abort(3, "rank 1 was told to stop");
    if (mode == "throw" || mode == "error") ldm::fail("rank 1 failed on purpose");
  }
  std::vector<float> gradients(1 << 20, 1.0f);
  if (mode == "kill")
    comm.all_reduce_sum(std::span<float>(gradients));
  else
    comm.barrier();
  std::puts("rank 0: the collective returned although rank 1 is gone");
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fputs("usage: mpi_failures kill|abort|throw|error\n", stderr);
    return 2;
  }
  const std::string_view mode = argv[1];
  auto body = [&](MpiSession& session) { return run(session, mode); };
  if (mode != "throw") return ldm::distributed::run_with_mpi(body);
  try {
    MpiSession session;
    return body(session);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "caught outside the session: %s\n", e.what());
    return 1;
  }
}
