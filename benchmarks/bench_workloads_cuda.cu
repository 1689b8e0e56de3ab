// The GPU benchmark protocol of docs/models.md on ldm's CUDA backend: the three
// workloads at the `unet-bench` / `vae-bench` configurations, and the ops that dominate them at
// those configurations' shapes. benchmarks/pytorch/gpu_steps.py times the same workloads with
// diffusers; scripts/gpu-bench.sh runs both and prints the comparison.
//
//   unet-bench/train_step       batch 64: x0 ~ N(0, 1) latents 4x32x32, t uniform in [0, 1000),
//                               noise, x_t by the linear schedule, epsilon MSE, backward, AdamW
//                               (lr 1e-4). No gradient clipping and no EMA, on either side.
//   vae-bench/train_step        batch 8: x uniform in [-1, 1] at 3x256x256, encode, z = mean +
//                               std * eps, decode, L1 + 1e-6 KL, backward, AdamW (lr 1e-4).
//   unet-bench/ddim50_decode    50 DDIM steps (eta 0) for 64 latents, then one decode of all 64.
//
// Precision: float32 throughout, and cuBLAS never uses TF32. The backend has no bf16 mixed
// precision yet (docs/design.md), so the protocol's "bf16 with float32 master weights" is not
// what is timed here: the comparison is ldm float32 against PyTorch bf16 autocast.
//
// Timing: every step draws fresh inputs (Philox streams at a new offset per step), a few warm-up
// steps run first (they also fill the caching allocator), then each timed step is bracketed by
// CUDA events on ldm's stream. Counters: `ms` is the median step (ms_min / ms_max beside it),
// `TFLOP/s` = FLOP per step / median, `GB/s` = bytes per step / median for the ops, `peak_MiB` is
// the most device memory in use by ldm's allocator during the benchmark (weights, optimiser
// state, activations, temporaries). Each workload starts from an emptied cache and a reset peak,
// as gpu_steps.py resets PyTorch's.
//
//   bench_workloads_cuda [--ldm_warmup=3] [--ldm_steps=20] [Google Benchmark flags]
//
// The timed iteration count is fixed (Iterations), so --benchmark_min_time has no effect.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <ldm/cuda.cuh>
#include <span>
#include <string>
#include <vector>

#include "benchmark_main.hpp"

