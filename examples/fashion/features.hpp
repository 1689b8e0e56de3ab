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

// The classifier's features of images (a multiple of preview_batch of them) into `statistics`.
inline void add_features(const Classifier& classifier, std::span<const float> images,
                         ldm::eval::FeatureStatistics& statistics) {
  ldm::Tensor<float, Images<preview_batch>> batch;
  ldm::Tensor<float, Classifier::features_shape<preview_batch>> features;
  for (std::size_t first = 0; first + std::size_t(batch.size) <= images.size();
       first += std::size_t(batch.size)) {
    std::copy_n(images.data() + first, batch.size, batch.data());
    classifier.features<preview_batch>(batch, features.view());
    statistics.add<float>(features);
  }
}

inline double classifier_accuracy(const Classifier& classifier, const ImageSet& set) {
  ldm::Tensor<float, Images<preview_batch>> batch;
  ldm::Tensor<float, Classifier::logits<preview_batch>> logits;
  Classifier::Saved<preview_batch> saved;
  std::size_t correct = 0, seen = 0;
  for (std::size_t first = 0; first + preview_batch <= set.size(); first += preview_batch) {
    std::copy_n(set.pixels.data() + first * std::size_t(Images<1>::size), batch.size, batch.data());
    classifier.forward<preview_batch>(batch, saved, logits.view());
    for (ldm::index_t n = 0; n < preview_batch; ++n) {
      ldm::index_t best = 0;
      for (ldm::index_t k = 1; k < Classifier::classes; ++k)
        if (logits(n, k) > logits(n, best)) best = k;
      correct += best == set.labels[first + std::size_t(n)];
    }
    seen += preview_batch;
  }
  return double(correct) / double(seen);
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
