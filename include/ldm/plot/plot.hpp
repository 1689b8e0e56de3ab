#pragma once
// Line charts as PNG files, drawn on a Canvas: panels side by side, each with its own axes
// (linear x, linear or log y), grid, tick labels, title and legend, and any number of series
// (faint lines, strong lines, markers). The programs plot their training curves with it; a new
// curve, such as a validation metric, is one more Series in a panel.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "ldm/plot/canvas.hpp"

namespace ldm::plot {

enum class Style { faint_line, line, markers };

struct Series {
  std::string label{};  // in the legend; empty: left out of it
  // Points in order; a non-finite point (or, on a log axis, y <= 0) leaves a gap.
  std::vector<double> x{}, y{};
  Rgb colour{};
  Style style = Style::line;
};

struct Panel {
  std::string title{}, x_label = "step";
  bool log_y = true;
  std::vector<Series> series{};
};

struct Chart {
  std::vector<Panel> panels{};
  int panel_width = 620, height = 440;
};

// One axis: a value's position as a fraction of the way from lo to hi, in log10 on a log axis.
struct Axis {
  double lo = 0, hi = 1;
  bool log = false;

  double fraction(double v) const {
    return log ? (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo))
               : (v - lo) / (hi - lo);
  }
  bool shows(double v) const { return std::isfinite(v) && (!log || v > 0); }

  // Where the grid lines and labels go: 1, 2 or 5 times a power of ten on a linear axis;
  // powers of ten on a log axis spanning decades, with 2 and 5 (then 3, then every digit)
  // between when that alone would give fewer than four, and linear ticks on a log axis narrower
  // than that.
  std::vector<double> ticks() const {
    std::vector<double> out;
    if (!(hi > lo)) return out;
    if (!log) {
      const double raw = (hi - lo) / 5;
      const int exponent = int(std::floor(std::log10(raw)));
      const double magnitude = std::pow(10.0, exponent), m = raw / magnitude;
      const double digit = m < 1.5 ? 1 : m < 3 ? 2 : m < 7 ? 5 : 10, step = digit * magnitude;
      // k * digit / 10^-e is the double nearest the decimal tick (k * step is not: 3 * 0.1).
      const auto tick = [&](double k) {
        return exponent < 0 ? k * digit / std::pow(10.0, -exponent) : k * step;
      };
      for (double k = std::ceil(lo / step - 1e-9); tick(k) <= hi + step * 1e-9; ++k)
        out.push_back(k == 0 ? 0.0 : tick(k));
      return out;
    }
    const int first = int(std::floor(std::log10(lo))), last = int(std::ceil(std::log10(hi)));
    const int every = std::max(1, (last - first + 5) / 6);
    for (const auto& mantissas :
         {std::vector<double>{1}, std::vector<double>{1, 2, 5}, std::vector<double>{1, 2, 3, 5},
          std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8, 9}}) {
      out.clear();
      for (int e = first; e <= last; ++e)
        for (double m : mantissas) {
          const double v = m * std::pow(10.0, e);
          if ((m != 1 || (e - first) % every == 0) && v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9))
            out.push_back(v);
        }
      if (out.size() >= 4) return out;
    }
    // Less than a step of one digit: as a linear axis would.
    return out.size() >= 2 ? out : Axis{.lo = lo, .hi = hi, .log = false}.ticks();
  }
};

// Fainter grid lines between the ticks of a log axis: at every digit times a power of ten.
inline std::vector<double> minor_ticks(const Axis& axis) {
  std::vector<double> out;
  if (!axis.log || !(axis.hi > axis.lo)) return out;
  for (int e = int(std::floor(std::log10(axis.lo))); e <= int(std::ceil(std::log10(axis.hi))); ++e)
    for (int m = 1; m <= 9; ++m) {
      const double v = m * std::pow(10.0, e);
      if (v >= axis.lo && v <= axis.hi) out.push_back(v);
    }
  return out.size() <= 40 ? out : std::vector<double>{};
}

