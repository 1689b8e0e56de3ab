// Trains eval::FashionClassifier, the network whose features ldm's Fréchet distance compares, on
// Fashion-MNIST's training split, and writes its weights with the test accuracy in the file's
// metadata:
//
//   train_classifier [--epochs 4] [--out models/fashion_classifier.safetensors] [--seed 0]
//
// AdamW with a cosine learning-rate decay to zero over the whole run; the test split is scored
// after every epoch. The images are those the diffusion trainer sees (32x32, in [-1, 1]).

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <ldm/eval/classifier.hpp>
#include <ldm/ldm.hpp>
#include <ldm/ops/loss.hpp>
#include <numbers>
#include <span>
#include <string>

#include "ldm/cli/options.hpp"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
constexpr ldm::index_t resolution = 32, batch = 64, eval_batch = 100;
using Classifier = ldm::eval::FashionClassifier<resolution>;
using Images = ldm::data::ImageSet<resolution, 1>;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The fraction of `set` (whose size is a multiple of eval_batch: 10000 for the test split) that
// the classifier labels correctly.
double accuracy(const Classifier& model, const Images& set) {
  Classifier::Saved<eval_batch> saved;
  ldm::Tensor<float, Classifier::logits<eval_batch>> logits;
  std::size_t correct = 0;
  for (std::size_t first = 0; first + eval_batch <= set.size(); first += eval_batch) {
    const ldm::View<const float, Classifier::images<eval_batch>> images(set.pixels.data() +
                                                                        first * Images::image_size);
    model.forward(images, saved, logits.view());
    for (ldm::index_t n = 0; n < eval_batch; ++n) {
      ldm::index_t best = 0;
      for (ldm::index_t k = 1; k < Classifier::classes; ++k)
        if (logits(n, k) > logits(n, best)) best = k;
      correct += best == set.labels[first + std::size_t(n)];
    }
  }
  return double(correct) / double(set.size() / eval_batch * eval_batch);
}

}  // namespace

int main(int argc, char** argv) try {
  int epochs = 4;
  std::int64_t seed = 0;
  double lr = 2e-3, weight_decay = 1e-4;
  std::string out = "models/fashion_classifier.safetensors";
  std::string data = ldm::data::fashion_mnist_folder.string();
  ldm::cli::Options options("train_classifier [options]",
                            "Trains the Fashion-MNIST classifier whose features ldm's Frechet "
                            "distance uses, and saves its weights.");
  options.add("epochs", &epochs, "passes over the 60000 training images");
  options.add("out", &out, "where to write the weights (safetensors)");
  options.add("seed", &seed, "initialisation and shuffling");
  options.add("lr", &lr, "AdamW's peak learning rate (cosine decay to 0)");
  options.add("weight-decay", &weight_decay, "AdamW's decoupled weight decay");
  options.add("data", &data, "folder of Fashion-MNIST's .gz IDX files");
  if (!options.parse(argc, argv)) return 0;
  if (epochs < 1) ldm::fail_expected("--epochs", "at least 1", epochs);

  const auto start = Clock::now();
  const Images train = ldm::data::load_fashion_mnist<resolution>(ldm::data::Split::train, data);
  const Images test = ldm::data::load_fashion_mnist<resolution>(ldm::data::Split::test, data);
  std::printf("Fashion-MNIST: %zu training and %zu test images, loaded in %.1f s\n", train.size(),
              test.size(), seconds_since(start));

  Classifier model{std::uint64_t(seed)};
  ldm::train::AdamW optimizer({.lr = lr, .weight_decay = weight_decay},
                              std::size_t(Classifier::parameter_count));
  ldm::data::ShuffledBatches<resolution, 1> batches(train, std::uint64_t(seed));
  const std::int64_t steps_per_epoch = std::int64_t(train.size()) / batch;
  const std::int64_t total_steps = steps_per_epoch * epochs;
  std::printf("%lld parameters, batch %lld, %lld steps per epoch, %d epochs\n",
              (long long)Classifier::parameter_count, (long long)batch, (long long)steps_per_epoch,
              epochs);

  ldm::Tensor<float, Classifier::images<batch>> images;
  ldm::Tensor<std::int32_t, ldm::Shape<batch>> labels;
  Classifier::Saved<batch> saved;
  ldm::Tensor<float, Classifier::logits<batch>> logits, dlogits;
  const std::span<float> values(model.values().data(), std::size_t(Classifier::parameter_count));
  const std::span<const float> grads(model.grads().data(),
                                     std::size_t(Classifier::parameter_count));

  constexpr std::int64_t report_every = 100;
  double loss_sum = 0, test_accuracy = 0;
  std::int64_t step = 0, interval_steps = 0;
  auto interval_start = Clock::now();
  for (int epoch = 1; epoch <= epochs; ++epoch) {
    for (std::int64_t i = 0; i < steps_per_epoch; ++i, ++step) {
      optimizer.set_lr(lr * 0.5 *
                       (1 + std::cos(std::numbers::pi * double(step) / double(total_steps))));
      batches.next<batch>(images.view(), labels.view());
      model.forward(images, saved, logits.view());
      loss_sum += ldm::ops::cross_entropy_forward(logits, labels);
      ldm::ops::cross_entropy_backward(logits, labels, 1.0, dlogits.view());
      model.grads() = 0.0f;
      model.backward(images, saved, dlogits);
      optimizer.step(values, grads);
      ++interval_steps;
      if ((step + 1) % report_every == 0) {
        std::printf(
            "epoch %d step %lld/%lld  loss %.4f  %.0f images/s  %.0f s elapsed\n", epoch,
            (long long)(step + 1), (long long)total_steps, loss_sum / double(interval_steps),
            double(interval_steps * batch) / seconds_since(interval_start), seconds_since(start));
        std::fflush(stdout);
        loss_sum = 0;
        interval_steps = 0;
        interval_start = Clock::now();
      }
    }
    test_accuracy = accuracy(model, test);
    std::printf("epoch %d: test accuracy %.2f%%  (%.0f s elapsed)\n", epoch, 100 * test_accuracy,
                seconds_since(start));
    std::fflush(stdout);
    interval_start = Clock::now();  // the rate is of training alone
  }

  const fs::path path(out);
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  char accuracy_text[32];
  std::snprintf(accuracy_text, sizeof accuracy_text, "%.4f", test_accuracy);
  model.save(path, {{"test_accuracy", accuracy_text},
                    {"epochs", std::to_string(epochs)},
                    {"seed", std::to_string(seed)},
                    {"trained_by", "examples/train_classifier.cpp"},
                    {"data", "Fashion-MNIST, 28x28 padded with -1 to 32x32, in [-1, 1]"}});
  std::printf("wrote %s (test accuracy %.2f%%) after %.0f s\n", out.c_str(), 100 * test_accuracy,
              seconds_since(start));
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "train_classifier: %s\n", e.what());
  return 1;
}
