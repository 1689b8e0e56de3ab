#pragma once
// Synthetic colour images for the RGB example and its tests, so that they need no download:
// a linear gradient between two colours at a random angle, under one to four filled circles,
// rectangles and gradient-filled rectangles in random colours. Sizes and aspect ratios vary
// (48 to 160 pixels wide, 40 to 120 high), so that an image folder of them exercises the
// centre-crop and the resize of ldm::data::load_image_folder as photographs would.
//
// Every number comes from the Philox stream (seed, image index), so image k of a seed is the
// same whatever the count, the machine or the order in which images are made.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include "ldm/core/error.hpp"
#include "ldm/core/random.hpp"
#include "ldm/io/image_file.hpp"

namespace examples {

namespace shapes_detail {

// Consecutive uniforms of one Philox stream.
class Draws {
 public:
  Draws(std::uint64_t seed, std::uint64_t stream) : seed_(seed), stream_(stream) {}
  double uniform() { return ldm::uniform(seed_, stream_, next_++); }
  // A whole number in [low, high].
  int between(int low, int high) {
    return low + std::min(int(uniform() * double(high - low + 1)), high - low);
  }
  std::array<double, 3> colour() { return {uniform() * 255, uniform() * 255, uniform() * 255}; }

 private:
  std::uint64_t seed_, stream_, next_ = 0;
};

// A linear gradient from colour `from` to `to` along the direction `angle` (radians), spanning the
// box [x0, x0 + width) x [y0, y0 + height): t is 0 at the box's corner furthest against the
// direction and 1 at the opposite one.
struct Gradient {
  std::array<double, 3> from, to;
  double cos_a, sin_a, offset, span;

  Gradient(std::array<double, 3> from_, std::array<double, 3> to_, double angle, double x0,
           double y0, double width, double height)
      : from(from_), to(to_), cos_a(std::cos(angle)), sin_a(std::sin(angle)) {
    const double corners[4] = {x0 * cos_a + y0 * sin_a, (x0 + width) * cos_a + y0 * sin_a,
                               x0 * cos_a + (y0 + height) * sin_a,
                               (x0 + width) * cos_a + (y0 + height) * sin_a};
    offset = *std::min_element(corners, corners + 4);
    span = std::max(*std::max_element(corners, corners + 4) - offset, 1.0);
  }
  double channel(double x, double y, int c) const {
    const double t = std::clamp((x * cos_a + y * sin_a - offset) / span, 0.0, 1.0);
    return from[std::size_t(c)] * (1 - t) + to[std::size_t(c)] * t;
  }
};

}  // namespace shapes_detail

// The smallest and largest sizes shapes_image() makes.
inline constexpr int shapes_min_width = 48, shapes_max_width = 160;
inline constexpr int shapes_min_height = 40, shapes_max_height = 120;

// Image `index` of `seed`: 3-channel 8-bit pixels.
inline ldm::io::Image8 shapes_image(std::uint64_t seed, std::uint64_t index) {
  using shapes_detail::Gradient;
  shapes_detail::Draws draw(seed, index);
  const int width = draw.between(shapes_min_width, shapes_max_width);
  const int height = draw.between(shapes_min_height, shapes_max_height);
  ldm::io::Image8 image{width, height, 3, {}};
  image.pixels.resize(std::size_t(width) * std::size_t(height) * 3);
  auto put = [&](int x, int y, int c, double value) {
    image.pixels[(std::size_t(y) * std::size_t(width) + std::size_t(x)) * 3 + std::size_t(c)] =
        std::uint8_t(std::clamp(std::lround(value), 0L, 255L));
  };

  constexpr double two_pi = 6.283185307179586;
  const Gradient background(draw.colour(), draw.colour(), draw.uniform() * two_pi, 0, 0, width,
                            height);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      for (int c = 0; c < 3; ++c)
        put(x, y, c, background.channel(x + 0.5, y + 0.5, c));

  const int smaller = std::min(width, height);
  const int shapes = draw.between(1, 4);
  for (int s = 0; s < shapes; ++s) {
    enum Kind { circle, rectangle, gradient_rectangle };
    const Kind kind = Kind(draw.between(0, 2));
    const double cx = draw.uniform() * width, cy = draw.uniform() * height;
    const double rx = draw.between(smaller / 8, smaller / 3);
    const double ry = kind == circle ? rx : draw.between(smaller / 8, smaller / 3);
    const std::array<double, 3> colour = draw.colour();
    const Gradient fill(colour, draw.colour(), draw.uniform() * two_pi, cx - rx, cy - ry, 2 * rx,
                        2 * ry);
    const int x_first = std::max(0, int(std::floor(cx - rx)));
    const int x_last = std::min(width - 1, int(std::ceil(cx + rx)));
    const int y_first = std::max(0, int(std::floor(cy - ry)));
    const int y_last = std::min(height - 1, int(std::ceil(cy + ry)));
    for (int y = y_first; y <= y_last; ++y)
      for (int x = x_first; x <= x_last; ++x) {
        const double dx = x + 0.5 - cx, dy = y + 0.5 - cy;
        const bool inside = kind == circle ? dx * dx + dy * dy <= rx * rx
                                           : std::abs(dx) <= rx && std::abs(dy) <= ry;
        if (!inside) continue;
        for (int c = 0; c < 3; ++c)
          put(x, y, c,
              kind == gradient_rectangle ? fill.channel(x + 0.5, y + 0.5, c)
                                         : colour[std::size_t(c)]);
      }
  }
  return image;
}

// The file name of image `index` among `count`: zero-padded so that sorted names (the order of
// ldm::data::load_image_folder) are index order.
inline std::string shapes_file_name(std::int64_t index, std::int64_t count) {
  const int digits = std::max(5, int(std::to_string(std::max<std::int64_t>(count - 1, 0)).size()));
  char name[64];
  std::snprintf(name, sizeof name, "shape_%0*lld.png", digits, (long long)index);
  return name;
}

// Writes images 0 ... count - 1 of `seed` into `folder` (which must exist) as PNG files.
// @throws ldm::Error when count is negative or a file cannot be written
inline void write_shapes(const std::filesystem::path& folder, std::int64_t count,
                         std::uint64_t seed) {
  if (count < 0) ldm::fail_expected("write_shapes: count", "at least 0", count);
  for (std::int64_t k = 0; k < count; ++k) {
    const ldm::io::Image8 image = shapes_image(seed, std::uint64_t(k));
    ldm::io::write_png(folder / shapes_file_name(k, count), image.width, image.height, 3,
                       image.pixels);
  }
}

}  // namespace examples
