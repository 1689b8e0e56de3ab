#pragma once
/// @file
/// The HostScratch this process's host ops will choose, for a memory plan that should match what
/// the allocator measures here rather than the plans' portable upper bound (64 threads).

#include <omp.h>

#include "ldm/ops/conv2d/host.hpp"
#include "ldm/ops/host_scratch.hpp"

namespace ldm::ops {

/// What the host ops choose in this process: its OpenMP thread limit, and whether this CPU (and
/// LDM_CPU_ISA, if set) gives the float convolutions to the direct kernels.
inline HostScratch this_host() {
  HostScratch host;
  host.threads = omp_get_max_threads();
#if LDM_CONV2D_DIRECT
  host.direct_conv = detail::direct::isa() != detail::direct::Isa::none;
#else
  host.direct_conv = false;
#endif
  return host;
}

}  // namespace ldm::ops
