#pragma once
// LPIPS, the perceptual term of the autoencoder loss, as the lpips package (0.1) computes
// lpips.LPIPS(net='vgg', version='0.1', lpips=True, spatial=False) in eval mode on images already
// in [-1, 1] (normalize=False):
//   1. ScalingLayer: (x - shift) / scale per RGB channel, with the package's constants.
//   2. VGG16's `features` in five slices, tapped at relu1_2, relu2_2, relu3_3, relu4_3 and
//      relu5_3 (13 convolutions 3x3 pad 1, each followed by ReLU; a 2x2 max pool opens slices 2-5).
//   3. At each tap, every pixel's feature vector divided by (its L2 norm over channels + 1e-10),
//      the squared difference of the two images' vectors, the 1x1 head lin{k} (no bias; its
//      dropout is the identity in eval mode), the mean over pixels.
//   4. The sum over the five taps: one distance per sample.
//
// Gray images (C = 1), such as Fashion-MNIST's, are replicated to three channels before step 1,
// as part of this op: VGG16 was trained on RGB, and a gray image is the RGB image with equal
// channels. Backward sums the gradients of the three channels.
//
// The gradient is taken with respect to the reconstruction only: the target is data. The weights
// are frozen: the network keeps them in one flat buffer of values, with no gradients, outside any
// model's optimiser. Parameter names are the lpips package's state_dict keys (VGG layers keep
// their torchvision indices inside the slices): net.slice{1..5}.{index}.weight/bias and
// lin{0..4}.model.1.weight; files hold them in PyTorch's layouts (tools/convert_lpips_weights.py
// writes such a file from the published weights).
//
// Reconstruction and target go through VGG together as one batch of 2N images (reconstruction
// first), so each convolution is one call with twice the GEMM rows; backward then runs on the
// first N samples of the saved activations.
//
// The class is written once over its memory space: with Space = cuda (in a .cu unit) the same
// code runs VGG through the ops' CUDA overloads and the per-tap distance through lpips_cuda.cuh.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <set>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "ldm/core/copy.hpp"
#include "ldm/core/error.hpp"
#include "ldm/core/shape.hpp"
#include "ldm/core/tensor.hpp"
#include "ldm/expr/assign.hpp"
#include "ldm/expr/broadcast.hpp"
#include "ldm/expr/elementwise.hpp"
#include "ldm/expr/host_executor.hpp"
#include "ldm/expr/reduce.hpp"
#include "ldm/models/static_for.hpp"
#include "ldm/nn/module.hpp"
#include "ldm/nn/parameters.hpp"
#include "ldm/nn/state_dict.hpp"
#include "ldm/ops/conv2d.hpp"
#include "ldm/ops/pool.hpp"
#include "ldm/train/lpips_layer.hpp"

namespace ldm::train {

namespace detail {

// One slice of VGG16's features as the lpips package cuts them.
struct VggSliceSpec {
  index_t channels;  // of every convolution's output
  int convs;
  int first_index;  // torchvision's index of the first convolution; ReLUs sit between, so 2 apart
};
inline constexpr std::array<VggSliceSpec, 5> kVggSlices{
    {{64, 2, 0}, {128, 2, 5}, {256, 3, 10}, {512, 3, 17}, {512, 3, 24}}};

// The flat weight buffer: each slice's parameters in order (for each convolution its weight
// [Co, 3, 3, Ci] then its bias), then the five heads.
constexpr index_t vgg_slice_inputs(int k) {
  return k == 0 ? 3 : kVggSlices[k - 1].channels;
}
constexpr index_t vgg_conv_parameters(int k, int j) {
  const index_t co = kVggSlices[k].channels, ci = j == 0 ? vgg_slice_inputs(k) : co;
  return co * 9 * ci + co;
}
constexpr index_t vgg_weight_offset(int k, int j) {
  index_t offset = 0;
  for (int slice = 0; slice < k; ++slice)
    for (int conv = 0; conv < kVggSlices[slice].convs; ++conv)
      offset += vgg_conv_parameters(slice, conv);
  for (int conv = 0; conv < j; ++conv)
    offset += vgg_conv_parameters(k, conv);
  return offset;
}
constexpr index_t lpips_lin_offset(int k) {
  index_t offset = vgg_weight_offset(int(kVggSlices.size()), 0);
  for (int slice = 0; slice < k; ++slice)
    offset += kVggSlices[slice].channels;
  return offset;
}

// ScalingLayer's buffers, which the package stores in float32.
inline constexpr float kLpipsShift[3] = {-.030f, -.088f, -.188f};
inline constexpr float kLpipsScale[3] = {.458f, .448f, .450f};

// Slice K of VGG16 on H x W images: its convolutions run at (H >> K) x (W >> K), after the max
// pool that opens every slice but the first. `p` points at the whole flat weight buffer, in Space
// as everything else here.
template <class T, int K, index_t H, index_t W, class Space>
struct VggSlice {
  using G = ops::conv_same<3>;
  static constexpr int convs = kVggSlices[K].convs;
  static constexpr index_t h = H >> K, w = W >> K;
  static constexpr index_t ci = vgg_slice_inputs(K), co = kVggSlices[K].channels;
  template <index_t B>
  using conv_input = Shape<B, h, w, ci>;
  template <index_t B>
  using output = Shape<B, h, w, co>;

