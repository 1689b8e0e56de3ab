#pragma once
// The project classifier as `fashion eval` and `fashion samplers` use it: its features of images
// (for the Frechet distance) and its accuracy on a labelled set.

#include <algorithm>
#include <cstddef>
#include <ldm/eval/classifier.hpp>
#include <ldm/eval/frechet.hpp>
#include <span>

#include "fashion/common.hpp"

namespace fashion {

using Classifier = ldm::eval::FashionClassifier<resolution>;

// Calls each_batch(batch, first_image) for every whole batch of preview_batch images, clamped to
// [-1, 1]: generated images are scored as their PNGs show them (decoded samples reach beyond it,
// and unclamped they inflate the Frechet distance; docs/fashion.md).
template <class EachBatch>
void for_each_clamped_batch(std::span<const float> images, const EachBatch& each_batch) {
  ldm::Tensor<float, Images<preview_batch>> batch;
  for (std::size_t first = 0; first + std::size_t(batch.size) <= images.size();
       first += std::size_t(batch.size)) {
    batch = clamp(ldm::View<const float, Images<preview_batch>>(images.data() + first), -1.0, 1.0);
    each_batch(ldm::View<const float, Images<preview_batch>>(batch),
               first / std::size_t(Images<1>::size));
  }
}

// The classifier's features of images (a multiple of preview_batch of them) into `statistics`.
inline void add_features(const Classifier& classifier, std::span<const float> images,
                         ldm::eval::FeatureStatistics& statistics) {
  ldm::Tensor<float, Classifier::features_shape<preview_batch>> features;
  for_each_clamped_batch(images, [&](auto batch, std::size_t) {
    classifier.features<preview_batch>(batch, features.view());
    statistics.add<float>(features);
  });
}

// The classifier's features of images (a multiple of preview_batch of them), each added to the
// statistics of its class: per_class[labels[i]].
inline void add_features_by_class(const Classifier& classifier, std::span<const float> images,
                                  std::span<const std::int32_t> labels,
                                  std::vector<ldm::eval::FeatureStatistics>& per_class) {
  constexpr ldm::index_t D = Classifier::feature_dim;
  ldm::Tensor<float, Classifier::features_shape<preview_batch>> features;
  for_each_clamped_batch(images, [&](auto batch, std::size_t image) {
    classifier.features<preview_batch>(batch, features.view());
    for (ldm::index_t n = 0; n < preview_batch; ++n)
      per_class.at(std::size_t(labels[image + std::size_t(n)]))
          .add<float>(ldm::View<const float, ldm::Shape<1, D>>(features.data() + n * D));
  });
}

// The class the classifier assigns to each image (a multiple of preview_batch of them).
inline std::vector<std::int32_t> predicted_classes(const Classifier& classifier,
                                                   std::span<const float> images) {
  ldm::Tensor<float, Classifier::logits<preview_batch>> logits;
  Classifier::Saved<preview_batch> saved;
  std::vector<std::int32_t> classes;
  for_each_clamped_batch(images, [&](auto batch, std::size_t) {
    classifier.forward<preview_batch>(batch, saved, logits.view());
    for (ldm::index_t n = 0; n < preview_batch; ++n) {
      ldm::index_t best = 0;
      for (ldm::index_t k = 1; k < Classifier::classes; ++k)
        if (logits(n, k) > logits(n, best)) best = k;
      classes.push_back(std::int32_t(best));
    }
  });
  return classes;
}

inline double classifier_accuracy(const Classifier& classifier, const ImageSet& set) {
  const std::size_t count = set.size() / preview_batch * preview_batch;
  const auto classes =
      predicted_classes(classifier, {set.pixels.data(), count * std::size_t(Images<1>::size)});
  std::size_t correct = 0;
  for (std::size_t i = 0; i < count; ++i)
    correct += classes[i] == set.labels[i];
  return double(correct) / double(count);
}

// The features of the test set's images, in whole batches: the real statistics of the Frechet
// distance.
inline ldm::eval::FeatureStatistics real_statistics(const Classifier& classifier,
                                                    const ImageSet& test) {
  ldm::eval::FeatureStatistics real(Classifier::feature_dim);
  const std::size_t count = test.size() / preview_batch * preview_batch;
  add_features(classifier, {test.pixels.data(), count * std::size_t(Images<1>::size)}, real);
  return real;
}

}  // namespace fashion
