// The forward diffusion process on a batch, written with ldm's tensors and expressions:
//   x_t = sqrt(abar_t) * x0 + sqrt(1 - abar_t) * eps
// with abar_t from the `linear` beta schedule (1e-4 .. 2e-2 over 1000 steps), one t per sample.
// Each assignment below is one fused, OpenMP-parallel loop; the per-sample coefficients are
// broadcast along H, W and C, and the noise is drawn inside the same loop.
#include <cmath>
#include <cstdio>
#include <ldm/ldm.hpp>

#include "ldm/cli/options.hpp"

int main(int argc, char** argv) try {
  ldm::cli::Options options("forward_diffusion",
                            "Noises a batch of stripes to eight timesteps and prints how much of "
                            "the image is left.");
  if (!options.parse(argc, argv)) return 0;

  constexpr ldm::index_t batch = 8, size = 32, channels = 1, steps = 1000;
  using Images = ldm::Shape<batch, size, size, channels>;
  using PerSample = ldm::Shape<batch>;

  // abar_t = prod_{s <= t} (1 - beta_s), in double.
  double alphas_cumprod[steps];
  double running = 1;
  for (int t = 0; t < steps; ++t) {
    double beta = 1e-4 + (2e-2 - 1e-4) * t / (steps - 1);
    running *= 1 - beta;
    alphas_cumprod[t] = running;
  }

  // A batch of "images": smooth stripes in [-1, 1].
  ldm::Tensor<float, Images> x0;
  for (ldm::index_t n = 0; n < batch; ++n)
    for (ldm::index_t h = 0; h < size; ++h)
      for (ldm::index_t w = 0; w < size; ++w)
        x0(n, h, w, 0) = float(std::sin(0.3 * (h + n * w)));

  ldm::Tensor<float, PerSample> signal, noise_level;
  const int timesteps[batch] = {0, 50, 100, 250, 500, 750, 900, 999};
  for (ldm::index_t n = 0; n < batch; ++n) {
    signal[n] = float(std::sqrt(alphas_cumprod[timesteps[n]]));
    noise_level[n] = float(std::sqrt(1 - alphas_cumprod[timesteps[n]]));
  }

  ldm::Tensor<float, Images> eps, xt;
  eps = ldm::randn<Images>(/*seed*/ 2024);
  xt = ldm::broadcast<Images, 1, 2, 3>(signal) * x0 +
       ldm::broadcast<Images, 1, 2, 3>(noise_level) * eps;

  // How much of x0 is left in each x_t: the correlation per sample, from reductions over H, W, C.
  ldm::Tensor<float, PerSample> dot, xt_norm, x0_norm;
  dot = ldm::sum<1, 2, 3>(xt * x0);
  xt_norm = ldm::sqrt(ldm::sum<1, 2, 3>(ldm::square(xt)));
  x0_norm = ldm::sqrt(ldm::sum<1, 2, 3>(ldm::square(x0)));

  std::printf("forward diffusion on %lld images of %lldx%lld (linear schedule, T = %lld)\n",
              (long long)batch, (long long)size, (long long)size, (long long)steps);
  std::printf("%6s %12s %12s %14s\n", "t", "sqrt(abar)", "sqrt(1-abar)", "corr(x_t, x0)");
  for (ldm::index_t n = 0; n < batch; ++n)
    std::printf("%6d %12.4f %12.4f %14.4f\n", timesteps[n], signal[n], noise_level[n],
                dot[n] / (xt_norm[n] * x0_norm[n]));
  std::printf("noise: mean %.4f, std %.4f over %lld draws\n", ldm::mean(eps),
              std::sqrt(ldm::mean(ldm::square(eps))), (long long)Images::size);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "forward_diffusion: %s\n", e.what());
  return 1;
}
