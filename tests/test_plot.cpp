// The charts (ldm/plot/plot.hpp) and the trainer's loss.png (ldm/trainer/loss_plot.hpp): axes and ticks, where a series lands in the picture, awkward
// inputs, and the reading of log.csv with its errors.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <ldm/io/image_file.hpp>
#include <string>
#include <vector>

#include "ldm/plot/plot.hpp"
#include "ldm/trainer/loss_plot.hpp"

namespace plot = ldm::plot;
using ldm::plot::Axis;
using ldm::plot::Rgb;
namespace font = ldm::plot::font;

namespace {

std::filesystem::path fresh_folder(const std::string& name) {
  auto path = std::filesystem::temp_directory_path() / ("ldm_test_plot_" + name);
  std::filesystem::remove_all(path);
  std::filesystem::create_directories(path);
  return path;
}

Rgb pixel(const ldm::io::Image8& image, double x, double y) {
  const auto at = (std::size_t(y) * std::size_t(image.width) + std::size_t(x)) * 3;
  return {image.pixels[at], image.pixels[at + 1], image.pixels[at + 2]};
}

void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path) << text;
}

}  // namespace

TEST_CASE("linear ticks are 1, 2 or 5 times a power of ten, inside the axis") {
  CHECK(Axis{.lo = 0, .hi = 12000}.ticks() ==
        std::vector<double>{0, 2000, 4000, 6000, 8000, 10000, 12000});
  CHECK(Axis{.lo = -0.35, .hi = 0.35}.ticks() ==
        std::vector<double>{-0.3, -0.2, -0.1, 0, 0.1, 0.2, 0.3});
  CHECK(Axis{.lo = 1, .hi = 1}.ticks().empty());
}

TEST_CASE("log ticks are decades, with 2 and 5 or every digit when the span is short") {
  CHECK(Axis{.lo = 1e-5, .hi = 1e3, .log = true}.ticks() ==
        std::vector<double>{1e-5, 1e-3, 1e-1, 1e1, 1e3});
  CHECK(Axis{.lo = 150, .hi = 2200, .log = true}.ticks() ==
        std::vector<double>{200, 500, 1000, 2000});
  const auto digits = Axis{.lo = 0.029, .hi = 0.061, .log = true}.ticks();
  REQUIRE(digits.size() == 4);
  CHECK(digits[0] == doctest::Approx(0.03));
  CHECK(digits[3] == doctest::Approx(0.06));
  CHECK(plot::tick_label(2000) == "2000");
  CHECK(plot::tick_label(0.05) == "0.05");
  CHECK(plot::tick_label(1e-5) == "1e-5");
  CHECK(plot::tick_label(250000) == "2.5e5");
}

TEST_CASE("an axis fits the values it can show, with a margin; awkward inputs give an axis") {
  const Axis linear = plot::fit_axis({1, 3, NAN, INFINITY, 2}, false, 0.5);
  CHECK(linear.lo == doctest::Approx(0));
  CHECK(linear.hi == doctest::Approx(4));
  CHECK(linear.fraction(2) == doctest::Approx(0.5));

  const Axis log = plot::fit_axis({-1, 0, 10, 1000}, true, 0);  // non-positive values left out
  CHECK(log.lo == doctest::Approx(10));
  CHECK(log.hi == doctest::Approx(1000));
  CHECK(log.fraction(100) == doctest::Approx(0.5));

  CHECK(plot::fit_axis({}, false, 0.1).hi > plot::fit_axis({}, false, 0.1).lo);
  CHECK(plot::fit_axis({NAN}, true, 0.1).lo == 1);
  const Axis one = plot::fit_axis({5}, false, 0);
  CHECK((one.lo < 5 && one.hi > 5));
  const Axis one_log = plot::fit_axis({5}, true, 0);
  CHECK((one_log.lo < 5 && one_log.hi > 5));
}

TEST_CASE("a series is drawn where its axes put it, and nowhere else") {
  const Rgb red{200, 0, 0};
  plot::Chart chart{.panels = {{.title = "flat",
                                .log_y = false,
                                .series = {{.x = {0, 100}, .y = {5, 5}, .colour = red},
                                           {.x = {20, 80},
                                            .y = {1, 9},
                                            .colour = {0, 0, 200},
                                            .style = plot::Style::markers}}}}};
  const plot::Frame f = plot::frame_of(chart, 0);
  const auto image = plot::draw(chart).image();
  REQUIRE(image.width == chart.panel_width);
  REQUIRE(image.height == chart.height);
  CHECK(f.py(5) == doctest::Approx((f.top + f.bottom) / 2));
  // The line's middle, a quarter and three quarters along, in its own colour ...
  for (double x : {25.0, 50.0, 75.0})
    CHECK(pixel(image, f.px(x), f.py(5)) == red);
  // ... and the plot area 20 pixels above and below it is not red.
  CHECK(pixel(image, f.px(50), f.py(5) - 20) != red);
  CHECK(pixel(image, f.px(50), f.py(5) + 20) != red);
  // The markers of the second series.
  CHECK(pixel(image, f.px(20), f.py(1)).b > 150);
  CHECK(pixel(image, f.px(80), f.py(9)).b > 150);
  // The title is written in the margin above the plot area.
  bool title_ink = false;
  for (int x = int(f.left); x < int(f.right); ++x)
    for (int y = 0; y < int(f.top); ++y)
      title_ink |= pixel(image, x, y).r < 100;
  CHECK(title_ink);
}

