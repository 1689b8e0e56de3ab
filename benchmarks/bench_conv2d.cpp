// Conv2d on the host at the shapes of the `tiny` configuration (docs/models.md), batch 32,
// float. Each convolution runs once per instruction set of the direct kernels that the CPU has
// (ops/conv2d/direct_simd.hpp: conv/avx512, conv/avx2) and on im2col + BLAS (conv/none), side by
// side; then the BLAS's sgemm at the GEMM the convolution lowers to (M = N*Ho*Wo, N = Cout,
// K = KH*KW*Cin, same transposes), as one call on prebuilt operands. For the im2col path the
// ratio of the FLOP/s columns is what im2col, col2im, chunking and the bias cost; the direct
// kernels make no such GEMM, so there it compares them with the BLAS at the same arithmetic. On a
// noisy machine, interleave repetitions:
//   bench_conv2d --benchmark_repetitions=5 --benchmark_enable_random_interleaving=true
//                --benchmark_report_aggregates_only=true

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include <ldm/ldm.hpp>
#include <ldm/ops/conv2d.hpp>

#include "benchmark_main.hpp"

using namespace ldm;

namespace {

constexpr index_t kBatch = 32;

#if LDM_CONV2D_DIRECT
namespace simd = ops::detail::direct;
using Isa = simd::Isa;

// The instruction sets this CPU runs, widest first, then none (im2col + BLAS).
std::vector<Isa> isas_here() {
  std::vector<Isa> isas;
  for (const Isa isa : {Isa::avx512, Isa::avx2, Isa::none})
    if (isa <= simd::widest_isa()) isas.push_back(isa);
  return isas;
}
std::string label(Isa isa) {
  return std::string(simd::isa_name(isa));
}
void use_isa(Isa isa) {
  simd::selected_isa().store(isa);
}
#else
// Without the direct kernels there is only the im2col path.
enum class Isa { none };
std::vector<Isa> isas_here() {
  return {Isa::none};
}
std::string label(Isa) {
  return "none";
}
void use_isa(Isa) {
}
#endif

void report_flops(benchmark::State& state, double flops_per_iteration) {
  state.counters["FLOP/s"] =
      benchmark::Counter(flops_per_iteration, benchmark::Counter::kIsIterationInvariantRate);
}

template <class G, index_t H, index_t W, index_t Ci, index_t Co>
void register_shape(const std::string& name) {
  using XS = Shape<kBatch, H, W, Ci>;
  using WS = Shape<Co, G::kh, G::kw, Ci>;
  using YS = ops::conv2d_output_t<G, XS, Co>;
  constexpr index_t m = YS::size / Co, k = G::kh * G::kw * Ci;
  constexpr double flops = 2.0 * double(m) * double(Co) * double(k);
  using Cols = Shape<m, k>;

  auto add = [&](const std::string& what, auto body) {
    benchmark::RegisterBenchmark((name + "/" + what).c_str(), body)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  };
  // body(state) once per instruction set, as <what>/<isa>.
  auto add_per_isa = [&](const std::string& what, auto body) {
    for (const Isa isa : isas_here())
      add(what + "/" + label(isa), [isa, body](benchmark::State& state) {
        use_isa(isa);
        body(state);
      });
  };

  add_per_isa("forward/conv", [](benchmark::State& state) {
    const Tensor<float, XS> x(randn<XS>(1, 0));
    const Tensor<float, WS> w(randn<WS>(1, 1));
    const Tensor<float, Shape<Co>> b(randn<Shape<Co>>(1, 2));
    Tensor<float, YS> y;
    for (auto _ : state) {
      ops::conv2d_forward<G>(x, w, b, y);
      benchmark::DoNotOptimize(y.data());
      benchmark::ClobberMemory();
    }
    report_flops(state, flops);
  });
  add("forward/sgemm", [](benchmark::State& state) {
    const Tensor<float, Cols> cols(randn<Cols>(1, 0));
    const Tensor<float, WS> w(randn<WS>(1, 1));
    Tensor<float, YS> y;
    for (auto _ : state) {
      ops::gemm(host{}, ops::Trans::no, ops::Trans::yes, int(m), int(Co), int(k), 1.0f, cols.data(),
                w.data(), 0.0f, y.data());
      benchmark::DoNotOptimize(y.data());
      benchmark::ClobberMemory();
    }
    report_flops(state, flops);
  });
  add_per_isa("backward_input/conv", [](benchmark::State& state) {
    const Tensor<float, WS> w(randn<WS>(1, 1));
    const Tensor<float, YS> dy(randn<YS>(1, 3));
    Tensor<float, XS> dx;
    for (auto _ : state) {
      ops::conv2d_backward_input<G>(w, dy, dx);
      benchmark::DoNotOptimize(dx.data());
      benchmark::ClobberMemory();
    }
    report_flops(state, flops);
  });
  add("backward_input/sgemm", [](benchmark::State& state) {
    const Tensor<float, WS> w(randn<WS>(1, 1));
    const Tensor<float, YS> dy(randn<YS>(1, 3));
    Tensor<float, Cols> dcols;
    for (auto _ : state) {
      ops::gemm(host{}, ops::Trans::no, ops::Trans::no, int(m), int(k), int(Co), 1.0f, dy.data(),
                w.data(), 0.0f, dcols.data());
      benchmark::DoNotOptimize(dcols.data());
      benchmark::ClobberMemory();
    }
    report_flops(state, flops);
  });
  add_per_isa("backward_params/conv", [](benchmark::State& state) {
    const Tensor<float, XS> x(randn<XS>(1, 0));
    const Tensor<float, YS> dy(randn<YS>(1, 3));
    Tensor<float, WS> dw;
    Tensor<float, Shape<Co>> db;
    for (auto _ : state) {
      ops::conv2d_backward_params<G>(x, dy, dw, db);
      benchmark::DoNotOptimize(dw.data());
      benchmark::ClobberMemory();
    }
    report_flops(state, flops);
  });
  add("backward_params/sgemm", [](benchmark::State& state) {
    const Tensor<float, Cols> cols(randn<Cols>(1, 0));
    const Tensor<float, YS> dy(randn<YS>(1, 3));
    Tensor<float, WS> dw;
    for (auto _ : state) {
      ops::gemm(host{}, ops::Trans::yes, ops::Trans::no, int(Co), int(k), int(m), 1.0f, dy.data(),
                cols.data(), 1.0f, dw.data());
      benchmark::DoNotOptimize(dw.data());
      benchmark::ClobberMemory();
    }
    report_flops(state, flops);
  });
}

}  // namespace

