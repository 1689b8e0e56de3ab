// UNetCondition (diffusers' UNet2DConditionModel): two small models against diffusers
// (tools/golden/make_unet_condition_golden.py: forward, the training loss, every parameter
// gradient and the context's, in float64; ldm runs in float32: 1e-4 forward, 1e-3 step), the
// checkpoint folder diffusers wrote and the one ldm writes, gradients by central differences in
// double, the declared Scratch, and Stable Diffusion 1.5's and 2.1's configurations.
#include <doctest/doctest.h>
#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <ldm/ldm.hpp>
#include <ldm/pipeline/checkpoint.hpp>
#include <string>
#include <vector>

#include "support/golden.hpp"
#include "support/gradcheck.hpp"
#include "support/temp_folder.hpp"

using namespace ldm;

namespace {
constexpr index_t N = 2, Tokens = 3;
constexpr double forward_tolerance = 1e-4, step_tolerance = 1e-3;

// The golden script's two models: `conv` (heads (2, 4), transformer layers (2, 1), 1x1
// projections) and `linear` (2 heads everywhere, Linear projections, 3 classes).
constexpr UNetConditionConfig ConvConfig{.block_out_channels = {8, 16},
                                         .layers_per_block = 1,
                                         .cross_attention = {true, false},
                                         .attention_head_dim = {2, 4},
                                         .cross_attention_dim = 12,
                                         .transformer_layers_per_block = {2, 1},
                                         .norm_num_groups = 4};
constexpr UNetConditionConfig LinearConfig{.block_out_channels = {8, 16},
                                           .layers_per_block = 1,
                                           .cross_attention = {true, false},
                                           .attention_head_dim = {2},
                                           .cross_attention_dim = 12,
                                           .use_linear_projection = true,
                                           .norm_num_groups = 4,
                                           .num_class_embeds = 3};
using ConvUNet = models::UNetCondition<float, host, 4, 8, Tokens, ConvConfig>;
using LinearUNet = models::UNetCondition<float, host, 4, 8, Tokens, LinearConfig>;

const std::filesystem::path golden_folder =
    std::filesystem::path(LDM_TEST_DATA_DIR) / "golden" / "diffusers_unet_condition";

template <class U>
ldm::io::Json config_of() {
  return pipeline::unet_condition_config<U::config>(U::channels, U::resolution, 0.0);
}

// The folder's config.json must be the compiled configuration's, its weights exactly ldm's
// parameters (no name missing, none left over).
template <class U>
void load_folder(nn::Owned<U>& unet, const std::filesystem::path& folder) {
  pipeline::load_model_folder(folder, config_of<U>(), pipeline::unet_condition_defaults(),
                              pipeline::unet_condition_unchecked_fields(), unet.infos(),
                              unet.values().data());
}

void expect_close(const std::string& what, double error, double tolerance) {
  MESSAGE(what << ": largest relative error " << error);
  CHECK(error <= tolerance);
}

// train/diffusion_loss.hpp's objective (epsilon prediction) with the context passed to the UNet:
// x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise, loss = mean((unet(x_t, t, context) - noise)^2).
// Accumulates the parameter gradients and overwrites dcontext; returns the loss.
template <class U>
double diffusion_loss(const U& unet, const io::SafetensorsFile& golden,
                      View<float, typename U::template context<N>> dcontext) {
  using Sample = typename U::template sample<N>;
  Tensor<float, Sample> x0, noise, xt, target, prediction, d_prediction;
  Tensor<float, typename U::template context<N>> context;
  Tensor<std::int32_t, Shape<N>> timesteps, labels;
  Tensor<float, Shape<N>> t;
  test::read_activation(golden, "step.x0", x0.view());
  test::read_activation(golden, "step.noise", noise.view());
  test::read_activation(golden, "step.timesteps", timesteps.view());
  test::read_activation(golden, "step.context", context.view());
  if constexpr (U::config.num_class_embeds > 0)
    test::read_activation(golden, "step.labels", labels.view());
  const auto schedule = diffusion::Schedule::of<diffusion::LinearBetas<>>();
  diffusion::add_noise(schedule, x0, noise, timesteps, xt.view());
  diffusion::training_target(diffusion::PredictionType::epsilon, schedule, x0, noise, timesteps,
                             target.view());
  t = timesteps;
  typename U::template Saved<N> saved;
  unet.forward(xt, t, context, saved, prediction.view(), nn::inference, labels);
  const double loss = ops::mse_forward(View<const float, Sample>(prediction), target);
  ops::mse_backward(View<const float, Sample>(prediction), target, 1.0, d_prediction.view());
  unet.backward(xt, context, saved, d_prediction, View<float, Sample>(nullptr), dcontext, labels);
  return loss;
}

template <class U>
void check_against_golden(nn::Owned<U>& unet, const io::SafetensorsFile& golden) {
  Tensor<float, typename U::template sample<N>> x, y;
  Tensor<float, typename U::template context<N>> context, dcontext;
  Tensor<float, Shape<N>> timesteps;
  Tensor<std::int32_t, Shape<N>> labels;
  typename U::template Saved<N> saved;
  test::read_activation(golden, "forward.x", x.view());
  test::read_activation(golden, "forward.timesteps", timesteps.view());
  test::read_activation(golden, "forward.context", context.view());
  if constexpr (U::config.num_class_embeds > 0)
    test::read_activation(golden, "forward.labels", labels.view());
  unet->forward(x, timesteps, context, saved, y.view(), nn::inference, labels);
  expect_close("forward", test::activation_error(golden, "forward.output", y.view()),
               forward_tolerance);

  unet.grads() = 0.0f;
  const double loss = diffusion_loss(*unet, golden, dcontext.view());
  const double expected = test::read_all(golden, "step.loss").at(0);
  expect_close("loss", std::abs(loss - expected) / expected, step_tolerance);
  const auto worst = test::parameter_gradient_error(golden, unet.infos(), unet.grads().data());
  expect_close("parameter gradients (worst: " + worst.name + ")", worst.error, step_tolerance);
  expect_close("context gradient",
               test::activation_error(golden, "step.dcontext",
                                      View<const float, typename U::template context<N>>(dcontext)),
               step_tolerance);
}
}  // namespace

