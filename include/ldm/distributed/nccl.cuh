#pragma once
// The NCCL engine, for .cu units linking ldm::nccl: NcclCommunicator is the Communicator for
// device float buffers (ldm::cuda), one process per GPU, bootstrapped over MPI (rank 0 makes the
// ncclUniqueId and MPI_Bcast hands it to the others). The float collectives are queued on ldm's
// stream (cuda_device::stream()), so they are ordered after the kernels that wrote the gradients
// and before those that read the sums, and return without waiting; host values (the double sums,
// the maximum, text) and the barrier go over the MPI communicator it was made from.
//
// Sums are in rank order, as MpiCommunicator's: each rank receives every rank's copy of its 1/K
// of the buffer (grouped ncclSend/ncclRecv), adds them in rank order in one kernel, and every
// rank broadcasts its share to the others (grouped ncclBroadcast). The result is the sequential
// sum x_0 + x_1 + ... in float, identical on every rank, whatever NCCL's algorithms; it moves what
// a ring all-reduce moves, 2 (K - 1) / K of the buffer per rank.

#include <nccl.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ldm/core/buffer.hpp"
#include "ldm/core/cuda/check.cuh"
#include "ldm/core/cuda/device.cuh"
#include "ldm/core/cuda/memory.cuh"
#include "ldm/core/error.hpp"
#include "ldm/distributed/mpi.hpp"

namespace ldm::distributed {

namespace detail {

inline void check_nccl(ncclResult_t status, const char* call) {
  if (status != ncclSuccess) fail("NCCL call ", call, " failed: ", ncclGetErrorString(status));
}

// out[i] = copies[0 * share + i] + copies[1 * share + i] + ... in rank order (a template, so
// that every unit including this header may instantiate it).
template <class T>
__global__ void sum_copies_in_rank_order(const T* copies, std::size_t share, int ranks, T* out) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < share;
       i += std::size_t(gridDim.x) * blockDim.x) {
    T total = copies[i];
    for (int r = 1; r < ranks; ++r)
      total = __fadd_rn(total, copies[std::size_t(r) * share + i]);
    out[i] = total;
  }
}

}  // namespace detail

// Selects the GPU of this process before any CUDA work: the rank among the processes on its node
// (MPI_COMM_TYPE_SHARED), modulo the GPUs it sees. Call it before the first ldm CUDA call, since
// ldm's stream is made on the device current at that call.
inline int use_device_of_local_rank(const MpiCommunicator<host>& world) {
  MPI_Comm node = MPI_COMM_NULL;
  detail::check_mpi(
      MPI_Comm_split_type(world.handle(), MPI_COMM_TYPE_SHARED, world.rank(), MPI_INFO_NULL, &node),
      "MPI_Comm_split_type");
  int local_rank = 0;
  const int status = MPI_Comm_rank(node, &local_rank);
  MPI_Comm_free(&node);
  detail::check_mpi(status, "MPI_Comm_rank(node)");
  const int devices = cuda_device::count();
  if (devices == 0) fail("use_device_of_local_rank: no CUDA device is visible to this process");
  LDM_CUDA_CHECK(cudaSetDevice(local_rank % devices));
  return local_rank % devices;
}

// The Communicator for device buffers over NCCL (see the file's notes).
class NcclCommunicator {
 public:
  using buffer_space = ldm::cuda;

