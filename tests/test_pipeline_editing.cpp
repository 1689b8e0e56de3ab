// Image editing with any sampler: LatentDiffusion::img2img, inpaint (and inpaint_latents),
// interpolate_seeds and interpolate_images, diffusion::slerp and the inpainting mask's way to
// the latent grid. The pipeline is the small untrained one: what is checked holds for any
// weights (exact relations with sample(), what is kept, endpoints), and the errors.
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <ldm/ldm.hpp>
#include <string>
#include <vector>

#include "support/small_pipeline.hpp"

using namespace ldm;
using diffusion::in_double;

namespace {
using test::Small;
using Model = LatentDiffusion<Small>;
constexpr index_t N = 4;
using Images = Model::images<N>;
using Latents = Model::latents<N>;
using Masks = Model::masks<N>;
constexpr index_t R = Small::resolution, L = Model::latent_res;

// A sampler that says the first evaluation holds no signal: img2img() at strength 1 then starts
// from pure noise, as sample() does, so the two must agree bit for bit.
template <class Inner>
struct NoSignalSampler : Inner {
  explicit NoSignalSampler(const Inner& inner) : Inner(inner) {}
  diffusion::NoiseLevel noise_level(std::size_t) const { return {0, 1}; }
};
static_assert(diffusion::Sampler<NoSignalSampler<diffusion::DDIM>>);

diffusion::DDIM ddim(const Model& model, int steps) {
  return std::get<diffusion::DDIM>(model.sampler(steps));
}
diffusion::DDPM ddpm(const Model& model, int steps) {
  return std::get<diffusion::DDPM>(model.sampler(steps, {{"_class_name", "DDPMScheduler"}}));
}

template <ShapeType S>
bool same(const Tensor<float, S>& a, const Tensor<float, S>& b) {
  for (index_t i = 0; i < S::size; ++i)
    if (a[i] != b[i]) return false;
  return true;
}
template <ShapeType S>
double max_difference(const Tensor<float, S>& a, const Tensor<float, S>& b) {
  return max(abs(a - b));
}
double psnr(const Tensor<float, Images>& a, const Tensor<float, Images>& b) {
  const double mse = mean(square(in_double(a) - in_double(b)));
  return 10 * std::log10(4 / mse);  // images span [-1, 1]
}
Tensor<float, Images> reconstruction(Model& model, const Tensor<float, Images>& x) {
  Tensor<float, Latents> z;
  Tensor<float, Images> out;
  model.encode<N>(x, z.view());
  model.decode<N>(z, out.view());
  return out;
}
// The left half of each image repaints (1), the right half is kept (0).
Tensor<float, Masks> left_half_mask() {
  Tensor<float, Masks> mask;
  for (index_t n = 0; n < N; ++n)
    for (index_t y = 0; y < R; ++y)
      for (index_t x = 0; x < R; ++x)
        mask(n, y, x, 0) = x < R / 2 ? 1.0f : 0.0f;
  return mask;
}

std::size_t tensor_bytes_in_use() {
  return memory<host>::stats().in_use;
}

template <class Call>
void check_error_before_work(Call&& call, const std::vector<std::string>& parts) {
  const std::size_t before = tensor_bytes_in_use();
  std::string message;
  try {
    call();
  } catch (const Error& e) {
    message = e.what();
  }
  INFO("message: " << message);
  REQUIRE_FALSE(message.empty());
  for (const std::string& part : parts)
    CHECK(message.find(part) != std::string::npos);
  // No workspace was allocated: the call stopped before encoding or denoising anything.
  CHECK(tensor_bytes_in_use() == before);
}
}  // namespace

// ------------------------------------------------------------------------------------- slerp