  template <index_t B>
  struct Saved {
    Tensor<T, conv_input<B>, Space> input;  // the pooled input (slice 0: the scaled images)
    std::array<Tensor<T, output<B>, Space>, convs> relu;  // each ReLU's output; the last: the tap
  };

  static constexpr index_t weight_offset(int j) { return vgg_weight_offset(K, j); }
  static constexpr index_t bias_offset(int j) { return weight_offset(j) + co * 9 * (j ? co : ci); }

  static View<const T, Shape<co, 3, 3, ci>, Space> first_weight(const T* p) {
    return View<const T, Shape<co, 3, 3, ci>, Space>(p + weight_offset(0));
  }
  static View<const T, Shape<co, 3, 3, co>, Space> weight(const T* p, int j) {
    return View<const T, Shape<co, 3, 3, co>, Space>(p + weight_offset(j));
  }
  static View<const T, Shape<co>, Space> bias(const T* p, int j) {
    return View<const T, Shape<co>, Space>(p + bias_offset(j));
  }

  static void describe(std::vector<nn::ParameterInfo>& infos) {
    for (int j = 0; j < convs; ++j) {
      const std::string prefix = "net.slice" + std::to_string(K + 1) + "." +
                                 std::to_string(kVggSlices[K].first_index + 2 * j) + ".";
      const index_t in = j ? co : ci;
      infos.push_back({prefix + "weight",
                       weight_offset(j),
                       co * 9 * in,
                       {co, in, 3, 3},
                       nn::Layout::conv_ohwi});
      infos.push_back({prefix + "bias", bias_offset(j), co, {co}, nn::Layout::same});
    }
  }

  template <index_t B>
  static void forward(const T* p, Saved<B>& s) {
    ops::conv2d_forward<G>(s.input, first_weight(p), bias(p, 0), s.relu[0].view());
    ops::relu_forward(s.relu[0], s.relu[0].view());
    for (int j = 1; j < convs; ++j) {
      ops::conv2d_forward<G>(s.relu[j - 1], weight(p, j), bias(p, j), s.relu[j].view());
      ops::relu_forward(s.relu[j], s.relu[j].view());
    }
  }

  // dinput = the gradient with respect to the first Nb samples of s.input, given `grad` at their
  // tap. `grad` is used as scratch.
  template <index_t Nb, index_t B>
  static void backward(const T* p, const Saved<B>& s, View<T, output<Nb>, Space> grad,
                       View<T, conv_input<Nb>, Space> dinput) {
    Tensor<T, output<Nb>, Space> scratch;
    // Views write elements on assignment, so the two gradient buffers swap as pointers.
    T* g = grad.data();
    T* other = scratch.data();
    for (int j = convs - 1; j >= 1; --j) {
      const View<T, output<Nb>, Space> gv(g);
      ops::relu_backward(s.relu[j].template batch<Nb>(0), gv, gv);
      ops::conv2d_backward_input<G>(weight(p, j), gv, View<T, output<Nb>, Space>(other));
      std::swap(g, other);
    }
    const View<T, output<Nb>, Space> gv(g);
    ops::relu_backward(s.relu[0].template batch<Nb>(0), gv, gv);
    ops::conv2d_backward_input<G>(first_weight(p), gv, dinput);
  }
};

}  // namespace detail

// LPIPS on N images of H x W x C (C = 1 or 3), in [-1, 1]. Usage:
//   train::LPIPS<float, 32, 32, 1> lpips;        // weights zero until loaded
//   lpips.load(io::SafetensorsFile::open(path));
//   train::LPIPS<float, 32, 32, 1>::Saved<32> saved;
//   lpips.forward(reconstruction, target, saved, distance.view());       // distance: Shape<32>
//   lpips.backward(saved, upstream, dreconstruction.view());
// With Space = cuda (in a .cu unit) the weights, the saved activations and every view passed in
// live on the device; load() still reads and converts on the host, then copies.
template <class T, index_t H, index_t W, index_t C, class Space = host>
class LPIPS {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "ldm::train::LPIPS: T must be float or double");
  static_assert(C == 1 || C == 3,
                "ldm::train::LPIPS: images must have 3 channels, or 1 (replicated to 3)");
  static_assert(H >= 16 && W >= 16,
                "ldm::train::LPIPS: VGG16 pools four times, so images must be at least 16x16");

