// The learned label-token table of LatentDiffusion (pipeline/label_tokens.hpp): labels pick rows
// that the UNet's cross-attention reads, the context's gradient trains the rows (checked against
// finite differences of the diffusion loss), label dropout is drawn per sample (accumulation
// equals the whole batch), guidance reads the null row, and a checkpoint keeps the table
// (label_tokens.safetensors, checked at load) and resumes exactly.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <ldm/ldm.hpp>
#include <numeric>
#include <string>
#include <string_view>
#include <vector>

#include "support/small_pipeline.hpp"

using namespace ldm;
using test::largest_difference;
using test::with_label_dropout;

namespace {

// test::Small whose UNet attends (at its coarser level and in the mid block) to 2 tokens of 6
// channels: the rows of a table of 3 classes and the null label.
struct SmallTokens : test::Small {
  static constexpr UNetConditionConfig unet = test::small_cross_attention_unet;
  static constexpr index_t context_tokens = 2;
  static constexpr index_t label_classes = 3;
};
using Model = LatentDiffusion<SmallTokens>;
// The same UNet on the caller's contexts.
struct SameUNet : test::Small {
  static constexpr UNetConditionConfig unet = SmallTokens::unet;
  static constexpr index_t context_tokens = 2;
};
template <index_t N>
using Images = View<const float, Model::images<N>>;
template <index_t N>
using Latents = Model::latents<N>;
constexpr std::size_t row = 2 * 6, table_size = 4 * row;

double largest(const std::vector<float>& v) {
  double m = 0;
  for (float x : v)
    m = std::max(m, double(std::abs(x)));
  return m;
}

// Moves the UNet and the table from their initialisation, so that the classes differ.
void train_a_little(Model& model) {
  const auto x = test::small_batch<4>(1);
  const std::vector<std::int32_t> labels{0, 1, 2, 1};
  for (int step = 0; step < 3; ++step)
    model.diffusion_step<4>(x, labels);
}

// The contexts of `labels`: their rows of `table`.
template <index_t N>
Tensor<float, Model::context<N>> rows_of(const std::vector<float>& table,
                                         const std::vector<std::int32_t>& labels) {
  Tensor<float, Model::context<N>> c;
  for (index_t n = 0; n < N; ++n)
    std::copy_n(table.data() + std::size_t(labels[std::size_t(n)]) * row, row,
                c.data() + std::size_t(n) * row);
  return c;
}

// Two ranks in one process: rank 0 records what it broadcasts, rank 1 then receives it in the same
// order.
struct Broadcasts {
  std::vector<std::vector<float>> floats;
  std::vector<std::string> texts;
};
class ReplayedRank {
 public:
  using buffer_space = host;
  ReplayedRank(int rank, Broadcasts& record) : rank_(rank), record_(record) {}
  int rank() const { return rank_; }
  int size() const { return 2; }
  void all_reduce_sum(std::span<float>) {}
  void all_reduce_sum(std::span<double>) {}
  std::int64_t all_reduce_max(std::int64_t value) { return value; }
  void broadcast(std::span<float> values, int) {
    if (rank_ == 0) {
      record_.floats.emplace_back(values.begin(), values.end());
    } else {
      REQUIRE(record_.floats[floats_].size() == values.size());
      std::copy(record_.floats[floats_].begin(), record_.floats[floats_].end(), values.begin());
      ++floats_;
    }
  }
  void broadcast(std::string& text, int) {
    if (rank_ == 0)
      record_.texts.push_back(text);
    else
      text = record_.texts[texts_++];
  }
  void barrier() {}
  [[noreturn]] void abort(int, std::string_view message) {
    FAIL(message);
    std::abort();
  }

 private:
  int rank_;
  Broadcasts& record_;
  std::size_t floats_ = 0, texts_ = 0;
};

}  // namespace