TEST_CASE("UNetCondition: attention_head_dim is read as heads, as diffusers does") {
  using Conv = detail::unet_condition_traits<ConvConfig>;
  using Linear = detail::unet_condition_traits<LinearConfig>;
  static_assert(Conv::heads(0) == 2 && Conv::head_dim(0) == 4);
  static_assert(Conv::heads(1) == 4 && Conv::head_dim(1) == 4);
  static_assert(Linear::heads(1) == 2 && Linear::head_dim(1) == 8);
  static_assert(Conv::transformer_layers(0) == 2 && Conv::transformer_layers(1) == 1);
  using SD15 = detail::unet_condition_traits<configs::StableDiffusion15UNet>;
  using SD21 = detail::unet_condition_traits<configs::StableDiffusion21UNet>;
  static_assert(SD15::heads(0) == 8 && SD15::head_dim(0) == 40 && SD15::head_dim(3) == 160);
  static_assert(SD21::heads(0) == 5 && SD21::head_dim(0) == 64 && SD21::heads(3) == 20 &&
                SD21::head_dim(3) == 64);
  const auto config = config_of<ConvUNet>();
  CHECK(config["_class_name"] == "UNet2DConditionModel");
  CHECK(config["attention_head_dim"] == ldm::io::Json::array({2, 4}));
  CHECK(config_of<LinearUNet>()["attention_head_dim"] == 2);
}

TEST_CASE(
    "UNetCondition against diffusers: 1x1 projections, two transformer layers, from the "
    "folder diffusers saved") {
  nn::Owned<ConvUNet> unet(0);
  load_folder(unet, golden_folder);
  check_against_golden(unet, test::open_golden("unet_condition_conv"));
}

