// `fashion train` as a program of the library's trainer (ldm/trainer/): its defaults, its data and
// its validation measure.

#include <cstdio>
#include <filesystem>
#include <memory>

#include "fashion/common.hpp"
#include "fashion/features.hpp"

namespace fashion {

namespace {

// The classifier fashion eval scores with, if it is there: without it the validation pass
// measures reconstructions only, and says so once.
constexpr const char* classifier_file = "models/fashion_classifier.safetensors";
// Held-out test images the validation pass reconstructs (of Fashion-MNIST's 10,000): enough for a
// steady mean, few enough to take a second.
constexpr std::size_t validation_images = 256;

// The Frechet distance of a few samples against the test set, in the classifier's feature space.
// With 128 samples it is biased upwards against `fashion eval`'s 5,000 (a covariance from few
// samples), so it tracks progress within a run; it is not the number docs/fashion.md reports.
class SampleDistance {
 public:
  std::vector<ldm::train::Measure> operator()(std::span<const float> samples) {
    if (!ready()) return {};
    ldm::eval::FeatureStatistics generated(Classifier::feature_dim);
    add_features(*classifier_, samples, generated);
    return {{"frechet_distance", ldm::eval::frechet_distance(*real_, generated)}};
  }

 private:
  bool ready() {
    if (real_) return true;
    if (tried_) return false;
    tried_ = true;
    if (!std::filesystem::exists(classifier_file)) {
      std::printf(
          "validation: no %s here (run from the repository's folder), so no Frechet "
          "distance\n",
          classifier_file);
      return false;
    }
    classifier_ = std::make_unique<Classifier>();
    classifier_->load(classifier_file);
    const ImageSet test = ldm::data::load_fashion_mnist<resolution>(ldm::data::Split::test);
    real_ = std::make_unique<ldm::eval::FeatureStatistics>(real_statistics(*classifier_, test));
    return true;
  }

  bool tried_ = false;
  std::unique_ptr<Classifier> classifier_;
  std::unique_ptr<ldm::eval::FeatureStatistics> real_;
};

ldm::train::TrainingData<resolution, image_channels> fashion_mnist() {
  ldm::train::TrainingData<resolution, image_channels> data;
  data.train = ldm::data::load_fashion_mnist<resolution>(ldm::data::Split::train);
  const ImageSet test = ldm::data::load_fashion_mnist<resolution>(ldm::data::Split::test);
  const std::size_t kept = validation_images * std::size_t(Images<1>::size);
  data.held_out.pixels.assign(test.pixels.begin(), test.pixels.begin() + std::ptrdiff_t(kept));
  data.held_out.labels.assign(test.labels.begin(),
                              test.labels.begin() + std::ptrdiff_t(validation_images));
  data.description = "fashion-mnist";
  return data;
}

}  // namespace

template <class C>
Program<C> train_program() {
  Program<C> program;
  program.name = "fashion train";
  program.description =
      "Trains the `tiny` latent diffusion model on Fashion-MNIST (Debian: dataset-fashion-mnist)\n"
      "or on a folder of images (--data). --conditioning class (the default) conditions the UNet\n"
      "on Fashion-MNIST's 10 classes with classifier-free guidance; --conditioning\n"
      "cross-attention does the same through cross-attention on a learned table of label\n"
      "tokens; --conditioning none trains an unconditional model (the default with --data: a\n"
      "folder of images has no labels).";
  // The shipped model's settings (docs/fashion.md).
  ldm::train::TrainerSettings& d = program.defaults;
  d.out = "runs/fashion";
  d.autoencoder_steps = 2500;
  d.diffusion_steps = 12000;
  d.batch = 32;
  d.autoencoder_lr = 8e-4;
  d.unet_lr = 1e-3;
  d.checkpoint_every = 500;
  d.images_every = 500;
  d.validate_every = 1000;
  program.default_data = fashion_mnist;
  program.sample_measures = [distance = std::make_shared<SampleDistance>()](
                                std::span<const float> samples) { return (*distance)(samples); };
  program.validation_samples = 128;
#if defined(LDM_FASHION_CUDA)
  program.run_on_cuda = [](const ldm::train::TrainerSettings& settings, const Program<C>& p) {
    return train_on_cuda(settings, p);
  };
#endif
  return program;
}

template Program<Config> train_program<Config>();
template Program<ClassConfig> train_program<ClassConfig>();
template Program<TokenConfig> train_program<TokenConfig>();

}  // namespace fashion