TEST_CASE("broadcast_state gives every rank rank 0's table, and rank 0's null context") {
  {
    // Other seeds, the same counters and scaling factor (which broadcast_state compares).
    Model zero(1), one(2);
    zero.set_scaling_factor(0.8), one.set_scaling_factor(0.8);
    train_a_little(zero);
    train_a_little(one);
    Broadcasts record;
    ReplayedRank rank0(0, record), rank1(1, record);
    zero.broadcast_state(rank0);
    one.broadcast_state(rank1);
    const auto& a = zero.label_token_table();
    const auto& b = one.label_token_table();
    CHECK(b.values_host() == a.values_host());
    CHECK(b.ema_host() == a.ema_host());
  }
  LatentDiffusion<SameUNet> zero(1), one(1);
  Tensor<float, LatentDiffusion<SameUNet>::context<1>> c;
  c = randn<LatentDiffusion<SameUNet>::context<1>>(5, 0);
  zero.set_null_context(c);
  Broadcasts record;
  ReplayedRank rank0(0, record), rank1(1, record);
  zero.broadcast_state(rank0);
  one.broadcast_state(rank1);
  CHECK(one.null_context() == zero.null_context());
  CHECK(one.null_context() != std::vector<float>(one.null_context().size(), 0.0f));
}

TEST_CASE("the configuration's classes, and its table of classes + 1 rows") {
  static_assert(Model::class_conditional && Model::label_tokens && !Model::class_embedding);
  static_assert(Model::context_conditional && Model::classes == 3 && Model::null_class == 3);
  static_assert(Model::LabelTokens::parameter_count == index_t(table_size));
  static_assert(!LatentDiffusion<test::Small>::label_tokens);
  Model model(1);
  const auto table = model.label_token_table().values_host();
  REQUIRE(table.size() == table_size);
  // N(0, 1), as nn.Embedding: rows that differ from the start.
  const double mean = std::accumulate(table.begin(), table.end(), 0.0) / double(table.size());
  CHECK(std::abs(mean) < 0.5);
  CHECK(largest(table) > 0.5);
  CHECK(model.null_context().empty());
}

TEST_CASE("the table's gradient is that of the diffusion loss (finite differences)") {
  // lr 0 and no clipping: a step only measures the loss and the gradient at the given table.
  TrainingOptions frozen;
  frozen.unet_optimizer.lr = 0;
  frozen.max_grad_norm = 1e30;
  const auto x = test::small_batch<4>(5);
  // Row 1 is not read; row 3 (the null label) is, given as a label.
  const std::vector<std::int32_t> labels{0, 2, 0, 3};
  auto step_at = [&](const std::vector<float>& table) {
    Model model(5, frozen);
    model.set_scaling_factor(0.8);
    model.set_label_tokens(table);
    const double loss = model.diffusion_step<4>(x, labels).loss;
    return std::pair{loss, model.label_token_table().grads_host()};
  };
  const auto base = Model(5, frozen).label_token_table().values_host();
  const auto [loss, g] = step_at(base);
  REQUIRE(g.size() == table_size);
  for (std::size_t i = row; i < 2 * row; ++i)
    CHECK(g[i] == 0);
  double norm = 0;
  for (float v : g)
    norm += double(v) * double(v);
  norm = std::sqrt(norm);
  REQUIRE(norm > 0);
  // Directional derivatives along the gradient (its norm) and along a random direction.
  std::vector<float> random(table_size);
  Tensor<float, Shape<index_t(table_size)>> draw;
  draw = randn<Shape<index_t(table_size)>>(31, 0);
  std::copy_n(draw.data(), table_size, random.data());
  for (int which = 0; which < 2; ++which) {
    CAPTURE(which);
    std::vector<double> direction(table_size);
    double length = 0;
    for (std::size_t i = 0; i < table_size; ++i)
      length += double(which == 0 ? g[i] : random[i]) * (which == 0 ? g[i] : random[i]);
    for (std::size_t i = 0; i < table_size; ++i)
      direction[i] = double(which == 0 ? g[i] : random[i]) / std::sqrt(length);
    double expected = 0;
    for (std::size_t i = 0; i < table_size; ++i)
      expected += double(g[i]) * direction[i];
    constexpr double h = 2e-2;
    std::vector<float> plus = base, minus = base;
    for (std::size_t i = 0; i < table_size; ++i)
      plus[i] = float(base[i] + h * direction[i]), minus[i] = float(base[i] - h * direction[i]);
    const double measured = (step_at(plus).first - step_at(minus).first) / (2 * h);
    MESSAGE("directional derivative: ", measured, " by finite differences, ", expected,
            " from the gradient; loss ", loss);
    CHECK(measured == doctest::Approx(expected).epsilon(0.005).scale(norm));
  }
}

