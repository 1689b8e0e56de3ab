#pragma once
/// @file
/// Whether a process was started by an MPI launcher, read from the environment alone (no MPI
/// call), so that a program can choose the distributed path before it initialises MPI, or say
/// that it was launched with mpirun or srun by a build without MPI.

#include <cstdlib>

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

}  // namespace ldm::distributed
