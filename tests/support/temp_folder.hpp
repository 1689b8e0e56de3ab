#pragma once
// A fresh folder under the system's temporary folder for one test, removed with everything in it
// when the test ends. The name carries the process id and a counter, so test programs running in
// parallel (ctest -j) never share one.

#include <unistd.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace ldm::test {

struct TempFolder {
  std::filesystem::path path;

  explicit TempFolder(const std::string& prefix = "ldm_test") {
    static int count = 0;
    path = std::filesystem::temp_directory_path() /
           (prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(count++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempFolder() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  TempFolder(const TempFolder&) = delete;
  TempFolder& operator=(const TempFolder&) = delete;

  std::filesystem::path operator/(const std::string& name) const { return path / name; }

  // Whether an atomic writer left a "<name>.tmp-<pid>" file behind.
  bool has_temporary_files() const {
    for (const auto& item : std::filesystem::directory_iterator(path))
      if (item.path().filename().string().find(".tmp-") != std::string::npos) return true;
    return false;
  }
};

}  // namespace ldm::test
