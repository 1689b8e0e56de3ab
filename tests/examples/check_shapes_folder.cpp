// The checking half of tests/examples/make_shapes.sh: the folder make_shapes wrote decodes
// through ldm::data::load_image_folder<64, 3> (every file, none skipped), and holds exactly the
// images examples::shapes_image makes for the seed, in name order: each file's pixels equal the
// generator's, and each loaded 64x64 image equals fit_image of the generator's image; the
// images are not blank and their sizes vary.
//   check_shapes_folder <folder> <count> <seed>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "ldm/data/image_folder.hpp"
#include "rgb64/shapes.hpp"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: check_shapes_folder <folder> <count> <seed>\n");
    return 2;
  }
  try {
    const std::filesystem::path folder = argv[1];
    const long long count = std::stoll(argv[2]);
    const std::uint64_t seed = std::stoull(argv[3]);
    int failures = 0;
    auto check = [&](bool ok, const std::string& what) {
      if (!ok) {
        std::printf("FAIL: %s\n", what.c_str());
        ++failures;
      }
    };

    const auto set = ldm::data::load_image_folder<64, 3>(folder, ldm::data::Unreadable::reject);
    check(set.size() == std::size_t(count), "load_image_folder<64, 3> loaded " +
                                                std::to_string(set.size()) + " images, expected " +
                                                std::to_string(count));
    std::set<std::pair<int, int>> sizes;
    for (long long k = 0; k < count && std::size_t(k) < set.size(); ++k) {
      const std::string name = examples::shapes_file_name(k, count);
      const ldm::io::Image8 expected = examples::shapes_image(seed, std::uint64_t(k));
      const ldm::io::Image8 read = ldm::io::read_image(folder / name, 3);
      check(read.width == expected.width && read.height == expected.height &&
                read.pixels == expected.pixels,
            name + ": the file's pixels differ from shapes_image(seed, " + std::to_string(k) + ")");
      sizes.emplace(read.width, read.height);
      std::set<std::vector<std::uint8_t>> colours;
      for (std::size_t i = 0; i + 2 < read.pixels.size(); i += 3)
        colours.insert({read.pixels[i], read.pixels[i + 1], read.pixels[i + 2]});
      check(colours.size() >= 3, name + ": " + std::to_string(colours.size()) +
                                     " distinct colours; a gradient and a shape make more");

      const std::vector<float> fitted = ldm::data::fit_image<64, 3>(expected);
      const float* loaded = set.pixels.data() + std::size_t(k) * std::size_t(fitted.size());
      check(std::vector<float>(loaded, loaded + fitted.size()) == fitted,
            name + ": loaded image " + std::to_string(k) +
                " is not fit_image<64, 3> of the generator's");
    }
    if (count >= 8)
      check(sizes.size() >= std::size_t(count / 2), "only " + std::to_string(sizes.size()) +
                                                        " distinct sizes among " +
                                                        std::to_string(count) + " images");
    std::printf("%lld images, %zu distinct sizes: %s\n", count, sizes.size(),
                failures == 0 ? "ok" : "FAILED");
    return failures == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::printf("FAIL: %s\n", e.what());
    return 1;
  }
}
