#pragma once
/// @file
/// ldm::Error is for bad input from outside the program (files, images, checkpoints, run-time
/// configuration). Internal invariants use assert; shape errors are compile errors.

#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace ldm {

/// The exception for bad input from outside the program: a file, image, checkpoint or run-time
/// setting that is not what ldm expects. Its message names the file, field or flag, what was
/// expected and what was found.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Streams every argument into one message: fail("file.bin: header size: expected <= ",
/// n, ", found ", m) keeps call sites short and messages uniform.
/// @throws ldm::Error always, with the message
template <class... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  std::ostringstream message;
  (message << ... << parts);
  throw Error(message.str());
}

/// The standard shape of a message: "<where>: expected <expected>, found <found>".
/// @throws ldm::Error always, with that message
template <class Expected, class Found>
[[noreturn]] void fail_expected(std::string_view where, const Expected& expected,
                                const Found& found) {
  fail(where, ": expected ", expected, ", found ", found);
}

}  // namespace ldm
