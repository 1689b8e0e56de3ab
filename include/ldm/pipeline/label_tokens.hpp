#pragma once
/// @file
/// A learned label-token table: class conditioning by cross-attention, as LDM's class-conditional
/// ImageNet model (its ClassEmbedder feeding the UNet's cross-attention). A configuration whose
/// unet is a UNetConditionConfig asks LatentDiffusion for it by stating its number of classes
/// beside its context's length:
///
/// @code{.cpp}
///   struct Labelled : ldm::configs::Tiny {
///     static constexpr ldm::UNetConditionConfig unet{...};  // cross-attention,
///     cross_attention_dim static constexpr ldm::index_t context_tokens = 2; static constexpr
///     ldm::index_t label_classes = 10;  // labels 0 .. 9, and 10: no class
///   };
///   model.diffusion_step<32>(images, labels);            // as a class-conditional model
///   model.sample<16>(model.sampler(50), seed, {.labels = wanted, .guidance_scale = 3}, out);
/// @endcode
///
/// The table has label_classes + 1 rows of context_tokens x cross_attention_dim values; the last
/// is the null label of classifier-free guidance (pipeline/class_conditioning.hpp: label dropout
/// trains it, guided sampling's second half reads it). A sample's context is its label's row,
/// and the UNet's gradient of the context is added into the rows that were read, so the table
/// learns with the UNet: the same AdamW settings and learning rate, one gradient clipping over
/// both, its own EMA (saved as the UNet's EMA is), the data-parallel all-reduce and broadcast.
/// save() writes the table's EMA beside unet/ as label_tokens.safetensors (one tensor,
/// "label_tokens", of shape [label_classes + 1, context_tokens, cross_attention_dim]); its raw
/// values, moments and EMA go to the training state.

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "ldm/core/copy.hpp"
#include "ldm/core/error.hpp"
#include "ldm/io/safetensors.hpp"
#include "ldm/nn/embedding.hpp"
#include "ldm/nn/finite.hpp"
#include "ldm/nn/parameters.hpp"
#include "ldm/train/adamw.hpp"
#include "ldm/train/ema.hpp"

namespace ldm::pipeline {

/// The file LatentDiffusion::save() writes the label-token table's EMA to, beside unet/.
inline constexpr const char* label_tokens_file = "label_tokens.safetensors";

/// The learned label-token table of LatentDiffusion (see the file's comment): its weights and
/// gradients, their EMA, and the optimiser's moments, in Space.
/// @tparam Classes the classes (labels 0 .. Classes - 1; label Classes is the null label)
/// @tparam Tokens each context's tokens
/// @tparam Dim each token's channels (the UNet's cross_attention_dim)
template <class Space, index_t Classes, index_t Tokens, index_t Dim>
class LabelTokenTable {
  static constexpr index_t row_size = Tokens * Dim;
  // A row per label, the null label's last. nn::Embedding draws it from N(0, 1), PyTorch's
  // nn.Embedding and so LDM's ClassEmbedder: rows of a text encoder's scale (about unit per
  // channel), which the cross-attention's key and value projections are initialised for, and
  // distinct from the first step, so that every class has its own context before any training.
  using Table = nn::Embedding<float, Space, Classes + 1, row_size>;

 public:
  /// The table's values: (Classes + 1) * Tokens * Dim.
  static constexpr index_t parameter_count = Table::parameter_count;
  /// The file save() writes beside unet/.
  static constexpr const char* file_name = label_tokens_file;
  /// N contexts: Shape<N, Tokens, Dim>.
  template <index_t N>
  using context = Shape<N, Tokens, Dim>;

  /// A table drawn from `seed`, with its optimiser (no steps taken) and its EMA (the table).
  /// @throws ldm::Error when an AdamW setting is out of its range
  LabelTokenTable(std::uint64_t seed, const train::AdamWConfig& optimizer,
                  const train::EMAConfig& ema)
      : table_(seed),
        ema_table_(seed),
        optimizer_(optimizer, parameter_count),
        ema_(ema, values()) {}

  /// Each sample's context: the row of its label (in [0, Classes], checked by the caller), from
  /// the training values or from the EMA as of the last refresh_ema().
  template <index_t N>
  void gather(View<const std::int32_t, Shape<N>, Space> labels, View<float, context<N>, Space> out,
              bool use_ema) const {
    const auto& from = use_ema ? ema_table_ : table_;
    from->forward(labels, nn::NoSaved{}, out.template reshape<Shape<N, row_size>>());
  }
  /// Adds the gradient of each sample's context into its label's row.
  template <index_t N>
  void add_gradient(View<const std::int32_t, Shape<N>, Space> labels,
                    View<const float, context<N>, Space> dcontext) const {
    table_->backward(labels, nn::NoSaved{}, dcontext.template reshape<Shape<N, row_size>>());
  }

  /// The training values, in Space.
  std::span<float> values() { return {table_.values().data(), std::size_t(parameter_count)}; }
  /// Their gradients, in Space.
  std::span<float> grads() { return {table_.grads().data(), std::size_t(parameter_count)}; }
  /// The gradients as a flat View (for accumulating micro-batches).
  View<float, Shape<parameter_count>, Space> grads_view() { return table_.grads(); }
  /// The table's AdamW (stepped with the UNet's, at its learning rate).
  train::AdamW<Space>& optimizer() { return optimizer_; }
  /// The table's EMA (stepped with the UNet's).
  train::EMA<Space>& ema() { return ema_; }
  /// The EMA's values become those gather(..., true) reads.
  void refresh_ema() const {
    ema_.copy_to({ema_table_.values().data(), std::size_t(parameter_count)});
  }