  static constexpr int kSlices = int(detail::kVggSlices.size());
  template <int K>
  using Slice = detail::VggSlice<T, K, H, W, Space>;

  template <index_t N, class Seq = std::make_index_sequence<kSlices>>
  struct SavedSlices;
  template <index_t N, std::size_t... K>
  struct SavedSlices<N, std::index_sequence<K...>> {
    using type = std::tuple<typename Slice<int(K)>::template Saved<2 * N>...>;
  };

 public:
  using value_type = T;
  using space = Space;
  static constexpr index_t parameter_count = detail::lpips_lin_offset(kSlices);
  template <index_t N>
  using image = Shape<N, H, W, C>;

  // VGG's activations for the reconstruction (samples 0..N) and the target (N..2N), per slice.
  template <index_t N>
  struct Saved {
    typename SavedSlices<N>::type slices;
  };

  LPIPS() {
    models::static_for<kSlices>([&](auto k) {
      constexpr int K = int(k);
      Slice<K>::describe(infos_);
    });
    for (int k = 0; k < kSlices; ++k) {
      const index_t c = detail::kVggSlices[k].channels;
      infos_.push_back({"lin" + std::to_string(k) + ".model.1.weight",
                        detail::lpips_lin_offset(k),
                        c,
                        {1, c, 1, 1},
                        nn::Layout::same});
    }
    Tensor<T, Shape<3>> shift, scale;
    for (int c = 0; c < 3; ++c) {
      shift[c] = T(detail::kLpipsShift[c]);
      scale[c] = T(detail::kLpipsScale[c]);
    }
    copy_elements<host, Space>(shift.data(), shift_.data(), 3);
    copy_elements<host, Space>(scale.data(), scale_.data(), 3);
  }

  // Every weight, in the state_dict's order, with its name, PyTorch shape and layout.
  const std::vector<nn::ParameterInfo>& infos() const { return infos_; }
  View<T, Shape<parameter_count>, Space> values() { return weights_.view(); }

  // Loads every weight from `file`, an io::SafetensorsFile or anything with its file_name(),
  // contains(), read<float>() and require_only(): a template, so that train/ does not depend on
  // io/. A missing or unexpected tensor, or one of the wrong shape, is an ldm::Error naming it.
  template <class File>
  void load(const File& file) {
    std::set<std::string> expected;
    for (const auto& info : infos_)
      expected.insert(info.name);
    file.require_only(expected);
    std::vector<std::string> missing;
    for (const auto& info : infos_)
      if (!file.contains(info.name)) missing.push_back(info.name);
    if (!missing.empty()) {
      constexpr std::size_t kShown = 5;
      std::string listed;
      for (std::size_t i = 0; i < std::min(missing.size(), kShown); ++i)
        listed += (i ? ", '" : "'") + missing[i] + "'";
      if (missing.size() > kShown)
        listed += " and " + std::to_string(missing.size() - kShown) + " more";
      fail_expected(
          file.file_name() + ": LPIPS weights",
          "the " + std::to_string(infos_.size()) + " tensors of lpips.LPIPS(net='vgg')",
          "none named " + listed + " (" + std::to_string(missing.size()) + " missing in all)");
    }
    auto convert = [&](T* values) {
      std::vector<float> torch;
      for (const auto& info : infos_) {
        torch.resize(std::size_t(info.size));
        file.template read<float>(info.name, std::span<float>(torch),
                                  std::span<const std::int64_t>(info.torch_shape));
        nn::from_torch_layout(info, torch.data(), values);
      }
    };
    if constexpr (std::is_same_v<Space, host>) {
      convert(weights_.data());
    } else {
      Tensor<T, Shape<parameter_count>> staged;
      convert(staged.data());
      copy_elements<host, Space>(staged.data(), weights_.data(), std::size_t(parameter_count));
    }
  }

