// The memory plans of LatentDiffusion (autoencoder_step_memory, diffusion_step_memory,
// sampling_memory, editing_memory) against the host allocator's measured peak, on the tiny
// configuration and a custom one. Each call is measured from a fresh pipeline, from before its
// construction, so the peak holds everything the plan claims: the pipeline's weights, gradients,
// optimiser state and EMA, the call's saved activations and workspaces (allocated by its first
// call), and its temporaries. Caller-owned tensors (the batch, the output images) are allocated
// before and not counted.
//
// The plans count every allocation of the host path they describe, so they come out at or just
// above the measured peak: they err on the high side where a bound is simpler than the exact
// path (a first layer's convolution, whose input gradient the diffusion step skips, is counted
// with it; the conv scratch assumes every thread takes a band buffer).
#include <doctest/doctest.h>

#include <omp.h>
#include <cstdio>
#include <ldm/ldm.hpp>

#include "support/small_pipeline.hpp"

using namespace ldm;

namespace {

struct Measured {
  std::size_t resident = 0;  // after construction
  std::size_t peak = 0;      // the most in use during construction and the call
};

// Constructs a pipeline and runs `call` on it twice, counting from before the construction. The
// second call finds every workspace of the first in place: that is the peak the plan describes
// (a first call allocates its workspaces as it reaches them, and can peak lower).
template <class Model, class Call>
Measured measure(const Call& call) {
  const std::size_t before = memory<host>::stats().in_use;
  memory<host>::reset_peak();
  Measured m;
  {
    Model model(/*seed*/ 1);
    m.resident = memory<host>::stats().in_use - before;
    call(model);
    call(model);
    m.peak = memory<host>::stats().peak_in_use - before;
  }
  CHECK(memory<host>::stats().in_use == before);
  return m;
}

std::size_t resident_of(const models::PeakMemory& m) {
  return m.parameters + m.gradients + m.optimizer_state + m.ema;
}

// The plan within 10% of the measured peak, in total and in what the call adds to what the
// pipeline owns (so that leaving out the temporaries, or the saved activations, fails).
void check_plan(const char* what, const models::PeakMemory& plan, const Measured& measured,
                bool training) {
  const double total = double(plan.total()), peak = double(measured.peak);
  const double call = double(plan.total() - resident_of(plan)),
               call_measured = double(measured.peak - measured.resident);
  std::printf(
      "%-40s plan %10zu measured %10zu (%+.2f%%); call plan %10zu measured %10zu "
      "(%+.2f%%); temporaries %zu\n",
      what, plan.total(), measured.peak, 100 * (total / peak - 1), plan.total() - resident_of(plan),
      measured.peak - measured.resident, 100 * (call / call_measured - 1), plan.temporaries);
  INFO(what);
  CHECK(resident_of(plan) == measured.resident);
  CHECK(total == doctest::Approx(peak).epsilon(0.10));
  CHECK(call == doctest::Approx(call_measured).epsilon(0.10));
  // Without the saved activations, or a training step's temporaries (its backward pass's), the
  // plan would be short by more than the tolerance.
  CHECK(call - double(plan.saved_activations) < 0.9 * call_measured);
  if (training) CHECK(call - double(plan.temporaries) < 0.9 * call_measured);
}

template <class Config, index_t N>
void check_pipeline(const char* name) {
  using Model = LatentDiffusion<Config>;
  const ops::HostScratch host = ops::this_host();
  using Images = typename Model::template images<N>;
  Tensor<float, Images> x, out;
  x = clamp(randn<Images>(100, 1) * 0.5f, -1.0, 1.0);

  const std::string prefix = std::string(name) + " N=" + std::to_string(N) + " ";
  check_plan((prefix + "autoencoder step").c_str(),
             Model::template autoencoder_step_memory<N>(host),
             measure<Model>([&](Model& m) { m.template autoencoder_step<N>(x); }), true);
  check_plan((prefix + "diffusion step").c_str(), Model::template diffusion_step_memory<N>(host),
             measure<Model>([&](Model& m) { m.template diffusion_step<N>(x); }), true);
  check_plan((prefix + "sampling").c_str(), Model::template sampling_memory<N>(host),
             measure<Model>([&](Model& m) { m.template sample<N>(m.sampler(2), 7, out.view()); }),
             false);
  check_plan(
      (prefix + "img2img").c_str(), Model::template editing_memory<N>(host),
      measure<Model>([&](Model& m) { m.template img2img<N>(m.sampler(2), 1.0, x, 7, out.view()); }),
      false);
  Tensor<float, typename Model::template masks<N>> mask;
  mask = 1.0f;
  check_plan((prefix + "inpaint").c_str(), Model::template editing_memory<N>(host),
             measure<Model>(
                 [&](Model& m) { m.template inpaint<N>(m.sampler(2), x, mask, 7, out.view()); }),
             false);
  // What a plan assumes without being told the host (64 threads): a little more.
  const auto assumed = Model::template diffusion_step_memory<N>();
  std::printf("%-40s plan for the default host %10zu\n", (prefix + "diffusion step").c_str(),
              assumed.total());
  CHECK(assumed.total() >= Model::template diffusion_step_memory<N>(host).total());
}

}  // namespace