TEST_CASE("UNetCondition against diffusers: Linear projections and a class embedding") {
  nn::Owned<LinearUNet> unet(0);
  auto golden = test::open_golden("unet_condition_linear");
  test::load_parameters(golden, unet.infos(), unet.values().data(), "param.");
  check_against_golden(unet, golden);
  Tensor<float, LinearUNet::sample<N>> x, y;
  Tensor<float, LinearUNet::context<N>> context;
  Tensor<float, Shape<N>> t;
  LinearUNet::Saved<N> saved;
  CHECK_THROWS_WITH_AS(unet->forward(x, t, context, saved, y.view()),
                       doctest::Contains("class-conditional"), Error);
}

TEST_CASE(
    "UNetCondition checkpoints: ldm's folder reads back; another configuration's is refused "
    "by field") {
  nn::Owned<LinearUNet> unet(3), reloaded(4);
  test::TempFolder temp;
  pipeline::save_model_folder(temp / "unet", config_of<LinearUNet>(), unet.infos(),
                              unet.values().data());
  load_folder(reloaded, temp / "unet");
  CHECK(std::equal(unet.values().data(), unet.values().data() + LinearUNet::parameter_count,
                   reloaded.values().data()));
  // The golden folder holds the `conv` model: 2 and 4 heads, not 2 everywhere.
  CHECK_THROWS_WITH_AS(load_folder(reloaded, golden_folder),
                       doctest::Contains("'attention_head_dim'"), Error);
}

TEST_CASE(
    "UNetCondition config.json: the short files older diffusers wrote match through the "
    "defaults; upcast_attention is not checked") {
  // The fields a diffusers 0.6 config.json of Stable Diffusion 1.5's form states; the others take
  // UNet2DConditionModel's defaults.
  auto sd15 = ldm::io::Json::parse(R"({
    "_class_name": "UNet2DConditionModel", "_diffusers_version": "0.6.0", "act_fn": "silu",
    "attention_head_dim": 8, "block_out_channels": [320, 640, 1280, 1280],
    "center_input_sample": false, "cross_attention_dim": 768,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                         "DownBlock2D"],
    "downsample_padding": 1, "flip_sin_to_cos": true, "freq_shift": 0, "in_channels": 4,
    "layers_per_block": 2, "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32,
    "out_channels": 4, "sample_size": 64,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D",
                       "CrossAttnUpBlock2D"]})");
  const auto check = [](const ldm::io::Json& file, const ldm::io::Json& expected) {
    pipeline::require_matching_config("config.json", file, expected,
                                      pipeline::unet_condition_defaults(),
                                      pipeline::unet_condition_unchecked_fields());
  };
  constexpr auto SD15Config = configs::StableDiffusion15UNet;
  constexpr auto SD21Config = configs::StableDiffusion21UNet;
  CHECK_NOTHROW(check(sd15, pipeline::unet_condition_config<SD15Config>(4, 64, 0.0)));
  // Stable Diffusion 2's form: heads per level, Linear projections, float32 attention asked for.
  auto sd21 = sd15;
  sd21["attention_head_dim"] = {5, 10, 20, 20};
  sd21["cross_attention_dim"] = 1024;
  sd21["use_linear_projection"] = true;
  sd21["upcast_attention"] = true;
  CHECK_NOTHROW(check(sd21, pipeline::unet_condition_config<SD21Config>(4, 64, 0.0)));
  CHECK_THROWS_WITH_AS(check(sd21, pipeline::unet_condition_config<SD15Config>(4, 64, 0.0)),
                       doctest::Contains("'attention_head_dim'"), Error);
  sd15.items().erase("cross_attention_dim");  // so diffusers' default, 1280, applies
  CHECK_THROWS_WITH_AS(check(sd15, pipeline::unet_condition_config<SD15Config>(4, 64, 0.0)),
                       doctest::Contains("'cross_attention_dim' is missing"), Error);
}