TEST_CASE("slerp: exact endpoints, the angle split at t, norms kept, linear when parallel") {
  using V = Shape<3>;
  Tensor<float, V> a, b, out;
  a[0] = 1, a[1] = 0, a[2] = 0;
  b[0] = 0, b[1] = 2, b[2] = 0;
  diffusion::slerp<V, host>(a, b, 0, out.view());
  CHECK(same(out, a));
  diffusion::slerp<V, host>(a, b, 1, out.view());
  CHECK(same(out, b));
  // Orthogonal endpoints: at t the point is at angle t * 90 degrees from a.
  diffusion::slerp<V, host>(a, b, 1.0 / 3, out.view());
  CHECK(out[0] == doctest::Approx(std::cos(M_PI / 6) / std::sin(M_PI / 2)).epsilon(1e-6));
  CHECK(out[1] == doctest::Approx(2 * std::sin(M_PI / 6)).epsilon(1e-6));

  // Equal norms stay equal all the way, where the straight line dips.
  Tensor<float, Shape<64>> p, q, r;
  p = randn<Shape<64>>(1, 0);
  q = randn<Shape<64>>(2, 0);
  q = q * float(std::sqrt(sum(square(in_double(p))) / sum(square(in_double(q)))));
  const double norm = std::sqrt(sum(square(in_double(p))));
  const double cosine = diffusion::angle_cosine<Shape<64>, host>(p, q);
  for (double t : {0.1, 0.5, 0.9}) {
    diffusion::slerp<Shape<64>, host>(p, q, t, r.view());
    CHECK(std::sqrt(sum(square(in_double(r)))) == doctest::Approx(norm).epsilon(1e-6));
    CHECK(diffusion::angle_cosine<Shape<64>, host>(p, r) ==
          doctest::Approx(std::cos(t * std::acos(cosine))).epsilon(1e-6));
    Tensor<float, Shape<64>> line;
    line = (1 - t) * in_double(p) + t * in_double(q);
    if (t == 0.5) CHECK(std::sqrt(sum(square(in_double(line)))) < 0.9 * norm);
  }

  // Nearly parallel, antiparallel, or with a zero endpoint: the linear interpolation.
  SUBCASE("parallel") {
    q = p * 1.5f + 1e-4f * randn<Shape<64>>(3, 0);
  }
  SUBCASE("antiparallel") {
    q = p * -1.0f;
  }
  SUBCASE("zero") {
    q = 0.0f;
  }
  const double c = diffusion::angle_cosine<Shape<64>, host>(p, q);
  CHECK((std::abs(c) > diffusion::slerp_parallel_threshold || c == 1));
  diffusion::slerp<Shape<64>, host>(p, q, 0.25, r.view());
  Tensor<float, Shape<64>> line;
  line = 0.75 * in_double(p) + 0.25 * in_double(q);
  CHECK(same(r, line));
}

TEST_CASE("slerp refuses t outside [0, 1] and endpoints that are not finite") {
  Tensor<float, Shape<4>> a, b, out;
  a = 1.0f;
  b = 2.0f;
  auto slerp = [&](double t) { diffusion::slerp<Shape<4>, host>(a, b, t, out.view()); };
  for (double t : {-0.1, 1.5, double(NAN)})
    CHECK_THROWS_WITH_AS(slerp(t), doctest::Contains("slerp: t: expected a value in [0, 1]"),
                         Error);
  b[2] = NAN;
  CHECK_THROWS_WITH_AS(slerp(0.5), doctest::Contains("second endpoint holds a NaN"), Error);
}

// ---------------------------------------------------------------------------------- the mask

TEST_CASE("the mask reaches the latent grid as diffusers': binarised at 0.5, nearest") {
  Tensor<float, Masks> mask;
  mask = 0.0f;
  Tensor<float, Model::latent_masks<N>> latent;
  // Each latent cell covers R / L pixels each way and takes its block's top-left pixel.
  constexpr index_t f = R / L;
  mask(1, 2 * f, 3 * f, 0) = 0.5f;      // repaints: >= 0.5
  mask(1, 2 * f + 1, 4 * f, 0) = 1.0f;  // not a top-left pixel: ignored
  mask(2, 0, 0, 0) = 0.49f;             // keeps
  mask(3, 5 * f, 6 * f + 1, 0) = 1.0f;  // not a top-left pixel either
  pipeline::latent_mask(View<const float, Masks>(mask), latent.view());
  for (index_t n = 0; n < N; ++n)
    for (index_t i = 0; i < L; ++i)
      for (index_t j = 0; j < L; ++j)
        CHECK(latent(n, i, j, 0) == (n == 1 && i == 2 && j == 3 ? 1.0f : 0.0f));
}

// ------------------------------------------------------------------------------- image-to-image

TEST_CASE("img2img at strength 1 from pure noise is sample(), for DDIM and DDPM alike") {
  Model model(3);
  const auto x = test::small_batch<N>(7);
  Tensor<float, Images> sampled, edited;
  auto check = [&](const auto& sampler) {
    model.sample<N>(sampler, 11, sampled.view());
    model.img2img<N>(NoSignalSampler(sampler), 1.0, x, 11, edited.view());
    CHECK(same(sampled, edited));
  };
  check(ddim(model, 10));
  check(ddpm(model, 10));
}

TEST_CASE("img2img at strength 1 with DDIM: the noisiest timestep still holds a little image") {
  // So img2img(strength 1) is sample() from noise_level(0).signal * latents + noise_level(0).noise
  // * the same noise, not sample() itself (diffusers' add_noise at timesteps[0] is the same).
  Model model(3);
  const auto sampler = ddim(model, 10);
  const auto level = sampler.noise_level(0);
  CHECK(sampler.timesteps()[0] == 900);
  CHECK(level.signal > 0.0);
  CHECK(level.signal * level.signal + level.noise * level.noise == doctest::Approx(1));
  Tensor<float, Images> sampled, edited;
  model.sample<N>(sampler, 11, sampled.view());
  model.img2img<N>(sampler, 1.0, test::small_batch<N>(7), 11, edited.view());
  CHECK_FALSE(same(sampled, edited));
}