namespace {

using ldm::index_t;
using ldm::Shape;
using ldm::Tensor;
using ldm::View;
using Device = ldm::cuda;

using Config = ldm::configs::UNetBench;
using AE = ldm::models::AutoencoderKL<float, Device, Config::image_channels, Config::resolution,
                                      Config::autoencoder>;
using UNet = ldm::models::UNet<float, Device, AE::latent_channels, AE::latent_res, Config::unet>;

constexpr index_t kUNetBatch = 64, kVaeBatch = 8, kSampleBatch = 64;
constexpr int kDdimSteps = 50;
constexpr double kLearningRate = 1e-4;

// ---------------------------------------------------------------------------------------------
// FLOP per step, from the configuration. Counted as diffusers builds the models: every
// convolution (Ho * Wo * KH * KW * Cin * Cout multiply-adds), every Linear (time embedding,
// time_emb_proj, attention's to_q/to_k/to_v/to_out) and attention's two batched products
// (Q K^T and P V: 2 * L^2 * C). Normalisations, activations and other elementwise work are left
// out, as published FLOP counts of these networks leave them out. FLOP = 2 * multiply-adds; a
// training step counts 3x its forward pass (the backward pass computes input and weight
// gradients, two products of the forward's size each).
namespace flop {

constexpr double conv(index_t res, index_t ci, index_t co, index_t k = 3) {
  return double(res) * double(res) * double(k * k) * double(ci) * double(co);
}
// ResnetBlock2D: two 3x3 convolutions, a 1x1 shortcut when the channels change, and the time
// embedding's projection (UNet only: temb = 0 in the autoencoder).
constexpr double resnet(index_t res, index_t ci, index_t co, index_t temb = 0) {
  return conv(res, ci, co) + conv(res, co, co) + (ci != co ? conv(res, ci, co, 1) : 0.0) +
         double(temb) * double(co);
}
// Attention over res * res tokens of c channels; the head count does not change the work.
constexpr double attention(index_t res, index_t c) {
  const double tokens = double(res) * double(res);
  return 4 * tokens * double(c) * double(c) + 2 * tokens * tokens * double(c);
}

// One sample's forward pass of UNet2DModel on `channels` x res x res latents.
template <ldm::UNetConfig Cfg>
constexpr double unet_forward(index_t res, index_t channels) {
  constexpr auto Ch = Cfg.block_out_channels;
  constexpr int levels = Ch.size();
  // diffusers' time embedding is 4 x the first level's channels wide.
  constexpr index_t per_level = Cfg.layers_per_block, emb = 4 * Ch[0];
  // The skips' channels in the order the down path pushes them (conv_in, each resnet, each
  // downsampler); the up path pops them, one per resnet.
  std::array<index_t, 1 + levels*(per_level + 1)> skips{};
  int pushed = 0;
  double macs = double(Ch[0]) * emb + double(emb) * emb + conv(res, channels, Ch[0]);
  index_t c = Ch[0];
  skips[pushed++] = c;
  for (int l = 0; l < levels; ++l) {
    for (index_t i = 0; i < per_level; ++i) {
      macs += resnet(res, c, Ch[l], emb);
      c = Ch[l];
      if (Cfg.attention[l]) macs += attention(res, c);
      skips[pushed++] = c;
    }
    if (l + 1 < levels) {
      res /= 2;
      macs += conv(res, c, c);
      skips[pushed++] = c;
    }
  }
  macs += 2 * resnet(res, c, c, emb) + attention(res, c);
  for (int l = levels - 1; l >= 0; --l) {
    for (index_t i = 0; i <= per_level; ++i) {
      macs += resnet(res, c + skips[--pushed], Ch[l], emb);
      c = Ch[l];
      if (Cfg.attention[l]) macs += attention(res, c);
    }
    if (l > 0) {
      res *= 2;
      macs += conv(res, c, c);  // nearest x2, then conv3x3
    }
  }
  return 2 * (macs + conv(res, c, channels));
}

// Encoder + quant_conv: images to the posterior's moments. The downsampler pads (0, 1, 0, 1) and
// convolves with stride 2, so it produces res / 2 pixels like the UNet's.
template <ldm::AutoencoderKLConfig Cfg>
constexpr double encoder_forward(index_t res, index_t channels) {
  constexpr auto Ch = Cfg.block_out_channels;
  constexpr index_t z2 = 2 * Cfg.latent_channels;
  double macs = conv(res, channels, Ch[0]);
  index_t c = Ch[0];
  for (int l = 0; l < Ch.size(); ++l) {
    for (index_t i = 0; i < Cfg.layers_per_block; ++i) {
      macs += resnet(res, c, Ch[l]);
      c = Ch[l];
    }
    if (l + 1 < Ch.size()) {
      res /= 2;
      macs += conv(res, c, c);
    }
  }
  macs += 2 * resnet(res, c, c) + attention(res, c) + conv(res, c, z2) + conv(res, z2, z2, 1);
  return 2 * macs;
}

// post_quant_conv + Decoder: latents (res = the latent resolution) to images.
template <ldm::AutoencoderKLConfig Cfg>
constexpr double decoder_forward(index_t res, index_t channels) {
  constexpr auto Ch = Cfg.block_out_channels;
  constexpr index_t z = Cfg.latent_channels;
  double macs = conv(res, z, z, 1) + conv(res, z, Ch[Ch.size() - 1]);
  index_t c = Ch[Ch.size() - 1];
  macs += 2 * resnet(res, c, c) + attention(res, c);
  for (int l = Ch.size() - 1; l >= 0; --l) {
    for (index_t i = 0; i <= Cfg.layers_per_block; ++i) {
      macs += resnet(res, c, Ch[l]);
      c = Ch[l];
    }
    if (l > 0) {
      res *= 2;
      macs += conv(res, c, c);
    }
  }
  return 2 * (macs + conv(res, c, channels));
}

constexpr bool within_half_percent(double value, double reference) {
  return value > reference * 0.995 && value < reference * 1.005;
}

using Tiny = ldm::configs::Tiny;
constexpr index_t tiny_latent_res =
    ldm::models::AutoencoderKL<float, ldm::host, Tiny::image_channels, Tiny::resolution,
                               Tiny::autoencoder>::latent_res;
constexpr double tiny_ae =
    encoder_forward<Tiny::autoencoder>(Tiny::resolution, Tiny::image_channels) +
    decoder_forward<Tiny::autoencoder>(tiny_latent_res, Tiny::image_channels);
// docs/models.md's figures, from an independent count: the formulas above must reproduce them.
static_assert(within_half_percent(unet_forward<Tiny::unet>(tiny_latent_res, 4), 46e6),
              "the UNet FLOP count disagrees with docs/models.md's 46 MFLOP for `tiny`");
static_assert(within_half_percent(tiny_ae, 263e6),
              "the autoencoder FLOP count disagrees with docs/models.md's 263 MFLOP for `tiny`");
static_assert(within_half_percent(unet_forward<Config::unet>(AE::latent_res, 4), 18.1e9),
              "the UNet FLOP count disagrees with docs/models.md's 18.1 GFLOP for `unet-bench`");

constexpr double unet_sample = unet_forward<Config::unet>(AE::latent_res, AE::latent_channels);
constexpr double decode_sample =
    decoder_forward<Config::autoencoder>(AE::latent_res, Config::image_channels);
constexpr double ae_sample =
    encoder_forward<Config::autoencoder>(Config::resolution, Config::image_channels) +
    decode_sample;

constexpr double unet_step = 3 * unet_sample * kUNetBatch;
constexpr double vae_step = 3 * ae_sample * kVaeBatch;
constexpr double sampling = (kDdimSteps * unet_sample + decode_sample) * kSampleBatch;

}  // namespace flop

// ---------------------------------------------------------------------------------------------
// Timing.

struct Protocol {
  int warmup = 3;
  int steps = 20;
};
Protocol protocol;

// Distinct Philox offsets per draw and step, so every step sees fresh inputs.
std::uint64_t stream(std::uint64_t purpose, std::uint64_t step) {
  return (purpose << 40) | step;
}

// What a workload starts from: nothing cached, so its peak is its own.
void start_workload() {
  ldm::cuda_device::synchronize();
  ldm::cuda_device::empty_cache();
  ldm::cuda_device::reset_peak_memory();
}

// Runs `step(k)` for the warm-up steps, then once per benchmark iteration between two events;
// `step` must only queue work on ldm's stream (or wait for it).
template <class Step>
void time_steps(benchmark::State& state, const Step& step, double flop_per_step,
                double bytes_per_step = 0) {
  std::uint64_t k = 0;
  for (int i = 0; i < protocol.warmup; ++i)
    step(k++);
  ldm::cuda_device::synchronize();
  ldm::cuda_device::Event start, stop;
  std::vector<double> ms;
  for (auto _ : state) {
    start.record();
    step(k++);
    stop.record();
    const double elapsed = stop.elapsed_since(start);
    state.SetIterationTime(elapsed / 1e3);
    ms.push_back(elapsed);
  }
  std::sort(ms.begin(), ms.end());
  const std::size_t n = ms.size();
  const double median = n % 2 ? ms[n / 2] : (ms[n / 2 - 1] + ms[n / 2]) / 2;
  state.counters["ms"] = median;
  state.counters["ms_min"] = ms.front();
  state.counters["ms_max"] = ms.back();
  if (flop_per_step > 0) {
    state.counters["GFLOP"] = flop_per_step / 1e9;
    state.counters["TFLOP/s"] = flop_per_step / (median * 1e-3) / 1e12;
  }
  if (bytes_per_step > 0) state.counters["GB/s"] = bytes_per_step / (median * 1e-3) / 1e9;
  state.counters["peak_MiB"] = double(ldm::cuda_device::memory_stats().peak_in_use) / (1 << 20);
}

template <index_t Count>
std::span<float> span(View<float, Shape<Count>, Device> v) {
  return {v.data(), std::size_t(Count)};
}

// ---------------------------------------------------------------------------------------------
// The three workloads. Each is a template over its batch although it is instantiated once: nvcc
// 13.0's front end re-spelled a non-dependent UNet::Saved<64>, met under two constants of value
// 64, as `Saved<signed long(kUNetBatch)>`, which the host compiler parses as a function type.

template <index_t N>
void unet_train_step(benchmark::State& state) {
  using Sample = UNet::sample<N>;
  start_workload();
  ldm::nn::Owned<UNet, Device> unet(1);
  ldm::train::AdamW<Device> adamw({.lr = kLearningRate}, UNet::parameter_count);
  const auto schedule = ldm::diffusion::Schedule::of<Config::schedule>();
  const double last_timestep = schedule.num_train_timesteps() - 1;
  UNet::Saved<N> saved;
  Tensor<float, Sample, Device> x0, noise;
  Tensor<std::int32_t, Shape<N>, Device> timesteps;
  time_steps(
      state,
      [&](std::uint64_t k) {
        x0 = ldm::randn<Sample>(1, stream(1, k));
        noise = ldm::randn<Sample>(1, stream(2, k));
        // Assigning to int32 truncates: floor(u * 1000) for u in (0, 1); the clamp keeps a u that
        // rounds to 1 inside the schedule.
        timesteps = ldm::clamp(ldm::rand<Shape<N>>(1, stream(3, k)) * float(last_timestep + 1), 0.0,
                               last_timestep);
        unet.grads() = 0.0f;
        ldm::train::diffusion_loss_and_gradients<N>(*unet, saved, x0, noise, timesteps, schedule,
                                                    ldm::diffusion::PredictionType::epsilon);
        adamw.step(span(unet.values()), span(unet.grads()));
      },
      flop::unet_step);
}

template <index_t N>
void vae_train_step(benchmark::State& state) {
  using Images = AE::images<N>;
  using Latents = AE::latents<N>;
  start_workload();
  ldm::nn::Owned<AE, Device> ae(2);
  ldm::train::AdamW<Device> adamw({.lr = kLearningRate}, AE::parameter_count);
  const ldm::train::AutoencoderLossConfig loss{
      .pixel = ldm::train::PixelLoss::l1, .perceptual_weight = 0, .kl_weight = 1e-6};
  ldm::train::NoPerceptual no_perceptual;  // the protocol times the perceptual term apart
  AE::Saved<N> saved;
  Tensor<float, Images, Device> x, reconstruction;
  Tensor<float, Latents, Device> eps;
  time_steps(
      state,
      [&](std::uint64_t k) {
        x = ldm::rand<Images>(2, stream(1, k)) * 2.0f - 1.0f;
        eps = ldm::randn<Latents>(2, stream(2, k));
        ae.grads() = 0.0f;
        ldm::train::autoencoder_loss_and_gradients<N, AE, ldm::train::NoPerceptual, float, Device>(
            *ae, saved, x, eps, loss, no_perceptual, reconstruction.view());
        adamw.step(span(ae.values()), span(ae.grads()));
      },
      flop::vae_step);
}

// DDIM as diffusers' DDIMScheduler with eta 0 and no clipping, on the UNet's own weights (no EMA
// copy, unlike LatentDiffusion::sample), so the work is exactly gpu_steps.py's.
template <index_t N>
void ddim50_decode(benchmark::State& state) {
  using Latents = AE::latents<N>;
  start_workload();
  ldm::nn::Owned<UNet, Device> unet(1);
  ldm::nn::Owned<AE, Device> ae(2);
  ldm::diffusion::DDIMConfig ddim;
  ddim.clip_sample = false;
  const ldm::diffusion::DDIM sampler(ldm::diffusion::Schedule::of<Config::schedule>(), ddim,
                                     kDdimSteps);
  UNet::Saved<N> saved;
  // decode() keeps the decoder's activations as training would (AE::DecodeSaved<64> is about
  // 66 GiB): the peak below is dominated by it.
  AE::DecodeSaved<N> decode_saved;
  Tensor<float, Latents, Device> x, eps;
  Tensor<float, Shape<N>, Device> t;
  Tensor<float, AE::images<N>, Device> decoded;
  time_steps(
      state,
      [&](std::uint64_t k) {
        x = ldm::randn<Latents>(3, stream(1, k));
        for (const int timestep : sampler.timesteps()) {
          t = float(timestep);
          unet->forward(x, t, saved, eps.view());
          sampler.step(eps, timestep, x, 0.0f, x.view());  // may write over its input
        }
        ae->decode(x, decode_saved, decoded.view());
      },
      flop::sampling);
}

// ---------------------------------------------------------------------------------------------
// The ops that dominate those workloads, at their shapes. Bytes count each tensor the op's
// interface reads or writes once (accumulated gradients twice): the least traffic the op needs,
// so GB/s compares with the memory's bandwidth (about 4.8 TB/s on an H200).

constexpr double kFloat = sizeof(float);

// An ldm::Error (out of memory, say) fails that benchmark only: the others still run and the JSON
// output is still written.
template <class Body>
benchmark::internal::Benchmark* add(const std::string& name, Body body) {
  return benchmark::RegisterBenchmark(name.c_str(),
                                      [body](benchmark::State& state) {
                                        try {
                                          body(state);
                                        } catch (const std::exception& error) {
                                          state.SkipWithError(error.what());
                                        }
                                      })
      ->UseManualTime()
      ->Iterations(protocol.steps)
      ->Unit(benchmark::kMillisecond);
}

// Conv2d 3x3, stride 1, Ci -> Co at Res x Res, batch N: forward, input gradient and weight
// gradient.
template <index_t N, index_t Res, index_t Ci, index_t Co>
void add_conv(const std::string& where) {
  using G = ldm::ops::conv_same<3>;
  using XS = Shape<N, Res, Res, Ci>;
  using WS = Shape<Co, 3, 3, Ci>;
  using YS = Shape<N, Res, Res, Co>;
  using BS = Shape<Co>;
  static constexpr double flop = 2.0 * double(YS::size) * 9 * Ci;
  const std::string name = "op/" + where + "/conv3x3_" + std::to_string(Ci) + "to" +
                           std::to_string(Co) + "_" + std::to_string(Res) + "px_b" +
                           std::to_string(N);
  // Operands live as long as the benchmark: each body makes its own.
  struct Operands {
    Tensor<float, XS, Device> x, dx;
    Tensor<float, WS, Device> w, dw;
    Tensor<float, BS, Device> b, db;
    Tensor<float, YS, Device> y, dy;
    Operands() {
      x = ldm::randn<XS>(4, 1);
      w = ldm::randn<WS>(4, 2) * 0.02f;
      b = ldm::randn<BS>(4, 3);
      dy = ldm::randn<YS>(4, 4);
    }
  };
  add(name + "/forward", [](benchmark::State& state) {
    start_workload();
    Operands o;
    time_steps(
        state, [&](std::uint64_t) { ldm::ops::conv2d_forward<G>(o.x, o.w, o.b, o.y.view()); }, flop,
        kFloat * (XS::size + WS::size + BS::size + YS::size));
  });
  add(name + "/backward_data", [](benchmark::State& state) {
    start_workload();
    Operands o;
    time_steps(
        state, [&](std::uint64_t) { ldm::ops::conv2d_backward_input<G>(o.w, o.dy, o.dx.view()); },
        flop, kFloat * (WS::size + YS::size + XS::size));
  });
  add(name + "/backward_weight", [](benchmark::State& state) {
    start_workload();
    Operands o;
    time_steps(
        state,
        [&](std::uint64_t) {
          ldm::ops::conv2d_backward_params<G>(o.x, o.dy, o.dw.view(), o.db.view());
        },
        flop, kFloat * (XS::size + YS::size + 2 * (WS::size + BS::size)));
  });
}

// GroupNorm(32 groups) + SiLU over N x Res x Res x C, as every ResnetBlock2D opens with.
template <index_t N, index_t Res, index_t C>
void add_group_norm_silu(const std::string& where, float eps) {
  using XS = Shape<N, Res, Res, C>;
  using CS = Shape<C>;
  using GS = Shape<N, 32>;
  const std::string name = "op/" + where + "/group_norm_silu_" + std::to_string(C) + "ch_" +
                           std::to_string(Res) + "px_b" + std::to_string(N);
  struct Operands {
    Tensor<float, XS, Device> x, y, dy, dx;
    Tensor<float, CS, Device> gamma, beta, dgamma, dbeta;
    Tensor<float, GS, Device> mean, rstd;
    Operands() {
      x = ldm::randn<XS>(5, 1);
      dy = ldm::randn<XS>(5, 2);
      gamma = 1.0f + ldm::randn<CS>(5, 3) * 0.1f;
      beta = ldm::randn<CS>(5, 4) * 0.1f;
    }
  };
  add(name + "/forward", [eps](benchmark::State& state) {
    start_workload();
    Operands o;
    time_steps(
        state,
        [&](std::uint64_t) {
          ldm::ops::group_norm_forward<32, ldm::ops::NormActivation::silu>(
              o.x, o.gamma, o.beta, eps, o.y.view(), o.mean.view(), o.rstd.view());
        },
        0, kFloat * 2 * XS::size);
  });
  add(name + "/backward", [eps](benchmark::State& state) {
    start_workload();
    Operands o;
    ldm::ops::group_norm_forward<32, ldm::ops::NormActivation::silu>(
        o.x, o.gamma, o.beta, eps, o.y.view(), o.mean.view(), o.rstd.view());
    time_steps(
        state,
        [&](std::uint64_t) {
          ldm::ops::group_norm_backward<32, ldm::ops::NormActivation::silu>(
              o.x, o.gamma, o.beta, o.mean, o.rstd, o.dy, o.dx.view(), o.dgamma.view(),
              o.dbeta.view());
        },
        0, kFloat * 3 * XS::size);
  });
}

// Attention's core (Q K^T, softmax, P V) over N x L tokens of C channels in Heads heads; the
// projections are Linear layers, timed as GEMMs elsewhere.
template <index_t N, index_t L, index_t C, index_t Heads>
void add_attention(const std::string& where) {
  using TS = Shape<N, L, C>;
  using PS = Shape<N, Heads, L, L>;
  static constexpr double forward_flop = 4.0 * N * double(L) * L * C;
  const std::string name = "op/" + where + "/attention_" + std::to_string(L) + "tok_" +
                           std::to_string(C) + "ch_" + std::to_string(Heads) + "h_b" +
                           std::to_string(N);
  struct Operands {
    Tensor<float, TS, Device> q, k, v, out, dout, dq, dk, dv;
    Tensor<float, PS, Device> probs;
    Operands() {
      q = ldm::randn<TS>(6, 1);
      k = ldm::randn<TS>(6, 2);
      v = ldm::randn<TS>(6, 3);
      dout = ldm::randn<TS>(6, 4);
    }
  };
  add(name + "/forward", [](benchmark::State& state) {
    start_workload();
    Operands o;
    time_steps(
        state,
        [&](std::uint64_t) {
          ldm::ops::attention_forward<Heads>(o.q, o.k, o.v, o.out.view(), o.probs.view());
        },
        forward_flop, kFloat * (4 * TS::size + PS::size));
  });
  add(name + "/backward", [](benchmark::State& state) {
    start_workload();
    Operands o;
    ldm::ops::attention_forward<Heads>(o.q, o.k, o.v, o.out.view(), o.probs.view());
    time_steps(
        state,
        [&](std::uint64_t) {
          ldm::ops::attention_backward<Heads>(o.q, o.k, o.v, o.probs, o.dout, o.dq.view(),
                                              o.dk.view(), o.dv.view());
        },
        2 * forward_flop, kFloat * (7 * TS::size + PS::size));
  });
}

// One AdamW update over the UNet's parameters: reads p, g, m, v and writes p, m, v.
void adamw_unet(benchmark::State& state) {
  constexpr index_t Count = UNet::parameter_count;
  start_workload();
  Tensor<float, Shape<Count>, Device> params, grads;
  params = ldm::randn<Shape<Count>>(7, 1) * 0.02f;
  grads = ldm::randn<Shape<Count>>(7, 2) * 1e-3f;
  ldm::train::AdamW<Device> adamw({.lr = kLearningRate}, Count);
  time_steps(
      state, [&](std::uint64_t) { adamw.step(span(params.view()), span(grads.view())); }, 0,
      kFloat * 7 * double(Count));
}

void register_all() {
  add("unet-bench/train_step", unet_train_step<kUNetBatch>);
  add("vae-bench/train_step", vae_train_step<kVaeBatch>);
  add("unet-bench/ddim50_decode", ddim50_decode<kSampleBatch>);

  // The UNet's three levels (each 3x3 conv is 151 M multiply-adds per sample at every level).
  add_conv<kUNetBatch, 32, 128, 128>("unet-bench");
  add_conv<kUNetBatch, 16, 256, 256>("unet-bench");
  add_conv<kUNetBatch, 8, 512, 512>("unet-bench");
  // The autoencoder's three heaviest shapes, 59% of its convolution FLOP.
  add_conv<kVaeBatch, 64, 512, 512>("vae-bench");
  add_conv<kVaeBatch, 256, 128, 128>("vae-bench");
  add_conv<kVaeBatch, 128, 256, 256>("vae-bench");

  add_group_norm_silu<kUNetBatch, 32, 128>("unet-bench", 1e-5f);
  add_group_norm_silu<kVaeBatch, 256, 128>("vae-bench", 1e-6f);

  add_attention<kUNetBatch, 16 * 16, 256, 256 / 32>("unet-bench");  // level 1
  add_attention<kUNetBatch, 8 * 8, 512, 512 / 32>("unet-bench");    // level 2 and the mid block
  add_attention<kVaeBatch, 32 * 32, 512, 1>("vae-bench");           // the mid block, one head

  add("unet-bench/adamw", adamw_unet);
}

// Takes --ldm_warmup=N and --ldm_steps=N out of argv; Google Benchmark refuses flags it does not
// know.
void parse_protocol(int& argc, char** argv) {
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const auto value = [&](const char* flag) -> const char* {
      const std::size_t length = std::strlen(flag);
      return std::strncmp(argv[i], flag, length) == 0 ? argv[i] + length : nullptr;
    };
    if (const char* v = value("--ldm_warmup=")) {
      protocol.warmup = std::max(0, std::atoi(v));
    } else if (const char* v = value("--ldm_steps=")) {
      protocol.steps = std::max(1, std::atoi(v));
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
}

}  // namespace

int main(int argc, char** argv) {
  if (bench::version_asked(argc, argv)) return 0;
  parse_protocol(argc, argv);
  if (!ldm::cuda_device::available()) {
    std::fprintf(stderr, "bench_workloads_cuda: no CUDA device\n");
    return 77;
  }
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("ldm_version", ldm::version.string);
  benchmark::AddCustomContext("precision", "float32 (no TF32)");
  benchmark::AddCustomContext("warmup_steps", std::to_string(protocol.warmup));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