int main(int argc, char** argv) {
  // Autoencoder on 1x32x32 images, block channels (32, 32, 64).
  register_shape<ops::conv_same<3>, 32, 32, 1, 32>("ae_conv_in_32x32_1to32");
  // The decoder's conv_out: one output channel, the narrowest GEMM.
  register_shape<ops::conv_same<3>, 32, 32, 32, 1>("ae_conv_out_32x32_32to1");
  register_shape<ops::conv_same<3>, 32, 32, 32, 32>("ae_32x32_32to32");
  register_shape<ops::conv_down_asymmetric, 32, 32, 32, 32>("ae_down_32x32to16x16_32to32");
  register_shape<ops::conv_same<3>, 16, 16, 32, 32>("ae_16x16_32to32");
  register_shape<ops::conv_same<3>, 8, 8, 32, 64>("ae_8x8_32to64");
  register_shape<ops::conv_same<3>, 8, 8, 64, 64>("ae_8x8_64to64");
  register_shape<ops::conv_same<1>, 8, 8, 32, 64>("ae_shortcut1x1_8x8_32to64");
  // UNet on 4x8x8 latents, block channels (32, 64); the up path concatenates skips, so 8x8
  // resnets there read 64 channels.
  register_shape<ops::conv_same<3>, 8, 8, 32, 32>("unet_8x8_32to32");
  register_shape<ops::conv_same<3>, 8, 8, 64, 32>("unet_up_8x8_64to32");
  register_shape<ops::conv_same<3, 2>, 8, 8, 32, 32>("unet_down_8x8to4x4_32to32");
  register_shape<ops::conv_same<3>, 4, 4, 64, 64>("unet_4x4_64to64");

  return bench::run(argc, argv);
}