namespace {
// NHWC (or any other rank as is) to PyTorch's NCHW, for a file python reads.
template <class T, ShapeType S>
std::vector<float> torch_order(View<const T, S> a) {
  std::vector<float> v(std::size_t(S::size));
  if constexpr (S::rank == 4) {
    constexpr index_t B = S::extents[0], H = S::extents[1], W = S::extents[2], C = S::extents[3];
    for (index_t n = 0; n < B; ++n)
      for (index_t c = 0; c < C; ++c)
        for (index_t h = 0; h < H; ++h)
          for (index_t w = 0; w < W; ++w)
            v[std::size_t(((n * C + c) * H + h) * W + w)] = float(a(n, h, w, c));
  } else {
    for (index_t i = 0; i < S::size; ++i)
      v[std::size_t(i)] = float(a[i]);
  }
  return v;
}

// Writes U's folder (weights moved off PyTorch's initialisation, so that no norm is the identity
// and no bias zero) and <folder>_io.safetensors (x, t, context, labels, ldm's output y), and
// checks that the folder reads back to the same output.
template <class U>
void export_for_diffusers(const std::filesystem::path& folder) {
  nn::Owned<U> unet(7), reloaded(8);
  for (index_t i = 0; i < U::parameter_count; ++i)
    unet.values()[i] += 0.05f * float(std::sin(0.7 * double(i)));
  pipeline::save_model_folder(folder, config_of<U>(), unet.infos(), unet.values().data());
  Tensor<float, typename U::template sample<N>> x, y, y_reloaded;
  Tensor<float, typename U::template context<N>> context;
  Tensor<float, Shape<N>> t, labels_as_float;
  Tensor<std::int32_t, Shape<N>> labels;
  x = randn<typename U::template sample<N>>(1);
  context = randn<typename U::template context<N>>(2);
  t[0] = 17, t[1] = 640;
  labels[0] = 2, labels[1] = 0;
  labels_as_float = labels;
  typename U::template Saved<N> saved;
  unet->forward(x, t, context, saved, y.view(), nn::inference, labels);
  io::SafetensorsWriter io;
  const auto add = [&](const char* name, const auto& tensor, std::vector<std::int64_t> shape) {
    using Tn = std::remove_cvref_t<decltype(tensor)>;
    const auto values = torch_order(View<const float, typename Tn::shape>(tensor));
    io.add(name, values, std::move(shape));
  };
  add("x", x, {N, U::channels, U::resolution, U::resolution});
  add("y", y, {N, U::channels, U::resolution, U::resolution});
  add("context", context, {N, U::context_tokens, U::context_channels});
  add("t", t, {N});
  if constexpr (U::config.num_class_embeds > 0) add("labels", labels_as_float, {N});
  io.write(folder.string() + "_io.safetensors");

  load_folder(reloaded, folder);
  reloaded->forward(x, t, context, saved, y_reloaded.view(), nn::inference, labels);
  CHECK(std::equal(y.data(), y.data() + y.size, y_reloaded.data()));
}
}  // namespace

// tools/golden/check_unet_condition_folder.py runs diffusers' from_pretrained on these folders and
// compares its output with ldm's. By hand (it needs python):
//   LDM_EXPORT_UNET_CONDITION=/tmp/x build/host/tests/test_models_unet_condition
//   -tc='*from_pretrained*' python tools/golden/check_unet_condition_folder.py /tmp/x
TEST_CASE("UNetCondition: folders for diffusers' from_pretrained, with inputs and ldm's output") {
  test::TempFolder temp;
  const char* named = std::getenv("LDM_EXPORT_UNET_CONDITION");
  const std::filesystem::path folder = named ? std::filesystem::path(named) : temp.path;
  export_for_diffusers<ConvUNet>(folder / "conv");
  export_for_diffusers<LinearUNet>(folder / "linear");
}

