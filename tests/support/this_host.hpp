#pragma once
// What the host ops choose on this machine (thread count, direct convolutions), for the tests
// that compare a declared Scratch or memory plan with the host allocator's measured peak.

#include <omp.h>

#include <ldm/ldm.hpp>

namespace ldm::test {

inline ops::HostScratch this_host() {
  ops::HostScratch host;
  host.threads = omp_get_max_threads();
#if LDM_CONV2D_DIRECT
  host.direct_conv = ops::detail::direct::isa() != ops::detail::direct::Isa::none;
#else
  host.direct_conv = false;
#endif
  return host;
}

}  // namespace ldm::test