  // distance[n] = LPIPS(reconstruction[n], target[n]), overwritten; `saved` keeps what backward
  // needs.
  template <index_t N>
  void forward(View<const T, image<N>, Space> reconstruction, View<const T, image<N>, Space> target,
               Saved<N>& saved, View<T, Shape<N>, Space> distance) const {
    auto& input = std::get<0>(saved.slices).input;
    scale(reconstruction, input.template batch<N>(0));
    scale(target, input.template batch<N>(N));
    distance = T(0);
    models::static_for<kSlices>([&](auto k) {
      constexpr int K = int(k);
      auto& s = std::get<K>(saved.slices);
      if constexpr (K > 0)
        ops::max_pool2x2_forward(std::get<K - 1>(saved.slices).relu.back(), s.input.view());
      Slice<K>::forward(weights_.data(), s);
      detail::lpips_layer_forward(s.relu.back(), lin<K>(), distance);
    });
  }

  // dreconstruction = d(sum_n upstream[n] * distance[n]) / d reconstruction, overwritten, from
  // what forward saved.
  template <index_t N>
  void backward(const Saved<N>& saved, View<const T, Shape<N>, Space> upstream,
                View<T, image<N>, Space> dreconstruction) const {
    using Scaled = Shape<N, H, W, 3>;
    // Zero: no later slice sends the last tap a gradient.
    Tensor<T, typename Slice<kSlices - 1>::template output<N>, Space> tap;
    Tensor<T, Scaled, Space> dscaled;
    backward_slice<kSlices - 1>(saved, upstream, tap.view(), dscaled.view());
    auto unscaled = dscaled / broadcast<Scaled, 0, 1, 2>(scale_);
    if constexpr (C == 3)
      dreconstruction = unscaled;
    else
      dreconstruction.template reshape<Shape<N, H, W>>() = sum<3>(unscaled);
  }

 private:
  template <int K>
  View<const T, Shape<detail::kVggSlices[K].channels>, Space> lin() const {
    return View<const T, Shape<detail::kVggSlices[K].channels>, Space>(weights_.data() +
                                                                       detail::lpips_lin_offset(K));
  }

  // out = (x - shift) / scale, x's one channel standing for all three when C == 1.
  template <index_t N>
  void scale(View<const T, image<N>, Space> x, View<T, Shape<N, H, W, 3>, Space> out) const {
    using Scaled = Shape<N, H, W, 3>;
    const auto shift = broadcast<Scaled, 0, 1, 2>(shift_);
    const auto scale = broadcast<Scaled, 0, 1, 2>(scale_);
    if constexpr (C == 3)
      out = (x - shift) / scale;
    else
      out = (broadcast<Scaled, 3>(x.template reshape<Shape<N, H, W>>()) - shift) / scale;
  }

  // From the gradient at slice K's tap (all that the later slices sent it) down to the scaled
  // images: adds the tap's own term, goes through the slice, then the pool to slice K - 1's tap.
  template <int K, index_t N>
  void backward_slice(const Saved<N>& saved, View<const T, Shape<N>, Space> upstream,
                      View<T, typename Slice<K>::template output<N>, Space> tap,
                      View<T, Shape<N, H, W, 3>, Space> dscaled) const {
    const auto& s = std::get<K>(saved.slices);
    detail::lpips_layer_backward(s.relu.back(), lin<K>(), upstream, tap);
    const T* p = weights_.data();
    if constexpr (K == 0) {
      Slice<0>::backward(p, s, tap, dscaled);
    } else {
      Tensor<T, typename Slice<K>::template conv_input<N>, Space> dpooled;
      Slice<K>::backward(p, s, tap, dpooled.view());
      Tensor<T, typename Slice<K - 1>::template output<N>, Space> previous;
      ops::max_pool2x2_backward(std::get<K - 1>(saved.slices).relu.back().template batch<N>(0),
                                dpooled, previous.view());
      backward_slice<K - 1>(saved, upstream, previous.view(), dscaled);
    }
  }

  Tensor<T, Shape<parameter_count>, Space> weights_;
  Tensor<T, Shape<3>, Space> shift_, scale_;
  std::vector<nn::ParameterInfo> infos_;
};

}  // namespace ldm::train
