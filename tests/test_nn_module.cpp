// The module contract (nn/module.hpp): what saved_bytes derives from a Saved struct's declaration
// is what constructing one allocates, for every module and model; parameter counts that disagree
// with what a module binds are errors.
#include <doctest/doctest.h>

#include <ldm/ldm.hpp>
#include <ldm/models/unet.hpp>
#include <memory>
#include <string>

#include "support/errors.hpp"

using namespace ldm;

namespace {

// The host bytes a default-constructed T holds (its tensors), measured by the host allocator.
template <class T>
std::size_t measured_bytes() {
  const std::size_t before = memory<host>::stats().in_use;
  const auto object = std::make_unique<T>();
  return memory<host>::stats().in_use - before;
}

template <class Saved>
void check_saved_bytes(const char* what) {
  INFO(what);
  CHECK(nn::saved_bytes<Saved> == measured_bytes<Saved>());
  CHECK(nn::saved_bytes<Saved> > 0);
}

using AE = models::AutoencoderKL<float, host, 1, 32, configs::Tiny::autoencoder>;
using OddAE = models::AutoencoderKL<float, host, 3, 16,
                                    AutoencoderKLConfig{.block_out_channels = {4, 8},
                                                        .layers_per_block = 2,
                                                        .latent_channels = 3,
                                                        .norm_num_groups = 2}>;
using UNet = models::UNet<float, host, 4, 8, configs::Tiny::unet>;
using OneLevelUNet = models::UNet<float, host, 3, 4,
                                  UNetConfig{.block_out_channels = {8},
                                             .layers_per_block = 1,
                                             .attention = {true},
                                             .attention_head_dim = 4,
                                             .norm_num_groups = 4}>;
using ConditionUNet =
    models::UNetCondition<float, host, 4, 8, 3,
                          UNetConditionConfig{.block_out_channels = {8, 16},
                                              .layers_per_block = 1,
                                              .cross_attention = {true, false},
                                              .attention_head_dim = {2, 4},
                                              .cross_attention_dim = 12,
                                              .transformer_layers_per_block = {2, 1},
                                              .norm_num_groups = 4}>;

}  // namespace

TEST_CASE("saved_bytes: scalars, placeholders and empty structs hold nothing") {
  struct Flags {
    std::uint64_t seed = 0;
    bool dropped = false;
    char placeholder = 0;
    nn::NoSaved none;
  };
  CHECK(nn::saved_bytes<Flags> == 0);
  CHECK(nn::saved_bytes<nn::NoSaved> == 0);
  struct Mixed {
    Tensor<float, Shape<3, 5>> a;
    std::array<Tensor<double, Shape<2>>, 3> b;
    std::tuple<Tensor<float, Shape<7>>> c;
    std::array<Flags, 2> d;
    Flags e;
  };
  CHECK(nn::saved_bytes<Mixed> == 4 * 15 + 8 * 2 * 3 + 4 * 7);
  CHECK(nn::saved_bytes<Mixed> == measured_bytes<Mixed>());
}

TEST_CASE("saved_bytes: every module's Saved, as constructing it allocates") {
  check_saved_bytes<nn::GroupNorm<float, host, 12, 4>::Saved<2>>("GroupNorm");
  check_saved_bytes<nn::Upsample2D<float, host, 4, 5, 6>::Saved<2>>("Upsample2D");
  check_saved_bytes<nn::Attention<float, host, 3, 5, 8, 4, 4>::Saved<2>>("Attention");
  check_saved_bytes<nn::TimestepEmbedding<float, host, 8, 32>::Saved<3>>("TimestepEmbedding");
  check_saved_bytes<nn::ResnetBlock2D<float, host, 6, 5, 8, 12, 16, 4>::Saved<2>>(
      "ResnetBlock2D with temb and shortcut");
  check_saved_bytes<nn::ResnetBlock2D<float, host, 6, 5, 8, 8, 0, 4>::Saved<2>>(
      "ResnetBlock2D without either");
  check_saved_bytes<nn::LayerNorm<float, host, 5, 8>::Saved<2>>("LayerNorm");
  check_saved_bytes<nn::FeedForward<float, host, 5, 8>::Saved<2>>("FeedForward");
  check_saved_bytes<nn::CrossAttention<float, host, 5, 8, 4, 3, 6>::Saved<2>>("CrossAttention");
  check_saved_bytes<nn::BasicTransformerBlock<float, host, 5, 8, 4, 3, 6>::Saved<2>>(
      "BasicTransformerBlock");
  check_saved_bytes<nn::Transformer2DModel<float, host, 3, 5, 8, 2, 4, 3, 6, 2, 4,
                                           nn::TokenProjection::linear>::Saved<2>>(
      "Transformer2DModel");
  CHECK(nn::saved_bytes<nn::Conv2d<float, host, 4, 4, 2, 3>::Saved<2>> == 0);
  CHECK(nn::saved_bytes<nn::Downsample2D<float, host, 4, 4, 2>::Saved<2>> == 0);
}

TEST_CASE("saved_bytes: the models' Saved, as constructing them allocates") {
  check_saved_bytes<AE::Saved<2>>("AutoencoderKL tiny");
  check_saved_bytes<AE::EncodeSaved<2>>("AutoencoderKL tiny, encode");
  check_saved_bytes<OddAE::Saved<3>>("AutoencoderKL 3x16x16, two levels of 4 and 8 channels");
  check_saved_bytes<UNet::Saved<2>>("UNet tiny");
  check_saved_bytes<OneLevelUNet::Saved<2>>("UNet with one level");
  check_saved_bytes<ConditionUNet::Saved<2>>("UNetCondition");
  check_saved_bytes<train::LPIPS<float, 32, 32, 1>::Saved<2>>("LPIPS");
  check_saved_bytes<eval::FashionClassifier<32>::Saved<4>>("FashionClassifier");
}

namespace {
// A module that declares parameter_count Count but binds 4 parameters.
template <index_t Count>
struct Miscounted {
  using value_type = float;
  static constexpr index_t parameter_count = Count;
  explicit Miscounted(nn::ParameterBinder<float, host> b)
      : weight(b.take<Shape<4>>("weight", {4}, nn::Layout::same, nn::Init::zeros, 1)) {}
  nn::Param<float, Shape<4>, host> weight;
};
using Short = Miscounted<3>;
using Long = Miscounted<5>;
}  // namespace

TEST_CASE("a parameter_count that disagrees with what the module binds is an error") {
  test::check_message(test::error_of([] { nn::Owned<Short> m(0); }),
                      {"weight", "parameter_count is 3"});
  test::check_message(test::error_of([] { nn::Owned<Long> m(0); }),
                      {"parameter_count is 5", "binds 4"});
}