TEST_CASE("two labelled micro-batches of 2 make the step one batch of 4 makes, label dropout too") {
  const auto x = test::small_batch<4>(2);
  const std::vector<std::int32_t> labels{0, 1, 2, 0};
  Model whole(5, with_label_dropout(0.5)), split(5, with_label_dropout(0.5)), kept(5);
  whole.set_scaling_factor(0.8), split.set_scaling_factor(0.8), kept.set_scaling_factor(0.8);
  const auto a = whole.diffusion_step<4>(x, labels);
  const auto b = split.diffusion_step<2>(2, [&](index_t j) {
    return Model::labelled_images<2>{Images<2>(x.batch<2>(2 * j)),
                                     std::span(labels).subspan(std::size_t(2 * j), 2)};
  });
  CHECK(b.loss == doctest::Approx(a.loss).epsilon(1e-6));
  CHECK(b.grad_norm == doctest::Approx(a.grad_norm).epsilon(1e-5));
  const auto ga = whole.label_token_table().grads_host(),
             gb = split.label_token_table().grads_host();
  CHECK(largest_difference(ga.data(), gb.data(), table_size) < 1e-5 * largest(ga));
  CHECK(largest(ga) > 0);
  // Dropout 0.5 dropped some of these labels: the loss is not that of the labels kept.
  CHECK(kept.diffusion_step<4>(x, labels).loss != a.loss);
}

TEST_CASE("label dropout 1 trains on the null row alone") {
  const auto x = test::small_batch<4>(3);
  const std::vector<std::int32_t> labels{0, 1, 2, 0}, none(4, Model::null_class);
  Model dropped(7, with_label_dropout(1)), unconditional(7);
  CHECK(dropped.diffusion_step<4>(x, labels).loss == unconditional.diffusion_step<4>(x, none).loss);
  const auto g = dropped.label_token_table().grads_host();
  for (std::size_t i = 0; i < 3 * row; ++i)
    CHECK(g[i] == 0);
}

TEST_CASE(
    "guided sampling is pred_null + w (pred_class - pred_null), contexts from the EMA table") {
  // A large rate, so that the EMA's table is well behind the training one.
  TrainingOptions options = with_label_dropout(0.3);
  options.unet_optimizer.lr = 3e-2;
  Model model(11, options);
  train_a_little(model);
  const auto sampler = std::get<diffusion::DDIM>(model.sampler(4));
  const std::vector<std::int32_t> labels{2, 0};
  constexpr double w = 3;
  Tensor<float, Latents<2>> start;
  start = randn<Latents<2>>(21, 0);

  Tensor<float, Latents<2>> guided = start;
  model.denoise<2>(sampler, 0, 9, true, {.labels = labels, .guidance_scale = w}, guided.view());

  // The same loop written out: the two predictions as separate batches of 2, on the rows of the
  // EMA's table (which differs from the training table after three steps).
  const auto table = model.label_token_table().ema_host();
  REQUIRE(largest_difference(table.data(), model.label_token_table().values_host().data(),
                             table_size) > 1e-2);
  const auto with_rows = rows_of<2>(table, labels), null_rows = rows_of<2>(table, {3, 3});
  const auto& unet = model.ema_unet();
  typename Model::UNet::Saved<2> saved;
  const auto x =
      test::guided_by_hand(sampler, start, w, [&](auto& x, auto& t, bool cond, auto eps) {
        unet.forward<2>(x, t, cond ? with_rows : null_rows, saved, eps);
      });
  const double scale = max(abs(x));
  CHECK(largest_difference(guided.data(), x.data(), std::size_t(x.size)) < 1e-5 * scale);

  SUBCASE("guidance 0 is the unconditional sample (the null row), 1 the conditional one") {
    Tensor<float, Latents<2>> zero = start, none = start, one = start;
    model.denoise<2>(sampler, 0, 9, true, {.labels = labels, .guidance_scale = 0}, zero.view());
    model.denoise<2>(sampler, 0, 9, true, none.view());
    CHECK(largest_difference(zero.data(), none.data(), std::size_t(x.size)) < 1e-5 * scale);
    model.denoise<2>(sampler, 0, 9, true, {.labels = labels}, one.view());
    CHECK(largest_difference(one.data(), none.data(), std::size_t(x.size)) > 1e-3 * scale);
  }
}

