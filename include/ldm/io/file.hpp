#pragma once
/// @file
/// Whole-file reads and atomic whole-file writes (POSIX). Every failure is an ldm::Error naming
/// the path and the operating system's reason.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <filesystem>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "ldm/core/error.hpp"

namespace ldm::io {

namespace detail {
// Reads errno first thing; callers pass only existing strings so that nothing runs in between.
[[noreturn]] inline void fail_os(const std::string& path, const char* action) {
  int code = errno;
  fail(path, ": cannot ", action, ": ", std::generic_category().message(code));
}

// What a file that is not a regular one is, for an error message.
inline const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a folder";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
  if (S_ISSOCK(mode)) return "a socket";
  return "another kind";
}

// fsync of a file or folder opened read-only with `flags`; `kind` names it in errors.
inline void sync_path(const std::string& name, int flags, const char* kind) {
  int fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC | flags);
  int code = fd < 0 ? errno : 0;
  const char* failed = "open it to sync it";
  if (fd >= 0) {
    if (::fsync(fd) != 0) code = errno, failed = "sync it";
    ::close(fd);
  }
  if (code != 0)
    fail(name, ": cannot ", failed, " (", kind, "): ", std::generic_category().message(code));
}
}  // namespace detail

/// Flushes a folder's entries to stable storage (fsync on the folder): a file created, renamed
/// or removed in it survives a crash only once its folder is synced.
/// @throws ldm::Error naming the folder when it cannot be opened or synced.
inline void sync_folder(const std::filesystem::path& folder) {
  detail::sync_path(folder.empty() ? std::string(".") : folder.string(), O_DIRECTORY, "folder");
}

/// Flushes a regular file's contents to stable storage (fsync).
/// @throws ldm::Error naming the file when it cannot be opened or synced.
inline void sync_file(const std::filesystem::path& file) {
  // O_NONBLOCK: should the path have become a FIFO, opening it must not wait for a writer.
  detail::sync_path(file.string(), O_NONBLOCK, "file");
}

/// Reads a whole regular file (a symbolic link to one is followed).
/// @throws ldm::Error naming the path when it is missing, unreadable, or not a regular file: a
/// FIFO, a device, a socket or a folder is refused without waiting for a writer.
inline std::vector<std::byte> read_file(const std::filesystem::path& path) {
  const std::string name = path.string();
  // A FIFO or a device has no size to allocate, /dev/zero would never end, and opening a FIFO
  // blocks until a writer comes: so refuse them before opening. O_NONBLOCK covers a regular file
  // replaced by a FIFO between this stat and the open, and the fstat below catches it.
  struct stat info {};
  if (::stat(name.c_str(), &info) != 0) detail::fail_os(name, "open for reading");
  if (!S_ISREG(info.st_mode))
    fail_expected(name, "a regular file", detail::file_kind(info.st_mode));
  int fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) detail::fail_os(name, "open for reading");
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};

  if (::fstat(fd, &info) != 0) detail::fail_os(name, "stat");
  if (!S_ISREG(info.st_mode))
    fail_expected(name, "a regular file", detail::file_kind(info.st_mode));

  std::vector<std::byte> bytes(static_cast<std::size_t>(info.st_size));
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) detail::fail_os(name, "read");
    if (n == 0) break;  // the file shrank since fstat; keep what is there
    done += static_cast<std::size_t>(n);
  }
  bytes.resize(done);
  return bytes;
}

/// Writes "<target>.tmp-<pid>" in the target's folder and renames it over the target on commit(),
/// so a reader (or a crash) sees either the previous file or the complete new one, never a
/// partial file. Without a commit() (an error, an exception) the destructor removes the temporary
/// file and the previous target stays untouched.
class AtomicFileWriter {
 public:
  /// Creates the temporary file beside `target`.
  /// @throws ldm::Error when it cannot be created
  explicit AtomicFileWriter(const std::filesystem::path& target)
      : target_(target.string()), temp_(target_ + ".tmp-" + std::to_string(::getpid())) {
    fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) detail::fail_os(temp_, "create");
  }
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;
  ~AtomicFileWriter() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(temp_.c_str());
  }

  /// Appends `bytes` to the temporary file.
  /// @throws ldm::Error when the write fails (a full disk, ...)
  void write(std::span<const std::byte> bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::write(fd_, bytes.data(), bytes.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) detail::fail_os(temp_, "write");
      bytes = bytes.subspan(static_cast<std::size_t>(n));
    }
  }

  /// Syncs the temporary file and renames it over the target, then syncs the folder. Call once.
  /// @throws ldm::Error when a sync, the close or the rename fails
  void commit() {
    // fsync before rename: otherwise a crash can leave the new name pointing at unwritten blocks.
    if (::fsync(fd_) != 0) detail::fail_os(temp_, "sync");
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) detail::fail_os(temp_, "close");
    if (::rename(temp_.c_str(), target_.c_str()) != 0)
      detail::fail_os(target_, "rename the temporary file over it");
    committed_ = true;
    // The rename itself is durable only once the folder is synced.
    sync_folder(std::filesystem::path(target_).parent_path());
  }

 private:
  std::string target_, temp_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace ldm::io