TEST_CASE("the memory plans are known at compile time") {
  constexpr auto plan = LatentDiffusion<configs::Tiny>::diffusion_step_memory<32>();
  static_assert(plan.total() > plan.saved_activations && plan.temporaries > 0);
  static_assert(plan.total() < (std::size_t(1) << 30));
  CHECK(plan.parameters == 4 * std::size_t(LatentDiffusion<configs::Tiny>::AE::parameter_count +
                                           LatentDiffusion<configs::Tiny>::UNet::parameter_count));
}

TEST_CASE("the memory plans match the measured peak: tiny configuration") {
  check_pipeline<configs::Tiny, 4>("tiny");
}

TEST_CASE("the memory plans match the measured peak: a custom configuration") {
  check_pipeline<test::Small, 8>("small");
}

namespace {
// test::Small conditioned on 3 classes (and the null class).
struct SmallClasses : test::Small {
  static constexpr UNetConfig unet = [] {
    UNetConfig with_classes = test::Small::unet;
    with_classes.num_class_embeds = 4;
    return with_classes;
  }();
};
}  // namespace

TEST_CASE("the guided sampling plan matches the measured peak: a class-conditional model") {
  using Model = LatentDiffusion<SmallClasses>;
  constexpr index_t N = 8;
  Tensor<float, Model::images<N>> out;
  const pipeline::ClassConditioning condition{.labels = {0, 1, 2, 0, 1, 2, 3, 0},
                                              .guidance_scale = 3};
  check_plan("small, 3 classes N=8 guided sampling",
             Model::guided_sampling_memory<N>(ops::this_host()),
             measure<Model>([&](Model& m) { m.sample<N>(m.sampler(2), 7, condition, out.view()); }),
             false);
}

namespace {
// test::Small whose UNet attends to 3 tokens of 6 channels (a UNetConditionConfig).
struct SmallContext : test::Small {
  static constexpr UNetConditionConfig unet = test::small_cross_attention_unet;
  static constexpr index_t context_tokens = 3;
};
}  // namespace

TEST_CASE("the plans match the measured peak: a context-conditioned model") {
  using Model = LatentDiffusion<SmallContext>;
  constexpr index_t N = 8;
  Tensor<float, Model::images<N>> x, out;
  x = clamp(randn<Model::images<N>>(100, 1) * 0.5f, -1.0, 1.0);
  Tensor<float, Model::context<N>> context;
  context = randn<Model::context<N>>(200, 1);
  // The contexts' buffers are far below the 10% tolerance: a plan that left them out would also
  // fall below the measured peak, which the plans (counting every allocation) never do.
  auto check_context_plan = [](const char* what, const models::PeakMemory& plan,
                               const Measured& measured, bool training) {
    check_plan(what, plan, measured, training);
    CHECK(plan.total() >= measured.peak);
  };
  check_context_plan("small, context N=8 diffusion step",
                     Model::diffusion_step_memory<N>(ops::this_host()),
                     measure<Model>([&](Model& m) { m.diffusion_step<N>(x, context); }), true);
  check_context_plan("small, context N=8 sampling", Model::sampling_memory<N>(ops::this_host()),
                     measure<Model>([&](Model& m) {
                       m.sample<N>(m.sampler(2), 7, pipeline::ContextConditioning{context.view()},
                                   out.view());
                     }),
                     false);
  check_context_plan("small, context N=8 guided sampling",
                     Model::guided_sampling_memory<N>(ops::this_host()),
                     measure<Model>([&](Model& m) {
                       m.sample<N>(m.sampler(2), 7,
                                   pipeline::ContextConditioning{context.view(), 3.0}, out.view());
                     }),
                     false);
}

namespace {
// SmallContext's UNet reading 2 tokens from a learned table of 3 classes and the null label.
struct SmallTokens : test::Small {
  static constexpr UNetConditionConfig unet = test::small_cross_attention_unet;
  static constexpr index_t context_tokens = 2;
  static constexpr index_t label_classes = 3;
};
}  // namespace

TEST_CASE("the plans match the measured peak: a model with a label-token table") {
  using Model = LatentDiffusion<SmallTokens>;
  constexpr index_t N = 8;
  Tensor<float, Model::images<N>> x, out;
  x = clamp(randn<Model::images<N>>(100, 1) * 0.5f, -1.0, 1.0);
  const std::vector<std::int32_t> labels = {0, 1, 2, 0, 1, 2, 0, 1};
  // The table's buffers are far below the 10% tolerance, as the contexts' above: a plan that
  // left them out would fall below the measured peak.
  const Measured step = measure<Model>([&](Model& m) { m.diffusion_step<N>(x, labels); });
  const models::PeakMemory step_plan = Model::diffusion_step_memory<N>(ops::this_host());
  check_plan("small, label tokens N=8 diffusion step", step_plan, step, true);
  CHECK(step_plan.total() >= step.peak);
  const pipeline::ClassConditioning condition{.labels = labels, .guidance_scale = 3};
  const Measured guided =
      measure<Model>([&](Model& m) { m.sample<N>(m.sampler(2), 7, condition, out.view()); });
  const models::PeakMemory guided_plan = Model::guided_sampling_memory<N>(ops::this_host());
  check_plan("small, label tokens N=8 guided sampling", guided_plan, guided, false);
  CHECK(guided_plan.total() >= guided.peak);
}