  /// Fails naming `what` and the first value that is not finite, of the values, the EMA or
  /// the optimiser's moments.
  /// @throws ldm::Error when one is not finite
  void require_finite(const std::string& what) const {
    nn::require_finite_parameters<Space>(what + ": the label tokens", table_.infos(),
                                         table_.values().data(), parameter_count);
    refresh_ema();
    nn::require_finite_parameters<Space>(what + ": the label tokens' EMA", ema_table_.infos(),
                                         ema_table_.values().data(), parameter_count);
    nn::require_finite_parameters<host>(what + ": the label tokens' AdamW exp_avg", table_.infos(),
                                        optimizer_.exp_avg_host().data(), parameter_count);
    nn::require_finite_parameters<host>(what + ": the label tokens' AdamW exp_avg_sq",
                                        table_.infos(), optimizer_.exp_avg_sq_host().data(),
                                        parameter_count);
  }

  /// Writes the EMA's table to `path` (what sampling a loaded model reads).
  /// @throws ldm::Error when the file cannot be written
  void write(const std::filesystem::path& path) const {
    io::SafetensorsWriter out;
    const std::vector<float> ema = ema_.shadow_host();
    out.add("label_tokens", std::span<const float>(ema), shape());
    out.set_metadata("format",
                     "ldm label tokens 1 (row k: the context of label k; the last row: no label)");
    out.write(path);
  }

  /// The table saved at `path` by write(), in host memory.
  /// @throws ldm::Error naming the file when it is missing, not safetensors, lacks the tensor
  ///         "label_tokens" or holds it in another shape, or a value is not finite
  static std::vector<float> read(const std::filesystem::path& path) {
    if (!std::filesystem::exists(path))
      fail(path.string(),
           ": missing; a configuration with label_classes keeps its learned label tokens there "
           "(LatentDiffusion::save writes it)");
    const auto file = io::SafetensorsFile::open(path);
    auto values = std::vector<float>(std::size_t(parameter_count));
    const auto expected = shape();
    file.read<float>("label_tokens", values, expected);
    nn::require_finite_values(values, path.string() + ": label_tokens");
    return values;
  }

  /// Loaded values (host memory, from read()): the training values and the EMA, which restarts
  /// from them, as the UNet's does on load.
  void set(const std::vector<float>& values) {
    copy_elements<host, Space>(values.data(), table_.values().data(), values.size());
    ema_ = train::EMA<Space>(ema_.config(), this->values());
  }

  /// Adds the training state's tensors (flat, as the UNet's): values, moments, EMA.
  void add_training_state(io::SafetensorsWriter& out) const {
    auto add = [&](const char* name, const std::vector<float>& data) {
      out.add(name, std::span<const float>(data), {std::int64_t(data.size())});
    };
    add("label_tokens.parameters", host_vector<Space>(table_.values().data(), parameter_count));
    add("label_tokens.exp_avg", optimizer_.exp_avg_host());
    add("label_tokens.exp_avg_sq", optimizer_.exp_avg_sq_host());
    add("label_tokens.ema", ema_.shadow_host());
  }
  /// Restores what add_training_state() wrote; the table steps with the UNet, so it takes the
  /// UNet's optimiser and EMA step counts.
  /// @throws ldm::Error naming the file when a tensor is missing or of another size
  void read_training_state(const io::SafetensorsFile& file, std::int64_t optimizer_steps,
                           std::int64_t ema_steps) {
    auto read = [&](const char* name) {
      auto data = std::vector<float>(std::size_t(parameter_count));
      const std::int64_t flat[] = {std::int64_t(parameter_count)};
      file.read<float>(name, data, flat);
      return data;
    };
    const auto raw = read("label_tokens.parameters");
    copy_elements<host, Space>(raw.data(), table_.values().data(), raw.size());
    optimizer_.restore(optimizer_steps, read("label_tokens.exp_avg"),
                       read("label_tokens.exp_avg_sq"));
    ema_.restore(ema_steps, read("label_tokens.ema"));
  }

  /// Makes every rank hold rank 0's values, moments and EMA.
  template <class Comm>
  void broadcast(Comm& comm) {
    comm.broadcast(values(), 0);
    for (std::span<float> moment : optimizer_.moments())
      comm.broadcast(moment, 0);
    comm.broadcast(ema_.shadow_buffer(), 0);
  }

  /// @{
  /// The training values, their gradients (those of the last training step, after clipping) and
  /// the EMA's values, in host memory: rows of Tokens x Dim, the null label's last.
  std::vector<float> values_host() const {
    return host_vector<Space>(table_.values().data(), std::size_t(parameter_count));
  }
  std::vector<float> grads_host() const {
    return host_vector<Space>(table_.grads().data(), std::size_t(parameter_count));
  }
  std::vector<float> ema_host() const { return ema_.shadow_host(); }
  /// @}

 private:
  static std::vector<std::int64_t> shape() {
    return {std::int64_t(Classes + 1), std::int64_t(Tokens), std::int64_t(Dim)};
  }

  nn::Owned<Table, Space> table_;
  mutable nn::Owned<Table, Space> ema_table_;
  train::AdamW<Space> optimizer_;
  train::EMA<Space> ema_;
};

/// What LatentDiffusion holds in place of a LabelTokenTable when its configuration has none.
struct NoLabelTokenTable {
  /// Takes LabelTokenTable's arguments and keeps nothing.
  template <class... Args>
  explicit NoLabelTokenTable(Args&&...) {}
};

}  // namespace ldm::pipeline