  // Makes the NCCL communicator of every rank of `world` on the current device. Collective.
  // `world` must outlive this object. Throws ldm::Error when MPI or NCCL fails.
  explicit NcclCommunicator(MpiCommunicator<host>& world) : world_(world) {
    ncclUniqueId id{};
    if (world_.rank() == 0) detail::check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
    detail::check_mpi(MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, world_.handle()),
                      "MPI_Bcast(ncclUniqueId)");
    detail::check_nccl(ncclCommInitRank(&comm_, world_.size(), id, world_.rank()),
                       "ncclCommInitRank");
  }
  ~NcclCommunicator() {
    if (comm_) ncclCommDestroy(comm_);
  }
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const { return world_.rank(); }
  int size() const { return world_.size(); }
  ncclComm_t handle() const { return comm_; }

  // Replaces the device `values` by their element-wise sum over the ranks, in rank order,
  // identical on every rank; queued on ldm's stream. Collective.
  void all_reduce_sum(std::span<float> values) {
    // One rank takes the same path (a copy to itself and the kernel), so that a single GPU runs
    // every call a cluster makes.
    const int ranks = size();
    if (values.empty()) return;
    const std::size_t n = values.size();
    auto begin = [&](int r) { return n * std::size_t(r) / std::size_t(ranks); };
    const std::size_t share = begin(rank() + 1) - begin(rank());
    if (copies_.size() < share * std::size_t(ranks))
      copies_ = Buffer<float, ldm::cuda>(share * std::size_t(ranks));
    const cudaStream_t stream = cuda_device::stream();
    detail::check_nccl(ncclGroupStart(), "ncclGroupStart");
    for (int r = 0; r < ranks; ++r) {
      detail::check_nccl(
          ncclSend(values.data() + begin(r), begin(r + 1) - begin(r), ncclFloat, r, comm_, stream),
          "ncclSend");
      detail::check_nccl(
          ncclRecv(copies_.data() + std::size_t(r) * share, share, ncclFloat, r, comm_, stream),
          "ncclRecv");
    }
    detail::check_nccl(ncclGroupEnd(), "ncclGroupEnd");
    if (share > 0) {
      const unsigned blocks = unsigned(std::min<std::size_t>((share + 255) / 256, 4096));
      detail::sum_copies_in_rank_order<<<blocks, 256, 0, stream>>>(copies_.data(), share, ranks,
                                                                   values.data() + begin(rank()));
      LDM_CUDA_CHECK(cudaGetLastError());
    }
    detail::check_nccl(ncclGroupStart(), "ncclGroupStart");
    for (int r = 0; r < ranks; ++r) {
      float* own = values.data() + begin(r);
      detail::check_nccl(
          ncclBroadcast(own, own, begin(r + 1) - begin(r), ncclFloat, r, comm_, stream),
          "ncclBroadcast");
    }
    detail::check_nccl(ncclGroupEnd(), "ncclGroupEnd");
  }
  // Host values: summed over MPI, in rank order.
  void all_reduce_sum(std::span<double> values) { world_.all_reduce_sum(values); }
  // The largest `value` of any rank, over MPI.
  std::int64_t all_reduce_max(std::int64_t value) { return world_.all_reduce_max(value); }
  // Replaces the device `values` by rank `root`'s; queued on ldm's stream. Collective.
  void broadcast(std::span<float> values, int root) {
    if (root < 0 || root >= size())
      fail_expected("broadcast root", "a rank in [0, " + std::to_string(size()) + ")", root);
    detail::check_nccl(ncclBroadcast(values.data(), values.data(), values.size(), ncclFloat, root,
                                     comm_, cuda_device::stream()),
                       "ncclBroadcast");
  }
  // Replaces `text` by rank `root`'s, over MPI.
  void broadcast(std::string& text, int root) { world_.broadcast(text, root); }
  // Waits for ldm's stream (so every queued collective is done), then for every rank.
  void barrier() {
    cuda_device::synchronize();
    world_.barrier();
  }
  // Ends every rank: aborts the NCCL communicator (so no kernel waits for a dead peer), then the
  // MPI job.
  [[noreturn]] void abort(int code, std::string_view message) {
    if (comm_) ncclCommAbort(comm_);
    comm_ = nullptr;
    world_.abort(code, message);
  }

 private:
  MpiCommunicator<host>& world_;
  ncclComm_t comm_ = nullptr;
  Buffer<float, ldm::cuda> copies_;
};

}  // namespace ldm::distributed
