#pragma once
/// @file
/// The learning-rate schedules in a training state's metadata: how LatentDiffusion::save() writes
/// them and how load() refuses options that would change a resumed run's rates.

#include <charconv>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "ldm/core/error.hpp"
#include "ldm/io/safetensors.hpp"
#include "ldm/train/lr_schedule.hpp"

namespace ldm::pipeline {

/// The number's shortest decimal form that reads back as the same double.
inline std::string shortest_decimal(double value) {
  char text[32];
  const auto end = std::to_chars(text, text + sizeof text, value).ptr;
  return std::string(text, end);
}

/// A learning-rate schedule as training-state metadata under `key`: its type, warm-up steps,
/// total steps and cycles (`key + ".type"`, `".warmup_steps"`, `".total_steps"`, `".num_cycles"`).
inline void write_lr_schedule(io::SafetensorsWriter& out, const std::string& key,
                              const train::LRSchedule& schedule) {
  out.set_metadata(key + ".type", std::string(train::to_string(schedule.type)));
  out.set_metadata(key + ".warmup_steps", std::to_string(schedule.warmup_steps));
  out.set_metadata(key + ".total_steps", std::to_string(schedule.total_steps));
  out.set_metadata(key + ".num_cycles", shortest_decimal(schedule.num_cycles));
}

/// The metadata text as a whole number in [0, INT64_MAX].
/// @throws ldm::Error naming `where` when the text is missing or not such a number
inline std::uint64_t whole_number(const std::optional<std::string>& text,
                                  const std::string& where) {
  if (!text) fail(where, " is missing");
  try {
    std::size_t used = 0;
    const auto value = std::stoull(*text, &used);
    if (used == text->size() && value <= std::uint64_t(INT64_MAX)) return value;
  } catch (const std::exception&) {
  }
  fail_expected(where, "a whole number", "'" + *text + "'");
}

/// Refuses options whose schedule differs from the one a training state was saved with: a
/// resumed run must keep it, or its learning rates would jump. A state without one was saved
/// before schedules existed: its run had a constant rate. Only the numbers the type uses are
/// compared.
/// @param file,path the training state
/// @param key its metadata prefix (such as "unet_lr_schedule")
/// @param model the model, as the message names it ("the UNet")
/// @param options the schedule of the options the state is loaded with
/// @throws ldm::Error naming the field and both values when they differ, or the metadata's key
///         when it cannot be read
inline void require_same_lr_schedule(const io::SafetensorsFile& file,
                                     const std::filesystem::path& path, const std::string& key,
                                     const char* model, const train::LRSchedule& options) {
  const auto& metadata = file.metadata();
  auto text = [&](const std::string& field) -> std::optional<std::string> {
    const auto it = metadata.find(key + "." + field);
    if (it == metadata.end()) return std::nullopt;
    return it->second;
  };
  const std::string where = path.string() + ": metadata '" + key + ".";
  train::LRSchedule saved;
  if (const auto type = text("type")) {
    saved.type = train::lr_schedule_type(*type, where + "type'");
    saved.warmup_steps = std::int64_t(whole_number(text("warmup_steps"), where + "warmup_steps'"));
    saved.total_steps = std::int64_t(whole_number(text("total_steps"), where + "total_steps'"));
    const std::string cycles = text("num_cycles").value_or("");
    double value = 0;
    const auto [end, error] = std::from_chars(cycles.data(), cycles.data() + cycles.size(), value);
    if (error != std::errc() || end != cycles.data() + cycles.size())
      fail_expected(where + "num_cycles'", "a number", "'" + cycles + "'");
    saved.num_cycles = value;
  }
  auto differ = [&](const char* field, const auto& in_checkpoint, const auto& in_options) {
    fail(path.string(), ": ", model, "'s learning-rate schedule differs from the options' (", key,
         "): ", field, " is ", in_checkpoint, " in the checkpoint and ", in_options,
         " in the options; resume with the schedule the run was saved with");
  };
  using train::LRScheduleType;
  if (saved.type != options.type)
    differ("type", train::to_string(saved.type), train::to_string(options.type));
  if (saved.type == LRScheduleType::constant) return;
  if (saved.warmup_steps != options.warmup_steps)
    differ("warmup_steps", saved.warmup_steps, options.warmup_steps);
  if (saved.type == LRScheduleType::constant_with_warmup) return;
  if (saved.total_steps != options.total_steps)
    differ("total_steps", saved.total_steps, options.total_steps);
  if (saved.type == LRScheduleType::cosine && saved.num_cycles != options.num_cycles)
    differ("num_cycles", shortest_decimal(saved.num_cycles), shortest_decimal(options.num_cycles));
}

}  // namespace ldm::pipeline
