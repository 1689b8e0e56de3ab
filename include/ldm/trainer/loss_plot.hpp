#pragma once
/// @file
/// loss.png from a run's log.csv: one panel per training phase, each step's loss drawn faint and
/// its exponential moving average strong, on a log scale. The trainer redraws it whenever it
/// writes its image grids and at the end; `fashion plot RUN` redraws it from a finished run.

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "ldm/core/error.hpp"
#include "ldm/plot/plot.hpp"

namespace ldm::train {

/// One phase's losses by step, in the order of the log.
struct PhaseLosses {
  std::string phase;  ///< The phase's name in the log.
  /// @{
  /// The steps and their losses.
  std::vector<double> steps, losses;
  /// @}
};

namespace detail {
inline std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> fields(1);
  for (char c : line)
    if (c == ',')
      fields.emplace_back();
    else if (c != '\r')
      fields.back() += c;
  return fields;
}

inline double parse_number(const std::string& text, const std::string& where) {
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size())
    ldm::fail_expected(where, "a number", "'" + text + "'");
  return value;
}
}  // namespace detail

/// Reads a trainer's log.csv: a header naming at least the columns phase, step and loss (others are
/// skipped), then one line per step. A step logged again (a run resumed from an earlier checkpoint)
/// replaces what the log held from that step on. Errors name the file and the line.
inline std::vector<PhaseLosses> read_loss_log(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) ldm::fail(path.string(), ": cannot open the training log");
  std::string line;
  if (!std::getline(in, line)) ldm::fail(path.string(), ": empty, expected a header line");
  const auto header = detail::split_csv_line(line);
  auto column = [&](const char* name) {
    for (std::size_t i = 0; i < header.size(); ++i)
      if (header[i] == name) return i;
    ldm::fail_expected(path.string() + ":1: the header", std::string("a column '") + name + "'",
                       "'" + line + "'");
  };
  const std::size_t phase_at = column("phase"), step_at = column("step"), loss_at = column("loss");

  std::vector<PhaseLosses> phases;
  for (int number = 2; std::getline(in, line); ++number) {
    if (line.empty() || line == "\r") continue;
    const std::string where = path.string() + ":" + std::to_string(number);
    const auto fields = detail::split_csv_line(line);
    if (fields.size() != header.size())
      ldm::fail_expected(where, std::to_string(header.size()) + " fields as in the header",
                         std::to_string(fields.size()) + " in '" + line + "'");
    const std::string& phase = fields[phase_at];
    if (phase.empty()) ldm::fail_expected(where + ": phase", "a name", "an empty field");
    const double step = detail::parse_number(fields[step_at], where + ": step");
    const double loss = detail::parse_number(fields[loss_at], where + ": loss");
    auto it = std::find_if(phases.begin(), phases.end(),
                           [&](const PhaseLosses& p) { return p.phase == phase; });
    if (it == phases.end()) it = phases.insert(phases.end(), {phase, {}, {}});
    while (!it->steps.empty() && it->steps.back() >= step)
      it->steps.pop_back(), it->losses.pop_back();
    it->steps.push_back(step);
    it->losses.push_back(loss);
  }
  return phases;
}

/// The exponential moving average of `values` with weight 1 / span on the newest, debiased (as
/// Adam's moments are) so that it starts at the first value instead of at 0. Non-finite values
/// are skipped: their entry repeats the average so far (NaN before any finite value).
inline std::vector<double> moving_average(const std::vector<double>& values, double span) {
  const double keep = 1 - 1 / std::max(span, 1.0);
  std::vector<double> out;
  out.reserve(values.size());
  double average = 0, weight = 0;
  for (double v : values) {
    if (std::isfinite(v)) {
      average = keep * average + (1 - keep) * v;
      weight = keep * weight + (1 - keep);
    }
    out.push_back(weight > 0 ? average / weight : NAN);
  }
  return out;
}

/// The chart of loss.png: a panel per phase, the raw losses faint and their moving average over
/// about a hundredth of the phase (at least 20 steps) strong.
inline ldm::plot::Chart loss_chart(const std::vector<PhaseLosses>& phases) {
  static constexpr ldm::plot::Rgb colours[] = {{31, 100, 180}, {214, 96, 20}, {40, 150, 70}};
  ldm::plot::Chart chart;
  for (std::size_t i = 0; i < phases.size(); ++i) {
    const PhaseLosses& p = phases[i];
    const double span = std::max(20.0, std::round(double(p.losses.size()) / 100));
    const ldm::plot::Rgb colour = colours[i % std::size(colours)];
    chart.panels.push_back(
        {.title = p.phase + " loss (log scale)",
         .series = {{.label = "each step",
                     .x = p.steps,
                     .y = p.losses,
                     .colour = colour,
                     .style = ldm::plot::Style::faint_line},
                    {.label = "moving average (" + std::to_string(int(span)) + " steps)",
                     .x = p.steps,
                     .y = moving_average(p.losses, span),
                     .colour = colour}}});
  }
  if (chart.panels.empty()) chart.panels.push_back({.title = "loss"});
  return chart;
}

/// Draws `log_csv` into `png`.
inline void write_loss_plot(const std::filesystem::path& log_csv,
                            const std::filesystem::path& png) {
  ldm::plot::write(loss_chart(read_loss_log(log_csv)), png);
}

}  // namespace ldm::train
