#pragma once
/// @file
/// Whether a process was started by an MPI launcher, and how many processes the launcher started,
/// read from the environment alone (no MPI call): a program can choose the distributed path
/// before it initialises MPI, say that mpirun or srun started a build without MPI, and notice an
/// MPI library that did not connect to its launcher and sees a world of one.

#include <cerrno>
#include <cstdlib>
#include <optional>
#include <string>

#include "ldm/core/error.hpp"

namespace ldm::distributed {

/// True when a launcher that starts MPI jobs started this process: OpenMPI's mpirun
/// (`OMPI_COMM_WORLD_SIZE`), any PMIx launcher (`PMIX_RANK`: OpenMPI's mpirun, `srun --mpi=pmix`)
/// or a PMI-1/PMI-2 one (`PMI_SIZE`: `srun --mpi=pmi2`, MPICH's and Intel MPI's mpiexec). Plain
/// `srun` without an MPI plugin sets none of these (only `SLURM_*`), and its processes would each
/// be a world of one, so Slurm's own variables are not read.
inline bool launched_by_mpi() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"})
    if (std::getenv(name)) return true;
  return false;
}

/// The number of processes the launcher says it started: `OMPI_COMM_WORLD_SIZE` (OpenMPI's
/// mpirun), else `PMI_SIZE` (PMI-1/PMI-2 launchers); nothing when neither is set (no launcher,
/// or a PMIx-only one, which announces no size in the environment).
/// @throws ldm::Error when the variable is not a positive integer
inline std::optional<int> launched_world_size() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"}) {
    const char* text = std::getenv(name);
    if (!text) continue;
    char* end = nullptr;
    errno = 0;
    const long size = std::strtol(text, &end, 10);
    if (end == text || *end != '\0' || errno != 0 || size < 1 || size > 1 << 30)
      fail_expected(std::string("environment variable ") + name, "a positive number of processes",
                    std::string("'") + text + "'");
    return int(size);
  }
  return std::nullopt;
}

}  // namespace ldm::distributed