TEST_CASE("img2img at a small strength stays close to the image, at strength 1 it does not") {
  Model model(3);
  const auto x = test::small_batch<N>(7);
  const auto kept = reconstruction(model, x);
  Tensor<float, Images> small, full;
  auto check = [&](const auto& sampler, const std::string& name) {
    model.img2img<N>(sampler, 0.1, x, 5, small.view());
    model.img2img<N>(sampler, 1.0, x, 5, full.view());
    const double near = psnr(small, kept), far = psnr(full, kept);
    MESSAGE(name << ": PSNR to the reconstruction " << near << " dB at strength 0.1, " << far
                 << " dB at 1");
    CHECK(near > far + 10);
  };
  check(ddim(model, 20), "DDIM");
  check(ddpm(model, 20), "DDPM");
  // The variant overload picks the same sampler.
  Tensor<float, Images> via_variant;
  model.img2img<N>(model.sampler(20), 0.1, x, 5, via_variant.view());
  model.img2img<N>(ddim(model, 20), 0.1, x, 5, small.view());
  CHECK(same(via_variant, small));
}

// ---------------------------------------------------------------------------------- inpainting

TEST_CASE("inpainting keeps the unmasked latents exactly and repaints the masked ones") {
  Model model(3);
  const auto x = test::small_batch<N>(7);
  const auto mask = left_half_mask();
  Tensor<float, Latents> z0, painted;
  Tensor<float, Model::latent_masks<N>> m;
  model.encode<N>(x, z0.view());
  pipeline::latent_mask(View<const float, Masks>(mask), m.view());
  auto check = [&](const auto& sampler, double strength) {
    CAPTURE(strength);
    model.inpaint_latents<N>(sampler, z0, m, 21, painted.view(), strength);
    index_t kept = 0, repainted = 0, changed = 0;
    for (index_t n = 0; n < N; ++n)
      for (index_t i = 0; i < L; ++i)
        for (index_t j = 0; j < L; ++j)
          for (index_t c = 0; c < Small::autoencoder.latent_channels; ++c) {
            if (m(n, i, j, 0) == 0) {
              kept += painted(n, i, j, c) == z0(n, i, j, c);
            } else {
              ++repainted;
              changed += std::abs(painted(n, i, j, c) - z0(n, i, j, c)) > 1e-3f;
            }
          }
    CHECK(kept == Latents::size / 2);
    CHECK(repainted == Latents::size / 2);
    CHECK(changed > repainted / 2);
    // inpaint() is those latents, decoded.
    Tensor<float, Images> decoded, images;
    model.decode<N>(painted, decoded.view());
    model.inpaint<N>(sampler, x, mask, 21, images.view(), strength);
    CHECK(same(decoded, images));
  };
  check(ddim(model, 10), 1.0);
  check(ddim(model, 10), 0.5);
  check(ddpm(model, 10), 1.0);
  check(ddpm(model, 10), 0.7);
}

TEST_CASE("inpainting everything at strength 1 is sample(); nothing, the reconstruction") {
  Model model(3);
  const auto x = test::small_batch<N>(7);
  Tensor<float, Masks> mask;
  Tensor<float, Images> sampled, painted;
  const auto sampler = ddpm(model, 10);
  mask = 1.0f;
  model.sample<N>(sampler, 4, sampled.view());
  model.inpaint<N>(sampler, x, mask, 4, painted.view());
  CHECK(same(sampled, painted));
  mask = 0.0f;
  model.inpaint<N>(sampler, x, mask, 4, painted.view());
  CHECK(same(reconstruction(model, x), painted));
}

// ------------------------------------------------------------------------------- interpolation

TEST_CASE("interpolate_seeds: the end frames are the two seeds' samples") {
  Model model(3);
  const std::array<double, N> positions = {0, 0.3, 0.6, 1};
  Tensor<float, Images> frames;
  Tensor<float, Model::images<1>> a, b;
  const auto sampler = ddim(model, 10);
  model.interpolate_seeds<N>(sampler, 8, 9, positions, frames.view());
  model.sample<1>(sampler, 8, a.view());
  model.sample<1>(sampler, 9, b.view());
  Tensor<float, Model::images<1>> first, last;
  copy(View<const float, Model::images<1>>(frames.batch<1>(0)), first.view());
  copy(View<const float, Model::images<1>>(frames.batch<1>(N - 1)), last.view());
  // A batch of N and a batch of 1 may round differently inside the networks.
  CHECK(max_difference(first, a) < 1e-5);
  CHECK(max_difference(last, b) < 1e-5);
  CHECK(max_difference(first, last) > 0.01);
  // DDPM: every frame takes seed_a's step noise, so frame 0 is still seed_a's sample.
  model.interpolate_seeds<N>(ddpm(model, 10), 8, 9, positions, frames.view());
  model.sample<1>(ddpm(model, 10), 8, a.view());
  copy(View<const float, Model::images<1>>(frames.batch<1>(0)), first.view());
  CHECK(max_difference(first, a) < 1e-5);
}

