// make_shapes: writes a deterministic folder of synthetic colour PNGs (rgb64/shapes.hpp), a data
// set for the RGB example and its tests that needs no download.
//   make_shapes --out data/shapes --count 256 --seed 0
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>

#include "ldm/cli/options.hpp"
#include "ldm/cli/writable.hpp"
#include "ldm/core/error.hpp"
#include "rgb64/shapes.hpp"

namespace {

// More would take minutes and gigabytes for a folder meant for tests and short runs.
constexpr std::int64_t max_count = 1000000;

int run(int argc, char** argv) {
  std::string out;
  std::int64_t count = 64, seed = 0;
  ldm::cli::Options options(
      "make_shapes --out DIR [--count N] [--seed S]",
      "Writes N colour PNGs of filled circles, rectangles and gradients in random colours, " +
          std::to_string(examples::shapes_min_width) + "x" +
          std::to_string(examples::shapes_min_height) + " to " +
          std::to_string(examples::shapes_max_width) + "x" +
          std::to_string(examples::shapes_max_height) +
          " pixels, as shape_00000.png, shape_00001.png, ...\nThe same seed writes the same "
          "files; image k does not depend on the count.");
  options.add("out", &out, "the folder to write into (created if needed)");
  options.add("count", &count, "how many images, 1 to " + std::to_string(max_count));
  options.add("seed", &seed, "the random seed, at least 0");
  if (!options.parse(argc, argv)) return 0;

  if (out.empty()) ldm::fail_expected("--out", "a folder to write into", "none (see --help)");
  if (count < 1 || count > max_count)
    ldm::fail_expected("--count", "a number in [1, " + std::to_string(max_count) + "]", count);
  if (seed < 0) ldm::fail_expected("--seed", "at least 0", seed);
  ldm::cli::require_writable_folder(out, "--out");

  examples::write_shapes(out, count, std::uint64_t(seed));
  std::printf("wrote %lld images to %s\n", (long long)count, out.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_shapes: %s\n", e.what());
    return 1;
  }
}
