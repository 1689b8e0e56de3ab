#pragma once
// Whether a program can write where it was told to, checked before it spends time on anything
// else: the folder is created and a probe file written and removed in it.

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <string>
#include <system_error>

#include "ldm/core/error.hpp"

namespace ldm::cli {

/// Creates `folder` (and its parents) if needed and checks that a file can be created in it.
/// `flag` names the option the folder came from, for the message.
inline void require_writable_folder(const std::filesystem::path& folder, const std::string& flag) {
  const std::string name = folder.empty() ? "." : folder.string();
  std::error_code code;
  std::filesystem::create_directories(name, code);
  if (code) ldm::fail(flag, " ", name, ": cannot create the folder: ", code.message());
  if (!std::filesystem::is_directory(name, code))
    ldm::fail_expected(flag + " " + name, "a folder", "a file");
  const std::string probe = name + "/.write-test-" + std::to_string(::getpid());
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int error = errno;
    ldm::fail(flag, " ", name, ": cannot write there: ", std::generic_category().message(error));
  }
  ::close(fd);
  ::unlink(probe.c_str());
}

}  // namespace ldm::cli
