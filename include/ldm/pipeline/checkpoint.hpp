#pragma once
/// @file
/// Model folders as diffusers reads and writes them (config.json + diffusion_pytorch_model
/// .safetensors, diffusers' names, PyTorch layouts). checkpoint_store.hpp saves whole checkpoints.

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "ldm/io/file.hpp"
#include "ldm/io/safetensors.hpp"
#include "ldm/nn/state_dict.hpp"
#include "ldm/pipeline/diffusers_config.hpp"

namespace ldm::pipeline {

/// The weights file of a diffusers model folder.
inline constexpr const char* weights_file = "diffusion_pytorch_model.safetensors";
/// The configuration file of a diffusers model folder.
inline constexpr const char* config_file = "config.json";

/// Writes `text` to `path` through io::AtomicFileWriter: the file is whole or untouched.
/// @throws ldm::Error when the file cannot be written
inline void write_text_atomically(const std::filesystem::path& path, const std::string& text) {
  io::AtomicFileWriter out(path);
  out.write(std::as_bytes(std::span(text.data(), text.size())));
  out.commit();
}

namespace detail {
// Python's json module writes infinities and NaN as bare -Infinity, Infinity and NaN (diffusers'
// DPMSolverMultistepScheduler config holds lambda_min_clipped: -Infinity), which JSON lacks:
// outside strings, they become the strings "-Infinity", "Infinity" and "NaN", for the readers of
// the fields that take them to accept and the others to refuse by name.
inline std::string quote_python_constants(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      out += c;
      if (c == '\\' && i + 1 < text.size())
        out += text[++i];
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    bool quoted = false;
    for (std::string_view constant : {"-Infinity", "Infinity", "NaN"})
      if (text.substr(i, constant.size()) == constant) {
        out += '"';
        out += constant;
        out += '"';
        i += constant.size() - 1;
        quoted = true;
        break;
      }
    if (!quoted) out += c;
  }
  return out;
}
}  // namespace detail

/// The JSON document in the file at `path`. Python's bare -Infinity, Infinity and NaN (which
/// diffusers' files may hold) are read as the strings "-Infinity", "Infinity" and "NaN".
/// @throws ldm::Error when the file cannot be read or is not valid JSON
inline json read_json(const std::filesystem::path& path) {
  const auto bytes = io::read_file(path);
  try {
    return json::parse(detail::quote_python_constants(
        std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size())));
  } catch (const io::JsonError& e) {
    fail(path.string(), ": not valid JSON: ", e.what());
  }
}

/// Writes folder/config.json and folder/diffusion_pytorch_model.safetensors (float32).
/// @param folder created if missing
/// @param config the model's config.json
/// @param infos the model's parameters: names, shapes, offsets in `values`
/// @param values the flat parameter buffer, in host memory
/// @throws ldm::Error when the folder cannot be created or a file cannot be written
template <class T>
void save_model_folder(const std::filesystem::path& folder, const json& config,
                       const std::vector<nn::ParameterInfo>& infos, const T* values) {
  std::error_code ec;
  std::filesystem::create_directories(folder, ec);
  if (ec) fail(folder.string(), ": cannot create the folder: ", ec.message());
  io::SafetensorsWriter writer;
  writer.set_metadata("format", "pt");
  for (const auto& info : infos) {
    const auto torch = nn::to_torch_layout(info, values);
    writer.add(info.name, torch, info.torch_shape);
  }
  writer.write(folder / weights_file);
  write_text_atomically(folder / config_file, config.dump(2) + "\n");
}

/// Reads a model folder into `values` after checking its config against the compiled one (with
/// `defaults` for the fields it leaves out). The weights file must hold exactly the model's
/// parameters; F32, BF16 and F16 files all load. Returns the folder's config.json.
/// @param folder the model folder
/// @param expected_config the config.json the compiled model would write
/// @param defaults diffusers' constructor defaults for the fields the file leaves out
/// @param runtime_fields fields of the config not checked (values chosen or learned at run time)
/// @param infos the model's parameters: names, shapes, offsets in `values`
/// @param values receives the parameters (host memory)
/// @throws ldm::Error when a file cannot be read, config.json is not valid JSON or does not match
///         `expected_config` (naming the field), or the weights file is not valid safetensors,
///         lacks a parameter, holds another tensor, or holds one of another shape
template <class T>
json load_model_folder(const std::filesystem::path& folder, const json& expected_config,
                       const json& defaults, const std::vector<std::string>& runtime_fields,
                       const std::vector<nn::ParameterInfo>& infos, T* values) {
  const json config = read_json(folder / config_file);
  require_matching_config((folder / config_file).string(), config, expected_config, defaults,
                          runtime_fields);
  const auto file = io::SafetensorsFile::open(folder / weights_file);
  std::set<std::string> names;
  for (const auto& info : infos)
    names.insert(info.name);
  file.require_only(names);
  std::vector<float> torch;
  for (const auto& info : infos) {
    torch.resize(static_cast<std::size_t>(info.size));
    file.read<float>(info.name, torch, info.torch_shape);
    nn::from_torch_layout(info, torch.data(), values);
  }
  return config;
}

}  // namespace ldm::pipeline