TEST_CASE("empty, single-point, NaN and non-positive log series draw without failing") {
  const std::vector<plot::Series> awkward = {
      {},
      {.x = {1}, .y = {2}},
      {.x = {1, 2, 3}, .y = {NAN, NAN, NAN}},
      {.x = {1, 2, 3}, .y = {0, -1, 0}},
      {.x = {1, 2}, .y = {1}},  // a shorter y draws its points only
  };
  for (const auto& series : awkward)
    for (bool log : {false, true}) {
      plot::Chart chart{.panels = {{.title = "t", .log_y = log, .series = {series}}}};
      CHECK_NOTHROW(plot::draw(chart));
    }
  CHECK_THROWS_AS(plot::draw(plot::Chart{}), ldm::Error);
}

TEST_CASE("every character the charts write has a glyph") {
  for (char c : std::string("0123456789.-+e() autoencoder diffusion loss step each moving average "
                            "steps no data yet EMA"))
    CHECK_MESSAGE(font::find(c) != nullptr, std::string(1, c));
  CHECK(font::find('~') == nullptr);  // drawn as a box
  CHECK(font::ink(nullptr, 0, 0));
}

TEST_CASE("the moving average starts at the first value and skips what is not finite") {
  const auto average = ldm::train::moving_average({4, 4, NAN, 4}, 10);
  CHECK(average == std::vector<double>{4, 4, 4, 4});
  const auto step = ldm::train::moving_average({0, 10, 10, 10}, 2);
  CHECK(step[0] == 0);
  CHECK(step[1] == doctest::Approx(20.0 / 3));  // (0.5 * 0.5 * 0 + 0.5 * 10) / 0.75
  CHECK(std::isnan(ldm::train::moving_average({NAN}, 5)[0]));
}

TEST_CASE("log.csv becomes one panel per phase; a resumed step replaces the later ones") {
  const auto folder = fresh_folder("log");
  write_text(folder / "log.csv",
             "phase,step,loss,grad_norm,seconds\n"
             "autoencoder,1,2000,1,0.1\n"
             "autoencoder,2,1500,1,0.2\n"
             "autoencoder,3,1400,1,0.3\n"
             "autoencoder,2,1600,1,0.4\n"  // resumed from step 1's checkpoint
             "diffusion,1,nan,1,0.5\n"
             "diffusion,2,0.5,1,0.6\n");
  const auto phases = ldm::train::read_loss_log(folder / "log.csv");
  REQUIRE(phases.size() == 2);
  CHECK(phases[0].phase == "autoencoder");
  CHECK(phases[0].steps == std::vector<double>{1, 2});
  CHECK(phases[0].losses == std::vector<double>{2000, 1600});
  CHECK(std::isnan(phases[1].losses[0]));

  ldm::train::write_loss_plot(folder / "log.csv", folder / "loss.png");
  const auto png = ldm::io::read_image(folder / "loss.png", 3);
  CHECK(png.width == 2 * plot::Chart{}.panel_width);

  // A log with only its header draws an empty panel.
  write_text(folder / "header.csv", "phase,step,loss,grad_norm,seconds\n");
  CHECK(ldm::train::loss_chart(ldm::train::read_loss_log(folder / "header.csv")).panels.size() ==
        1);
  CHECK_NOTHROW(ldm::train::write_loss_plot(folder / "header.csv", folder / "empty.png"));
  std::filesystem::remove_all(folder);
}

TEST_CASE("a missing or malformed log.csv is an error naming the file and the line") {
  const auto folder = fresh_folder("bad");
  const auto log = folder / "log.csv";
  CHECK_THROWS_WITH_AS(ldm::train::read_loss_log(log),
                       doctest::Contains((log.string() + ": cannot open").c_str()), ldm::Error);
  write_text(log, "");
  CHECK_THROWS_WITH_AS(ldm::train::read_loss_log(log), doctest::Contains("empty"), ldm::Error);
  write_text(log, "phase,step,grad_norm\n");
  CHECK_THROWS_WITH_AS(ldm::train::read_loss_log(log),
                       doctest::Contains((log.string() + ":1: the header").c_str()), ldm::Error);
  write_text(log, "phase,step,loss\nautoencoder,1,2\nautoencoder,2,x1\n");
  CHECK_THROWS_WITH_AS(ldm::train::read_loss_log(log),
                       doctest::Contains((log.string() + ":3: loss").c_str()), ldm::Error);
  write_text(log, "phase,step,loss\nautoencoder,1\n");
  CHECK_THROWS_WITH_AS(ldm::train::read_loss_log(log),
                       doctest::Contains((log.string() + ":2").c_str()), ldm::Error);
  write_text(log, "phase,step,loss\n,1,2\n");
  CHECK_THROWS_WITH_AS(ldm::train::read_loss_log(log), doctest::Contains(":2: phase"), ldm::Error);
  std::filesystem::remove_all(folder);
}
