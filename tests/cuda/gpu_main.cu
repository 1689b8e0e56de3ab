// The main of every GPU test program: without a usable GPU it says so and exits with 77, which
// CTest reports as "skipped" (SKIP_RETURN_CODE), so machines without a GPU still build and list
// these tests but do not fail them.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

#include <ldm/core/cuda/device.cuh>

int main(int argc, char** argv) {
  if (!ldm::cuda_device::available()) {
    std::printf("no CUDA device: skipping\n");
    return 77;
  }
  doctest::Context context(argc, argv);
  return context.run();
}