TEST_CASE("interpolate_images: the end frames are img2img of the two images") {
  Model model(3);
  const auto x = test::small_batch<2>(7);
  Tensor<float, Model::images<1>> a, b, edited_a, edited_b, first, last;
  copy(View<const float, Model::images<1>>(x.batch<1>(0)), a.view());
  copy(View<const float, Model::images<1>>(x.batch<1>(1)), b.view());
  const std::array<double, N> positions = {0, 0.5, 0.5, 1};
  Tensor<float, Images> frames;
  auto check = [&](const auto& sampler) {
    model.interpolate_images<N>(sampler, 0.6, a, b, 12, positions, frames.view());
    model.img2img<1>(sampler, 0.6, a, 12, edited_a.view());
    model.img2img<1>(sampler, 0.6, b, 12, edited_b.view());
    copy(View<const float, Model::images<1>>(frames.batch<1>(0)), first.view());
    copy(View<const float, Model::images<1>>(frames.batch<1>(N - 1)), last.view());
    CHECK(max_difference(first, edited_a) < 1e-5);
    CHECK(max_difference(last, edited_b) < 1e-5);
    // The same position gives the same frame.
    CHECK(same(Tensor<float, Model::images<1>>(frames.batch<1>(1)),
               Tensor<float, Model::images<1>>(frames.batch<1>(2))));
  };
  check(ddim(model, 10));
  check(ddpm(model, 10));
}

// ------------------------------------------------------------------------------------- errors

TEST_CASE("editing refuses bad arguments before any work, naming them") {
  Model model(3);
  const auto x = test::small_batch<N>(7);
  const auto sampler = ddim(model, 10);
  Tensor<float, Images> out;
  Tensor<float, Masks> mask;
  mask = 1.0f;
  Tensor<float, Model::images<1>> a;
  a = 0.0f;
  const std::array<double, N> positions = {0, 0.3, 0.6, 1};

  for (double strength : {-0.1, 1.5, double(NAN)})
    check_error_before_work([&] { model.img2img<N>(sampler, strength, x, 0, out.view()); },
                            {"strength", "a value in [0, 1]"});
  check_error_before_work([&] { model.img2img<N>(sampler, 0.05, x, 0, out.view()); },
                          {"strength", "at least 1 / steps (10 steps)", "found 0.05"});
  check_error_before_work([&] { model.inpaint<N>(sampler, x, mask, 0, out.view(), 2.0); },
                          {"strength", "[0, 1]"});
  check_error_before_work(
      [&] { model.interpolate_images<N>(sampler, 0.01, a, a, 0, positions, out.view()); },
      {"strength", "at least 1 / steps"});

  mask(2, 3, 4, 0) = 1.5f;
  check_error_before_work(
      [&] { model.inpaint<N>(sampler, x, mask, 0, out.view()); },
      {"inpaint: mask", "values in [0, 1]", "found 1.5 at image 2, row 3, column 4"});
  mask(2, 3, 4, 0) = -1.0f;
  check_error_before_work([&] { model.inpaint<N>(sampler, x, mask, 0, out.view()); },
                          {"inpaint: mask", "-1"});
  mask(2, 3, 4, 0) = NAN;
  check_error_before_work([&] { model.inpaint<N>(sampler, x, mask, 0, out.view()); },
                          {"inpaint: mask", "nan"});
  Tensor<float, Latents> z;
  z = 0.0f;
  Tensor<float, Model::latent_masks<N>> latent_mask;
  latent_mask = 2.0f;
  check_error_before_work([&] { model.inpaint_latents<N>(sampler, z, latent_mask, 0, z.view()); },
                          {"inpaint: mask", "values in [0, 1]"});

  const std::array<double, 3> three = {0, 0.5, 1};
  check_error_before_work([&] { model.interpolate_seeds<N>(sampler, 1, 2, three, out.view()); },
                          {"interpolate: positions", "expected 4 (one per frame)", "found 3"});
  const std::array<double, N> outside = {0, 0.5, 1.2, 1};
  check_error_before_work([&] { model.interpolate_seeds<N>(sampler, 1, 2, outside, out.view()); },
                          {"positions[2]", "a value in [0, 1]", "1.2"});
  check_error_before_work(
      [&] { model.interpolate_images<N>(sampler, 0.5, a, a, 0, outside, out.view()); },
      {"positions[2]"});

  // Steps < 1 are refused by the sampler itself.
  CHECK_THROWS_AS(model.sampler(0), Error);
}