// The axis that shows every value it can (finite; positive on a log axis) with `margin` (a
// fraction of the span, in log10 on a log axis) on each side. Without values it is [0, 1] or
// [1, 10]; a single value gets a span around it.
inline Axis fit_axis(const std::vector<double>& values, bool log, double margin) {
  Axis axis{.lo = 0, .hi = 1, .log = log};
  double lo = INFINITY, hi = -INFINITY;
  for (double v : values)
    if (axis.shows(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  if (log) {
    if (lo > hi) return {.lo = 1, .hi = 10, .log = true};
    double l = std::log10(lo), h = std::log10(hi);
    if (h - l < 1e-9) l -= 0.5, h += 0.5;
    const double pad = (h - l) * margin;
    return {.lo = std::pow(10.0, l - pad), .hi = std::pow(10.0, h + pad), .log = true};
  }
  if (lo > hi) return axis;
  if (hi - lo < 1e-12 * std::max(1.0, std::abs(hi))) {
    const double half = std::max(1.0, std::abs(hi) * 0.1);
    lo -= half, hi += half;
  }
  const double pad = (hi - lo) * margin;
  return {.lo = lo - pad, .hi = hi + pad, .log = false};
}

// A tick's label: plain decimals from 0.001 to 99999, "1e-5" style beyond.
inline std::string tick_label(double v) {
  char text[32];
  const double size = std::abs(v);
  if (v != 0 && (size < 1e-3 || size >= 1e5)) {
    const int exponent = int(std::floor(std::log10(size) + 1e-9));
    std::snprintf(text, sizeof text, "%.3ge%d", v / std::pow(10.0, exponent), exponent);
  } else {
    std::snprintf(text, sizeof text, "%.6g", v);
  }
  return text;
}

// Where a panel's plot area lies in the image and how values map into it.
struct Frame {
  double left, top, right, bottom;
  Axis x, y;

  double px(double v) const { return left + x.fraction(v) * (right - left); }
  double py(double v) const { return bottom - y.fraction(v) * (bottom - top); }
};

namespace style {
inline constexpr Rgb ink{40, 40, 40}, axis{110, 110, 110}, grid{222, 222, 222},
    minor_grid{242, 242, 242}, background{255, 255, 255};
inline constexpr double text_size = 2, title_size = 2.4;
inline constexpr double margin_left = 82, margin_right = 34, margin_top = 46, margin_bottom = 60;
}  // namespace style

// Panel `index` of `chart`: its plot area and the axes that fit its series.
inline Frame frame_of(const Chart& chart, std::size_t index) {
  const Panel& panel = chart.panels.at(index);
  std::vector<double> xs, ys;
  for (const Series& s : panel.series)
    for (std::size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i)
      if (std::isfinite(s.x[i]) && Axis{.log = panel.log_y}.shows(s.y[i]))
        xs.push_back(s.x[i]), ys.push_back(s.y[i]);
  // Positive x (steps, epochs) is shown from 0, where training starts.
  if (!xs.empty() && *std::min_element(xs.begin(), xs.end()) > 0) xs.push_back(0);
  const double x0 = double(index) * chart.panel_width;
  return {.left = x0 + style::margin_left,
          .top = style::margin_top,
          .right = x0 + chart.panel_width - style::margin_right,
          .bottom = chart.height - style::margin_bottom,
          .x = fit_axis(xs, false, 0.0),
          .y = fit_axis(ys, panel.log_y, 0.05)};
}

inline void draw_series(Canvas& canvas, const Frame& frame, const Series& s) {
  const double width = s.style == Style::faint_line ? 1.2 : 2.2;
  const Rgb colour = s.style == Style::faint_line ? tint(s.colour, 0.3) : s.colour;
  bool have_previous = false;
  double px = 0, py = 0;
  for (std::size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
    if (!std::isfinite(s.x[i]) || !frame.y.shows(s.y[i])) {
      have_previous = false;
      continue;
    }
    const double x = frame.px(s.x[i]), y = frame.py(s.y[i]);
    if (s.style == Style::markers)
      canvas.dot(x, y, 3.5, colour);
    else if (have_previous)
      canvas.line(px, py, x, y, width, colour);
    else
      canvas.dot(x, y, width / 2, colour);  // a point with no neighbour still shows
    px = x, py = y, have_previous = true;
  }
}

inline void draw_legend(Canvas& canvas, const Frame& frame, const std::vector<Series>& series) {
  const double size = style::text_size, line_height = 12 * size, sample = 24;
  double widest = 0;
  int rows = 0;
  for (const Series& s : series)
    if (!s.label.empty()) widest = std::max(widest, Canvas::text_width(s.label, size)), ++rows;
  if (rows == 0) return;
  const double right = frame.right - 8, left = right - widest - sample - 18, top = frame.top + 8;
  canvas.fill_rect(left, top, right, top + rows * line_height + 8, style::background);
  double y = top + 4 + line_height / 2;
  for (const Series& s : series) {
    if (s.label.empty()) continue;
    const Rgb colour = s.style == Style::faint_line ? tint(s.colour, 0.3) : s.colour;
    if (s.style == Style::markers)
      canvas.dot(left + 8 + sample / 2, y, 3.5, colour);
    else
      canvas.line(left + 8, y, left + 8 + sample, y, s.style == Style::faint_line ? 1.6 : 2.6,
                  colour);
    canvas.text(left + 16 + sample, y - 3.5 * size, s.label, size, style::ink);
    y += line_height;
  }
}

inline void draw_panel(Canvas& canvas, const Chart& chart, std::size_t index) {
  const Panel& panel = chart.panels[index];
  const Frame f = frame_of(chart, index);
  const double size = style::text_size;
  bool any = false;
  for (const Series& s : panel.series)
    for (std::size_t i = 0; i < std::min(s.x.size(), s.y.size()) && !any; ++i)
      any = std::isfinite(s.x[i]) && f.y.shows(s.y[i]);

  if (any) {
    for (double t : minor_ticks(f.y))
      canvas.line(f.left, f.py(t), f.right, f.py(t), 1, style::minor_grid);
    for (double t : f.y.ticks()) {
      const double y = f.py(t);
      canvas.line(f.left, y, f.right, y, 1, style::grid);
      canvas.line(f.left - 5, y, f.left, y, 1.2, style::axis);
      canvas.text(f.left - 9, y - 3.5 * size, tick_label(t), size, style::ink, Align::right);
    }
    for (double t : f.x.ticks()) {
      const double x = f.px(t);
      canvas.line(x, f.top, x, f.bottom, 1, style::grid);
      canvas.line(x, f.bottom, x, f.bottom + 5, 1.2, style::axis);
      canvas.text(x, f.bottom + 10, tick_label(t), size, style::ink, Align::centre);
    }
    for (const Series& s : panel.series)
      draw_series(canvas, f, s);
    draw_legend(canvas, f, panel.series);
  } else {
    canvas.text((f.left + f.right) / 2, (f.top + f.bottom) / 2 - 3.5 * size, "no data yet", size,
                style::axis, Align::centre);
  }
  // The frame last, so that lines end under it.
  canvas.line(f.left, f.bottom, f.right, f.bottom, 1.4, style::axis);
  canvas.line(f.left, f.top, f.left, f.bottom, 1.4, style::axis);
  // The title in bold: drawn twice, a third of a font pixel apart.
  for (double shift : {0.0, style::title_size / 3})
    canvas.text((f.left + f.right) / 2 + shift, f.top - 14 - 7 * style::title_size, panel.title,
                style::title_size, style::ink, Align::centre);
  canvas.text((f.left + f.right) / 2, f.bottom + 34, panel.x_label, size, style::axis,
              Align::centre);
}

// The chart as a picture: its panels side by side, panel_width x height each.
inline Canvas draw(const Chart& chart) {
  if (chart.panels.empty()) ldm::fail("a chart needs at least one panel");
  Canvas canvas(chart.panel_width * int(chart.panels.size()), chart.height, style::background);
  for (std::size_t i = 0; i < chart.panels.size(); ++i)
    draw_panel(canvas, chart, i);
  return canvas;
}

// Writes the chart as a PNG, atomically (a reader never sees half a file).
inline void write(const Chart& chart, const std::filesystem::path& path) {
  draw(chart).write_png(path);
}

}  // namespace ldm::plot