namespace {
// Both projections, a cross-attention level at each resolution, per-level heads and transformer
// layers, a class embedding, dropout in training. A 1x1 convolution and a Linear compute the same
// function from the same flat buffer, so the two report the same errors, each through its own
// ops.
template <bool Linear>
void check_gradients() {
  constexpr UNetConditionConfig Config{.block_out_channels = {4, 8},
                                       .layers_per_block = 1,
                                       .cross_attention = {true, true},
                                       .attention_head_dim = {2, 4},
                                       .cross_attention_dim = 6,
                                       .use_linear_projection = Linear,
                                       .transformer_layers_per_block = {1, 2},
                                       .norm_num_groups = 2,
                                       .num_class_embeds = 3};
  using U = models::UNetCondition<double, host, 3, 4, /*Tokens*/ 2, Config>;
  nn::Owned<U> unet(3, /*dropout*/ 0.1f);
  unet.values() = randn<Shape<U::parameter_count>>(4) * 0.3;
  Tensor<double, typename U::template sample<N>> x, dx, y, g;
  Tensor<double, typename U::template context<N>> context, dcontext;
  x = randn<typename U::template sample<N>>(5);
  g = randn<typename U::template sample<N>>(6);
  context = randn<typename U::template context<N>>(7);
  Tensor<float, Shape<N>> t;
  t[0] = 3, t[1] = 801;
  Tensor<std::int32_t, Shape<N>> labels;
  labels[0] = 2, labels[1] = 0;
  typename U::template Saved<N> saved;
  const nn::Mode training{true, 11, 1};
  auto loss = [&] {
    unet->forward(x, t, context, saved, y.view(), training, labels);
    return test::dot(y.data(), g.data(), y.size);
  };
  loss();
  unet.grads() = 0.0;
  unet->backward(x, context, saved, g, dx.view(), dcontext.view(), labels);

  auto check = [&](const char* what, const std::vector<double>& analytic,
                   const std::vector<double>& numeric) {
    const double error = test::max_relative_error(analytic.data(), numeric);
    const std::string label = std::string(what) + (Linear ? " (Linear)" : " (1x1)");
    MESSAGE(label << ": largest relative error " << error);
    CHECK(error < 1e-6);
  };
  check("context", std::vector<double>(dcontext.data(), dcontext.data() + dcontext.size),
        test::numerical_gradient(loss, context.data(), context.size));
  check("dx", std::vector<double>(dx.data(), dx.data() + dx.size),
        test::numerical_gradient(loss, x.data(), x.size));
  // A spread of parameters: every layer type is in the buffer, so a stride that is prime to the
  // layers' sizes visits each kind.
  std::vector<double> analytic, numeric;
  for (index_t i = 5; i < U::parameter_count; i += 97) {
    analytic.push_back(unet.grads()[i]);
    numeric.push_back(test::numerical_gradient(loss, unet.values().data() + i, 1)[0]);
  }
  check("parameters", analytic, numeric);
}
}  // namespace

TEST_CASE(
    "UNetCondition: context, input and parameter gradients against finite differences "
    "(double)") {
  check_gradients<false>();
  check_gradients<true>();
}

TEST_CASE("UNetCondition: what forward and backward allocate is within the declared Scratch") {
  nn::Owned<ConvUNet> unet(1);
  Tensor<float, ConvUNet::sample<N>> x, y, dy, dx;
  Tensor<float, ConvUNet::context<N>> context, dcontext;
  Tensor<float, Shape<N>> t;
  ConvUNet::Saved<N> saved;
  x = randn<ConvUNet::sample<N>>(1);
  context = randn<ConvUNet::context<N>>(2);
  dy = randn<ConvUNet::sample<N>>(3);
  t = 10.0f;
  const auto declared = ConvUNet::scratch<N>(ops::this_host());
  std::size_t before = memory<host>::stats().in_use;
  memory<host>::reset_peak();
  unet->forward(x, t, context, saved, y.view());
  const std::size_t forward = memory<host>::stats().peak_in_use - before;
  before = memory<host>::stats().in_use;
  memory<host>::reset_peak();
  unet->backward(x, context, saved, dy, dx.view(), dcontext.view());
  const std::size_t backward = memory<host>::stats().peak_in_use - before;
  MESSAGE("forward allocates " << forward << " bytes (declared " << declared.forward
                               << "), backward " << backward << " (declared " << declared.backward
                               << ")");
  CHECK(forward <= declared.forward);
  CHECK(backward <= declared.backward);
  CHECK(backward >= declared.backward * 9 / 10);
}

