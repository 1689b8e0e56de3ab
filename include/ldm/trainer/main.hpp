#pragma once
/// @file
/// The trainer's command line: a user's training program is its configuration and one call,
/// @code
///   int main(int argc, char** argv) { return ldm::train::main<MyConfig, 8>(argc, argv); }
/// @endcode
/// which parses the flags (TrainerSettings; `--help` lists them), checks them all before any
/// work, catches SIGINT/SIGTERM/SIGHUP for a clean stop, and trains on the host, or on the GPU
/// with --device cuda when the unit is compiled by nvcc (or the Program says where its GPU code
/// is). Errors are printed as "<program>: <message>" with exit code 1.

#include <omp.h>

#include <cstdio>
#include <exception>
#include <optional>
#include <string>

#include "ldm/cli/options.hpp"
#include "ldm/distributed/communicator.hpp"
#include "ldm/distributed/launcher.hpp"
#include "ldm/trainer/program.hpp"
#include "ldm/trainer/settings.hpp"
#include "ldm/trainer/stop_signals.hpp"
#include "ldm/trainer/trainer.hpp"

#if defined(LDM_WITH_MPI)
#include "ldm/distributed/mpi.hpp"
#endif
#if defined(__CUDACC__) && defined(LDM_WITH_MPI) && defined(LDM_WITH_NCCL)
#include "ldm/distributed/nccl.cuh"
#endif

namespace ldm::train {

/// Ranks other than 0 of a data-parallel run print nothing on stdout (their errors still reach
/// stderr): one progress display, not one per rank.
inline void quiet_unless_rank_0(int rank) {
  if (rank != 0 && !std::freopen("/dev/null", "w", stdout))
    fail("rank ", rank, ": cannot send its output to /dev/null");
}

/// Trains with settings already parsed and checked, in the memory space Space, on the ranks of
/// `comm`.
template <class Config, class Space, index_t MicroBatch, class Comm>
int train(const TrainerSettings& settings, const Program<Config>& program, Comm& comm) {
  Trainer<Config, Space, MicroBatch, Comm> trainer(settings, program, comm);
  return trainer.run();
}

/// Trains with settings already parsed and checked, in the memory space Space: in one process,
/// or, when mpirun or srun started this one (distributed::launched_by_mpi()), data-parallel over
/// MPI (host buffers; on a GPU train_on_gpu() takes NCCL). Ranks other than 0 print nothing.
/// An error on one rank ends every rank (MPI_Abort), never a hang.
/// @param device the line saying where it trains ("device: host (CPU), 2 threads"), printed by
///        rank 0
/// @throws ldm::Error when an MPI launcher started several processes of a build without MPI
template <class Config, class Space, index_t MicroBatch>
int train(const TrainerSettings& settings, const Program<Config>& program,
          const std::string& device) {
#if defined(LDM_WITH_MPI)
  if (distributed::launched_by_mpi())
    return distributed::run_with_mpi([&](distributed::MpiSession& session) {
      distributed::MpiCommunicator<Space> comm(session);
      quiet_unless_rank_0(comm.rank());
      std::printf("%s\n", device.c_str());
      const int status = train<Config, Space, MicroBatch>(settings, program, comm);
      comm.barrier();  // rank 0 may still be sampling its last grid
      return status;
    });
#else
  if (const auto world = distributed::launched_world_size(); world && *world > 1)
    fail(program.name, " was started as one of ", *world,
         " processes (mpirun or srun), but it was built without MPI, so each would train alone; "
         "install libopenmpi-dev and build again");
#endif
  std::printf("%s\n", device.c_str());
  distributed::SingleProcess<Space> alone;
  return train<Config, Space, MicroBatch>(settings, program, alone);
}

#if defined(__CUDACC__)
/// Trains on a CUDA device, or returns nothing when there is none (the caller then trains on the
/// host). Started by mpirun or srun in a build with MPI and NCCL, each rank takes the device of
/// its rank on the node (modulo the devices) and the gradients are summed with NCCL,
/// bootstrapped over MPI. Only in units compiled by nvcc.
template <class Config, index_t MicroBatch>
std::optional<int> train_on_gpu(const TrainerSettings& settings, const Program<Config>& program) {
  if (!cuda_device::available()) return std::nullopt;
  auto describe = [] {
    int index = 0;
    cudaDeviceProp properties{};
    LDM_CUDA_CHECK(cudaGetDevice(&index));
    LDM_CUDA_CHECK(cudaGetDeviceProperties(&properties, index));
    return "device: cuda:" + std::to_string(index) + ", " + properties.name;
  };
#if defined(LDM_WITH_MPI) && defined(LDM_WITH_NCCL)
  if (distributed::launched_by_mpi())
    return distributed::run_with_mpi([&](distributed::MpiSession& session) {
      distributed::MpiCommunicator<host> world(session);
      quiet_unless_rank_0(world.rank());
      distributed::use_device_of_local_rank(world);
      std::printf("%s\n", describe().c_str());
      distributed::NcclCommunicator comm(world);
      const int status = train<Config, cuda, MicroBatch>(settings, program, comm);
      world.barrier();
      return status;
    });
#endif
  return train<Config, cuda, MicroBatch>(settings, program, describe());
}
#endif

/// Parses argv[first...] into settings (the program's defaults first) and trains; returns the
/// exit code (0 also after --help or --version).
/// @tparam MicroBatch the batch the steps are compiled for; --batch is a multiple of it
/// @throws ldm::Error for a bad flag (before any work) and whatever the run throws
template <class Config, index_t MicroBatch>
int train_from_command_line(int argc, char** argv, const Program<Config>& program, int first = 1) {
  TrainerSettings settings = program.defaults;
  cli::Options options(program.name + " [options]",
                       program.description +
                           "\nThe autoencoder first (L1 + structural term + KL), then the UNet on "
                           "its frozen latents\n(EMA weights), then a sample grid. Each phase "
                           "ends at its step count or its share of\n--time-budget. Ctrl-C, "
                           "SIGTERM or SIGHUP saves a checkpoint and stops; the same command\n"
                           "with --resume continues exactly.");
  settings.add_to(options, MicroBatch, Config::resolution, Config::image_channels);
  if (!options.parse(argc, argv, first)) return 0;
  settings.validate(MicroBatch, Config::schedule::config.num_train_timesteps);

  catch_stop_signals();
  if (settings.device == "cuda") {
    std::optional<int> done;
#if defined(__CUDACC__)
    done = train_on_gpu<Config, MicroBatch>(settings, program);
    const char* why = "no CUDA device was found";
#else
    if (program.run_on_cuda) done = program.run_on_cuda(settings, program);
    const char* why = program.run_on_cuda ? "no CUDA device was found"
                                          : "this program was built without CUDA (compile its "
                                            "main() with nvcc, linking ldm::cuda)";
#endif
    if (done) return *done;
    return train<Config, host, MicroBatch>(settings, program,
                                           "device: host (CPU), " +
                                               std::to_string(omp_get_max_threads()) +
                                               " threads: --device cuda, but " + why);
  }
  return train<Config, host, MicroBatch>(
      settings, program,
      "device: host (CPU), " + std::to_string(omp_get_max_threads()) + " threads");
}

/// A whole training program: train_from_command_line() from argv[1], with errors printed as
/// "<program>: <message>" and exit code 1.
template <class Config, index_t MicroBatch>
int main(int argc, char** argv, const Program<Config>& program = {}) {
  try {
    return train_from_command_line<Config, MicroBatch>(argc, argv, program);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", program.name.c_str(), e.what());
    return 1;
  }
}

}  // namespace ldm::train
