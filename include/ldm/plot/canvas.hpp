#pragma once
// An RGB canvas for charts: filled rectangles, thick line segments, dots and bitmap text, in
// pixel coordinates of the final image. It draws at `supersample` times the resolution and
// averages each block when the image is taken, which anti-aliases every edge without a coverage
// computation in each primitive.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string_view>
#include <vector>

#include "ldm/core/error.hpp"
#include "ldm/io/image_file.hpp"
#include "ldm/plot/font.hpp"

namespace ldm::plot {

struct Rgb {
  std::uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb&) const = default;
};

// `colour` mixed with white: amount 1 is the colour, 0 white.
inline Rgb tint(Rgb colour, double amount) {
  auto mix = [&](std::uint8_t c) { return std::uint8_t(std::lround(255 - (255 - c) * amount)); };
  return {mix(colour.r), mix(colour.g), mix(colour.b)};
}

enum class Align { left, centre, right };

class Canvas {
 public:
  Canvas(int width, int height, Rgb background, int supersample = 3)
      : width_(width), height_(height), scale_(supersample) {
    if (width <= 0 || height <= 0 || supersample <= 0)
      ldm::fail_expected(
          "canvas size", "a positive width, height and supersampling",
          std::to_string(width) + "x" + std::to_string(height) + "x" + std::to_string(supersample));
    pixels_.assign(std::size_t(width) * std::size_t(height) * std::size_t(scale_ * scale_),
                   background);
  }

  int width() const { return width_; }
  int height() const { return height_; }

  void fill_rect(double x0, double y0, double x1, double y1, Rgb colour) {
    for_block(x0, y0, x1, y1, [&](double, double, Rgb& p) { p = colour; });
  }

  // A segment `thickness` pixels wide with round ends: every subpixel whose centre lies within
  // thickness / 2 of the segment.
  void line(double x0, double y0, double x1, double y1, double thickness, Rgb colour) {
    const double r = thickness / 2, dx = x1 - x0, dy = y1 - y0, length2 = dx * dx + dy * dy;
    for_block(std::min(x0, x1) - r, std::min(y0, y1) - r, std::max(x0, x1) + r,
              std::max(y0, y1) + r, [&](double x, double y, Rgb& p) {
                const double t =
                    length2 > 0 ? std::clamp(((x - x0) * dx + (y - y0) * dy) / length2, 0.0, 1.0)
                                : 0.0;
                const double ex = x - (x0 + t * dx), ey = y - (y0 + t * dy);
                if (ex * ex + ey * ey <= r * r) p = colour;
              });
  }

  void dot(double x, double y, double radius, Rgb colour) { line(x, y, x, y, 2 * radius, colour); }

  // Text whose glyph cells are `size` pixels per font pixel, `x` at its left, centre or right
  // and `y` at the top of its capitals.
  void text(double x, double y, std::string_view text, double size, Rgb colour,
            Align align = Align::left) {
    x -= align == Align::left ? 0 : text_width(text, size) / (align == Align::centre ? 2 : 1);
    for (char c : text) {
      const font::Glyph* glyph = font::find(c);
      for (int row = 0; row < font::rows; ++row)
        for (int column = 0; column < font::columns; ++column)
          if (font::ink(glyph, column, row))
            fill_rect(x + column * size, y + row * size, x + (column + 1) * size,
                      y + (row + 1) * size, colour);
      x += font::advance * size;
    }
  }

  static double text_width(std::string_view text, double size) {
    return text.empty() ? 0 : (double(text.size()) * font::advance - 1) * size;
  }

  // The picture at its final size: each pixel the mean of its supersampled block.
  ldm::io::Image8 image() const {
    ldm::io::Image8 out{width_, height_, 3, {}};
    out.pixels.resize(std::size_t(width_) * std::size_t(height_) * 3);
    const int wide = width_ * scale_;
    for (int y = 0; y < height_; ++y)
      for (int x = 0; x < width_; ++x) {
        int sum[3] = {0, 0, 0};
        for (int sy = 0; sy < scale_; ++sy)
          for (int sx = 0; sx < scale_; ++sx) {
            const Rgb& p = pixels_[std::size_t(y * scale_ + sy) * std::size_t(wide) +
                                   std::size_t(x * scale_ + sx)];
            sum[0] += p.r, sum[1] += p.g, sum[2] += p.b;
          }
        for (int c = 0; c < 3; ++c)
          out.pixels[(std::size_t(y) * std::size_t(width_) + std::size_t(x)) * 3 + std::size_t(c)] =
              std::uint8_t((sum[c] + scale_ * scale_ / 2) / (scale_ * scale_));
      }
    return out;
  }

  void write_png(const std::filesystem::path& path) const {
    const ldm::io::Image8 picture = image();
    ldm::io::write_png(path, picture.width, picture.height, 3, picture.pixels);
  }

 private:
  // Calls f(x, y, pixel) for every subpixel whose centre (in final pixels) lies in the
  // rectangle, clipped to the canvas. Non-finite corners draw nothing.
  template <class F>
  void for_block(double x0, double y0, double x1, double y1, const F& f) {
    if (!std::isfinite(x0) || !std::isfinite(y0) || !std::isfinite(x1) || !std::isfinite(y1))
      return;
    const int wide = width_ * scale_, high = height_ * scale_;
    auto first = [&](double v, int limit) {
      return int(std::clamp(std::ceil(v * scale_ - 0.5), 0.0, double(limit)));
    };
    auto last = [&](double v, int limit) {
      return int(std::clamp(std::floor(v * scale_ - 0.5), -1.0, double(limit - 1)));
    };
    for (int sy = first(y0, high), y_end = last(y1, high); sy <= y_end; ++sy)
      for (int sx = first(x0, wide), x_end = last(x1, wide); sx <= x_end; ++sx)
        f((sx + 0.5) / scale_, (sy + 0.5) / scale_,
          pixels_[std::size_t(sy) * std::size_t(wide) + std::size_t(sx)]);
  }

  int width_, height_, scale_;
  std::vector<Rgb> pixels_;
};

}  // namespace ldm::plot
