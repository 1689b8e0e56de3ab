// Compile-time row (a) of benchmarks/compile_times.sh: the umbrella header alone, the floor every
// translation unit that uses ldm pays.
#include <ldm/ldm.hpp>