namespace {
using SD15 = models::UNetCondition<float, host, 4, 8, /*Tokens*/ 4, configs::StableDiffusion15UNet>;
using SD21 = models::UNetCondition<float, host, 4, 8, 4, configs::StableDiffusion21UNet>;
}  // namespace

TEST_CASE("Stable Diffusion 1.5 and 2.1: parameter counts are diffusers'") {
  // diffusers 0.42.1: sum(p.numel() for p in UNet2DConditionModel(**config).parameters()) with
  // block_out_channels (320, 640, 1280, 1280), layers_per_block 2, down_block_types
  // 3 x CrossAttnDownBlock2D + DownBlock2D, up_block_types UpBlock2D + 3 x CrossAttnUpBlock2D,
  // and cross_attention_dim 768, attention_head_dim 8 (1.5) or cross_attention_dim 1024,
  // attention_head_dim (5, 10, 20, 20), use_linear_projection True (2.1).
  static_assert(SD15::parameter_count == 859520964);
  static_assert(SD21::parameter_count == 865910724);
}

TEST_CASE(
    "Stable Diffusion 1.5's UNet: built with diffusers' names, and a forward pass on 8x8 "
    "latents is finite") {
  // 3.4 GB of weights: filled by a cheap generator rather than PyTorch's initialisation (which
  // draws every element from Philox), and bound without a gradient buffer (the store's gradient
  // pointer is the weights' own: forward never touches it).
  Tensor<float, Shape<SD15::parameter_count>> weights;
  nn::ParameterStore<float> store{weights.data(), weights.data(), SD15::parameter_count, 0, {}};
  const SD15 unet{nn::ParameterBinder<float, host>(store)};
  REQUIRE(store.cursor == SD15::parameter_count);
  std::uint32_t state = 12345;
  for (const auto& info : store.infos) {
    float* v = weights.data() + info.offset;
    const float bound = info.init == nn::Init::ones ? 0.f : 1.f / std::sqrt(float(info.fan_in));
    const float base = info.init == nn::Init::ones ? 1.f : 0.f;
    for (index_t i = 0; i < info.size; ++i) {
      state = state * 1664525u + 1013904223u;
      v[i] = base + bound * (float(state >> 8) / float(1 << 24) * 2.f - 1.f);
    }
  }
  bool found_cross_attention = false;
  for (const auto& info : store.infos)
    if (info.name == "up_blocks.3.attentions.2.transformer_blocks.0.attn2.to_k.weight")
      found_cross_attention = info.torch_shape == std::vector<std::int64_t>{320, 768};
  CHECK(found_cross_attention);

  Tensor<float, SD15::sample<1>> x, y;
  Tensor<float, SD15::context<1>> context;
  Tensor<float, Shape<1>> t;
  x = randn<SD15::sample<1>>(1);
  context = randn<SD15::context<1>>(2);
  t = 500.0f;
  SD15::Saved<1> saved;
  const auto start = std::chrono::steady_clock::now();
  unet.forward(x, t, context, saved, y.view());
  MESSAGE(
      "forward: " << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()
                  << " s");
  bool finite = true;
  double magnitude = 0;
  for (index_t i = 0; i < y.size; ++i) {
    finite = finite && std::isfinite(y[i]);
    magnitude = std::max(magnitude, double(std::abs(y[i])));
  }
  CHECK(finite);
  CHECK(magnitude > 0);
}
