// ldm's side of tools/roundtrip/class_unet.py (run it first): the class-conditional UNet's output
// for the same inputs, from the folder ldm wrote and from the one diffusers wrote, against
// diffusers' outputs. Built by hand (after `cmake --build build/host`, for the include paths):
//   g++ -std=c++20 -O2 -fopenmp -Iinclude -Iexamples -isystem /usr/include/stb \
//       tools/roundtrip/class_unet.cpp -o class_unet -lz -lopenblas
//   ./class_unet runs/classes/checkpoint /tmp/roundtrip
#include <cmath>
#include <cstdio>
#include <ldm/ldm.hpp>
#include <string>
#include "fashion/common.hpp"
using Model = ldm::LatentDiffusion<fashion::ClassConfig>;
constexpr ldm::index_t N = 4;
using Latents = Model::latents<N>;
int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: class_unet LDM_FOLDER OUT (OUT as given to class_unet.py)\n");
    return 2;
  }
  const std::string out = argv[2];
  auto io = ldm::io::SafetensorsFile::open(out + "/io.safetensors");
  auto read = [&](const char* name, std::vector<std::int64_t> shape) {
    std::size_t n = 1;
    for (auto e : shape)
      n *= std::size_t(e);
    std::vector<float> v(n);
    io.read<float>(name, std::span<float>(v), std::span<const std::int64_t>(shape));
    return v;
  };
  auto nhwc = [](const std::vector<float>& nchw, ldm::Tensor<float, Latents>& out) {
    for (ldm::index_t n = 0; n < N; ++n)
      for (ldm::index_t c = 0; c < 4; ++c)
        for (ldm::index_t h = 0; h < 8; ++h)
          for (ldm::index_t w = 0; w < 8; ++w)
            out(n, h, w, c) = nchw[std::size_t(((n * 4 + c) * 8 + h) * 8 + w)];
  };
  ldm::Tensor<float, Latents> x, y, expected;
  nhwc(read("x", {N, 4, 8, 8}), x);
  ldm::Tensor<float, ldm::Shape<N>> t;
  ldm::Tensor<std::int32_t, ldm::Shape<N>> labels;
  const auto tv = read("t", {N}), lv = read("labels", {N});
  for (int i = 0; i < N; ++i)
    t[i] = tv[i], labels[i] = std::int32_t(lv[i]);
  for (auto [folder, name] :
       {std::pair{std::string(argv[1]), "out_a"}, std::pair{out + "/rev", "out_b"}}) {
    Model model(0);
    model.load(folder);
    Model::UNet::Saved<N> saved;
    model.ema_unet().forward<N>(x, t, saved, y.view(), ldm::nn::inference, labels);
    nhwc(read(name, {N, 4, 8, 8}), expected);
    double worst = 0, scale = 0;
    for (ldm::index_t i = 0; i < y.size; ++i) {
      worst = std::max(worst, double(std::abs(y.data()[i] - expected.data()[i])));
      scale = std::max(scale, double(std::abs(expected.data()[i])));
    }
    std::printf("%s (%s): largest difference %.3g of largest magnitude %.3g (relative %.2g)\n",
                folder.c_str(), name, worst, scale, worst / scale);
  }
}
