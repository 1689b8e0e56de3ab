#pragma once
/// @file
/// A small command-line parser for programs (the trainer's, the examples'): `--name value` and
/// `--name=value` options bound to variables, `--flag` switches, generated --help, --version, and
/// errors that name the option, what it expects and what was given.

#include <cstdint>
#include <cstdio>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "ldm/core/error.hpp"
#include "ldm/version.hpp"

namespace ldm::cli {

/// What --version prints: "fashion (ldm 0.1.0)".
inline void print_version(std::string_view program) {
  std::printf("%.*s (ldm %s)\n", int(program.size()), program.data(), ldm::version.string);
}

/// The options of one command, each bound to a variable whose value is its default.
class Options {
 public:
  /// @param usage the first line of --help ("fashion train [options]"); its first word is the
  ///        program's name for --version
  /// @param description the paragraph --help prints below it
  Options(std::string usage, std::string description)
      : usage_(std::move(usage)), description_(std::move(description)) {}

  /// `--name TEXT` sets *value.
  void add(std::string name, std::string* value, std::string help) {
    add_option(std::move(name), "TEXT", *value, std::move(help),
               [value](std::string_view text) { *value = std::string(text); });
  }
  /// `--name N` sets *value (a whole number; anything else is an ldm::Error naming the option).
  void add(std::string name, std::int64_t* value, std::string help) {
    add_option(std::move(name), "N", std::to_string(*value), std::move(help),
               [value, name](std::string_view text) { *value = whole_number(name, text); });
  }
  /// `--name N` sets *value (a whole number that fits in an int).
  void add(std::string name, int* value, std::string help) {
    add_option(
        std::move(name), "N", std::to_string(*value), std::move(help),
        [value, name](std::string_view text) {
          const std::int64_t number = whole_number(name, text);
          if (number < std::numeric_limits<int>::min() || number > std::numeric_limits<int>::max())
            ldm::fail_expected("--" + name, "a whole number that fits in an int",
                               "'" + std::string(text) + "'");
          *value = int(number);
        });
  }
  /// `--name X` sets *value (a number).
  void add(std::string name, double* value, std::string help) {
    add_option(std::move(name), "X", shortest(*value), std::move(help),
               [value, name](std::string_view text) { *value = real_number(name, text); });
  }
  /// An option that may be given several times: each occurrence appends its value.
  void add_repeated(std::string name, std::vector<std::string>* values, std::string help) {
    add_option(std::move(name), "TEXT", "", std::move(help) + " (may be repeated)",
               [values](std::string_view text) { values->emplace_back(text); });
  }
  /// `--name` (no value) sets *value to true.
  void add_switch(std::string name, bool* value, std::string help) {
    options_.push_back({std::move(name), "", "", std::move(help), nullptr, value});
  }

  /// Parses argv[first...]; returns false when --help or --version was asked for (and printed).
  bool parse(int argc, char** argv, int first = 1) {
    for (int i = first; i < argc; ++i) {
      std::string_view arg = argv[i];
      if (arg == "--help" || arg == "-h") {
        print_help();
        return false;
      }
      if (arg == "--version") {
        print_version(usage_.substr(0, usage_.find(' ')));
        return false;
      }
      if (!arg.starts_with("--"))
        ldm::fail_expected("argument '" + std::string(arg) + "'", "an option starting with --",
                           "a bare word; see --help");
      std::string_view name = arg.substr(2), inline_value;
      const bool has_inline = name.find('=') != std::string_view::npos;
      if (has_inline) {
        inline_value = name.substr(name.find('=') + 1);
        name = name.substr(0, name.find('='));
      }
      Option& option = find(name);
      if (option.flag) {
        if (has_inline) ldm::fail("--", name, " is a switch and takes no value");
        *option.flag = true;
        continue;
      }
      if (!has_inline && i + 1 >= argc) ldm::fail("--", name, " needs a value (", option.meta, ")");
      option.set(has_inline ? inline_value : std::string_view(argv[++i]));
    }
    return true;
  }

  /// Prints the usage, the description and every option with its help and default.
  void print_help() const {
    std::printf("usage: %s\n\n%s\n\noptions:\n", usage_.c_str(), description_.c_str());
    for (const auto& option : options_) {
      std::string head = "  --" + option.name + (option.meta.empty() ? "" : " " + option.meta);
      std::printf("%-28s %s", head.c_str(), option.help.c_str());
      if (!option.fallback.empty() && option.fallback != "0" && !option.flag)
        std::printf(" [default: %s]", option.fallback.c_str());
      std::printf("\n");
    }
    std::printf("  %-26s %s\n", "--help", "this text");
    std::printf("  %-26s %s\n", "--version", "the program's name and ldm's version");
  }

 private:
  struct Option {
    std::string name, meta, fallback, help;
    std::function<void(std::string_view)> set;
    bool* flag = nullptr;
  };

  void add_option(std::string name, std::string meta, std::string fallback, std::string help,
                  std::function<void(std::string_view)> set) {
    options_.push_back(
        {std::move(name), std::move(meta), std::move(fallback), std::move(help), std::move(set)});
  }

  Option& find(std::string_view name) {
    for (auto& option : options_)
      if (option.name == name) return option;
    ldm::fail("unknown option --", name, "; see --help");
  }

  static std::int64_t whole_number(const std::string& name, std::string_view text) {
    try {
      std::size_t used = 0;
      const long long value = std::stoll(std::string(text), &used);
      if (used == text.size()) return value;
    } catch (const std::exception&) {
    }
    ldm::fail_expected("--" + name, "a whole number", "'" + std::string(text) + "'");
  }
  static double real_number(const std::string& name, std::string_view text) {
    try {
      std::size_t used = 0;
      const double value = std::stod(std::string(text), &used);
      if (used == text.size()) return value;
    } catch (const std::exception&) {
    }
    ldm::fail_expected("--" + name, "a number", "'" + std::string(text) + "'");
  }
  static std::string shortest(double value) {
    char text[32];
    std::snprintf(text, sizeof text, "%g", value);
    return text;
  }

  std::string usage_, description_;
  std::vector<Option> options_;
};

/// "3,7" as whole numbers; `flag` names the option in the error.
inline std::vector<std::int64_t> whole_numbers(const std::string& flag, const std::string& text) {
  std::vector<std::int64_t> numbers;
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = text.find(',', start);
    const std::string part = text.substr(start, comma - start);
    std::size_t used = 0;
    long long value = 0;
    try {
      value = std::stoll(part, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (part.empty() || used != part.size())
      ldm::fail_expected(flag, "whole numbers separated by commas", "'" + text + "'");
    numbers.push_back(value);
    if (comma == std::string::npos) return numbers;
    start = comma + 1;
  }
}

}  // namespace ldm::cli
