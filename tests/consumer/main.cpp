// Uses tensors, a fused expression with broadcasting and reductions through an installed ldm, and
// checks that the installed headers state the version of the package that was found.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ldm/ldm.hpp>

int main() {
  if (std::strcmp(ldm::version.string, LDM_PACKAGE_VERSION) != 0) {
    std::printf("the headers say ldm %s, the package %s\n", ldm::version.string,
                LDM_PACKAGE_VERSION);
    return 1;
  }
  using Image = ldm::Shape<2, 3, 3, 4>;
  ldm::Tensor<float, Image> x;
  x = ldm::randn<Image>(/*seed*/ 7);
  ldm::Tensor<float, ldm::Shape<4>> bias;
  for (int c = 0; c < 4; ++c)
    bias[c] = float(c);

  ldm::Tensor<float, Image> y;
  y = ldm::silu(x * 2.0f + ldm::broadcast<Image, 0, 1, 2>(bias));
  ldm::Tensor<float, ldm::Shape<4>> channel_mean;
  channel_mean = ldm::mean<0, 1, 2>(y);

  double expected = 0;
  for (int i = 0; i < Image::size; ++i) {
    double v = 2.0 * x[i] + (i % 4);
    expected += v / (1 + std::exp(-v));
  }
  const double total = ldm::sum(y);
  std::printf("sum %.6f expected %.6f, mean of channel 3 %.6f\n", total, expected, channel_mean[3]);
  return std::abs(total - expected) < 1e-4 * std::abs(expected) ? 0 : 1;
}