TEST_CASE("misuse is an ldm::Error naming what was wrong") {
  Model model(3);
  const auto x = test::small_batch<2>(4);
  const std::vector<std::int32_t> bad{0, 4};
  CHECK_THROWS_WITH_AS(model.diffusion_step<2>(x, bad),
                       doctest::Contains("diffusion_step: label 1: expected a class in [0, 3)"),
                       Error);
  CHECK_THROWS_WITH_AS(model.diffusion_step<2>(Images<2>(x)),
                       doctest::Contains("class-conditional (3 classes)"), Error);
  CHECK(model.diffusion_steps() == 0);
  Tensor<float, Model::images<2>> out;
  CHECK_THROWS_WITH_AS(model.sample<2>(model.sampler(2), 1, {.labels = {0, 5}}, out.view()),
                       doctest::Contains("sample: label 1"), Error);
  CHECK_THROWS_WITH_AS(model.set_label_tokens(std::vector<float>(table_size - 1)),
                       doctest::Contains("set_label_tokens: values"), Error);
  std::vector<float> not_finite(table_size, 0.0f);
  not_finite[5] = NAN;
  CHECK_THROWS_WITH_AS(model.set_label_tokens(not_finite),
                       doctest::Contains("set_label_tokens: value 5"), Error);
  TrainingOptions context_dropout;
  context_dropout.context_dropout = 0.1;
  CHECK_THROWS_WITH_AS(Model(1, context_dropout), doctest::Contains("label_dropout"), Error);
}

TEST_CASE("a checkpoint keeps the table, samples the same and resumes exactly") {
  Model model(13, with_label_dropout(0.3));
  train_a_little(model);
  const auto folder = std::filesystem::temp_directory_path() / "ldm_test_label_tokens";
  std::filesystem::remove_all(folder);
  model.save(folder);
  const auto file = std::filesystem::canonical(folder) / "label_tokens.safetensors";
  REQUIRE(std::filesystem::exists(file));
  Model loaded(99);
  loaded.load(folder);
  CHECK(loaded.label_token_table().values_host() == model.label_token_table().values_host());
  CHECK(loaded.label_token_table().ema_host() == model.label_token_table().ema_host());
  Tensor<float, Model::images<2>> a, b;
  const auto sampler = model.sampler(3);
  model.sample<2>(sampler, 5, {.labels = {0, 2}, .guidance_scale = 2}, a.view());
  loaded.sample<2>(sampler, 5, {.labels = {0, 2}, .guidance_scale = 2}, b.view());
  CHECK(largest_difference(a.data(), b.data(), std::size_t(a.size)) == 0);
  // The next step is the one the saving model takes.
  const auto x = test::small_batch<4>(6);
  const std::vector<std::int32_t> labels{2, 1, 0, 3};
  CHECK(loaded.diffusion_step<4>(x, labels).loss == model.diffusion_step<4>(x, labels).loss);
  CHECK(loaded.label_token_table().values_host() == model.label_token_table().values_host());

  SUBCASE("a caller-context model with the same UNet refuses the folder") {
    LatentDiffusion<SameUNet> other(1);
    CHECK_THROWS_WITH_AS(other.load(folder), doctest::Contains("label_tokens.safetensors"), Error);
  }
  SUBCASE("a missing, corrupted or mis-shaped label_tokens.safetensors is an ldm::Error") {
    const auto state = std::filesystem::canonical(folder) / "training_state.safetensors";
    std::filesystem::remove(state);  // the table alone, as a released model's folder
    auto refused = [&](const char* what) {
      CAPTURE(what);
      Model fresh(1);
      CHECK_THROWS_WITH_AS(fresh.load(folder), doctest::Contains("label_tokens.safetensors"),
                           Error);
      CHECK_THROWS_WITH_AS(fresh.load(folder), doctest::Contains(what), Error);
    };
    std::filesystem::resize_file(file, std::filesystem::file_size(file) - 8);
    refused("data");
    std::vector<float> wrong(3 * row, 0.5f);
    io::SafetensorsWriter shaped;
    shaped.add("label_tokens", std::span<const float>(wrong), {3, 2, 6});
    shaped.write(file);
    refused("shape");
    std::vector<float> bad(table_size, 0.5f);
    bad[7] = INFINITY;
    io::SafetensorsWriter infinite;
    infinite.add("label_tokens", std::span<const float>(bad), {4, 2, 6});
    infinite.write(file);
    refused("label_tokens value 7");
    std::filesystem::remove(file);
    refused("missing");
  }
  std::filesystem::remove_all(folder);
}
