#pragma once
// Checkpoints that survive any sequence of crashes. A checkpoint "<folder>" lives in numbered
// complete folders beside it, "<folder>.000001", "<folder>.000002", ..., and "<folder>" itself
// is a symbolic link to the newest one, so users and diffusers open "<folder>" as a plain folder.
//
// save_checkpoint(), step by step:
//  1. adopts a plain folder at "<folder>" (an earlier ldm's checkpoint, or any diffusers folder)
//     and an earlier ldm's "<folder>.previous" by renaming them to numbered names, so that
//     "<folder>" can become the link;
//  2. writes the new checkpoint into "<folder>.<n>.partial", n one above every number in use;
//  3. syncs every file and folder in it, renames it to "<folder>.<n>" and syncs the parent
//     folder: from here the new checkpoint is complete and durable. A name "<folder>.<digits>"
//     never holds anything but a complete checkpoint;
//  4. points "<folder>" at it: a new link "<folder>.link" renamed over "<folder>", parent synced;
//  5. removes the complete checkpoints older than the newest `keep` and the leftovers of
//     interrupted saves, each renamed to "<folder>.<n>.deleting" before its files go, so that a
//     half-removed folder never bears a complete checkpoint's name.
// Nothing complete is removed before its successor is durable, so a crash (or several in a
// row) at any point leaves at least the last complete checkpoint; find_checkpoint() looks at
// the numbered folders rather than the link, which a crash between steps 3 and 4 leaves one
// checkpoint behind. An error (a full disk) during steps 2-3 removes the partial folder and
// leaves everything else as it was.

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "ldm/core/error.hpp"
#include "ldm/io/file.hpp"

namespace ldm::pipeline {

/// How save_checkpoint() keeps checkpoints.
struct CheckpointOptions {
  /// Complete checkpoints kept, the new one included (at least 1).
  int keep = 2;
  /// Called before each filesystem step of the protocol with a description of the step, for
  /// tests that interrupt a save at every step. To leave the disk as a kill would, the hook
  /// throws something that is not a std::exception: save_checkpoint() cleans up after
  /// std::exceptions only (errors such as a full disk), so such a throw skips all cleanup.
  std::function<void(const std::string& step)> before_step;
};

namespace detail {

// The folder as the user-facing name of a checkpoint: no trailing separator, a real name.
inline std::filesystem::path checkpoint_name(const std::filesystem::path& folder) {
  std::filesystem::path name = folder.lexically_normal();
  if (!name.has_filename()) name = name.parent_path();
  const std::string last = name.filename().string();
  if (last.empty() || last == "." || last == "..")
    fail_expected(folder.string(), "a checkpoint folder with a name of its own", "none");
  return name;
}

inline std::filesystem::path parent_of(const std::filesystem::path& name) {
  return name.has_parent_path() ? name.parent_path() : std::filesystem::path(".");
}

struct Numbered {
  enum Kind { complete, partial, deleting };
  std::filesystem::path path;
  std::uint64_t number;
  Kind kind;
};

// "<name>.<digits>", "<name>.<digits>.partial" and "<name>.<digits>.deleting" beside `name`.
inline std::vector<Numbered> numbered_siblings(const std::filesystem::path& name) {
  namespace fs = std::filesystem;
  const std::string prefix = name.filename().string() + ".";
  std::vector<Numbered> found;
  std::error_code ec;
  fs::directory_iterator it(parent_of(name), ec);
  if (ec == std::errc::no_such_file_or_directory) return found;
  for (fs::directory_iterator end; !ec && it != end; it.increment(ec)) {
    const std::string entry = it->path().filename().string();
    if (!entry.starts_with(prefix)) continue;
    const std::string rest = entry.substr(prefix.size());
    std::uint64_t number = 0;
    const auto [end_of_digits, error] =
        std::from_chars(rest.data(), rest.data() + rest.size(), number);
    if (error != std::errc()) continue;
    const std::string suffix(end_of_digits, rest.data() + rest.size());
    if (suffix.empty())
      found.push_back({it->path(), number, Numbered::complete});
    else if (suffix == ".partial")
      found.push_back({it->path(), number, Numbered::partial});
    else if (suffix == ".deleting")
      found.push_back({it->path(), number, Numbered::deleting});
  }
  if (ec) fail(parent_of(name).string(), ": cannot list the folder: ", ec.message());
  std::sort(found.begin(), found.end(),
            [](const Numbered& a, const Numbered& b) { return a.number < b.number; });
  return found;
}

inline std::string numbered_name(const std::filesystem::path& name, std::uint64_t number) {
  char digits[24];
  std::snprintf(digits, sizeof digits, "%06llu", static_cast<unsigned long long>(number));
  return name.string() + "." + digits;
}

inline bool is_plain_folder(const std::filesystem::path& path) {
  std::error_code ec;
  return std::filesystem::is_directory(std::filesystem::symlink_status(path, ec));
}

inline void rename_or_fail(const std::filesystem::path& from, const std::filesystem::path& to,
                           const char* what) {
  std::error_code ec;
  std::filesystem::rename(from, to, ec);
  if (ec) fail(from.string(), ": cannot ", what, " (to ", to.string(), "): ", ec.message());
}

// Every file and folder under `root`, then `root`: contents before the entries naming them.
inline void sync_tree(const std::filesystem::path& root) {
  namespace fs = std::filesystem;
  std::vector<std::pair<int, fs::path>> folders;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    const auto status = it->symlink_status(ec);
    if (ec) break;
    if (fs::is_regular_file(status)) io::sync_file(it->path());
    if (fs::is_directory(status)) folders.emplace_back(it.depth(), it->path());
  }
  if (ec) fail(root.string(), ": cannot list the folder to sync it: ", ec.message());
  std::sort(folders.begin(), folders.end(),
            [](const auto& a, const auto& b) { return a.first > b.first; });
  for (const auto& [depth, folder] : folders)
    io::sync_folder(folder);
  io::sync_folder(root);
}

}  // namespace detail

/// The newest complete checkpoint saved at `folder` by save_checkpoint(), or nothing. A plain
/// folder at `folder` (a diffusers folder, an earlier ldm's checkpoint) is itself the newest:
/// save_checkpoint() numbers it above the others before it writes anything newer. Without
/// either, an earlier ldm's "<folder>.previous" or a link of the user's own to a folder.
inline std::optional<std::filesystem::path> find_checkpoint(const std::filesystem::path& folder) {
  const std::filesystem::path name = detail::checkpoint_name(folder);
  // A plain folder is newer than any numbered one: save_checkpoint() adopts it before numbering
  // anything newer.
  if (detail::is_plain_folder(name)) return name;
  const auto numbered = detail::numbered_siblings(name);
  for (auto it = numbered.rbegin(); it != numbered.rend(); ++it)
    if (it->kind == detail::Numbered::complete && std::filesystem::is_directory(it->path))
      return it->path;
  const std::filesystem::path previous = name.string() + ".previous";
  if (detail::is_plain_folder(previous)) return previous;
  std::error_code ec;
  if (std::filesystem::is_directory(name, ec)) return name;
  return std::nullopt;
}

/// The folder to read the checkpoint at `folder` from (see find_checkpoint()).
/// @throws ldm::Error when there is no complete checkpoint there.
inline std::filesystem::path existing_checkpoint(const std::filesystem::path& folder) {
  if (auto found = find_checkpoint(folder)) return *found;
  fail(folder.string(), ": no checkpoint folder there");
}

/// Everything a checkpoint at `folder` consists of or leaves behind: the folder or its link,
/// numbered checkpoints, partial and half-removed ones, an earlier ldm's ".partial" and
/// ".previous". Empty when no checkpoint was ever started there.
inline std::vector<std::filesystem::path> checkpoint_files(const std::filesystem::path& folder) {
  namespace fs = std::filesystem;
  const fs::path name = detail::checkpoint_name(folder);
  std::vector<fs::path> files;
  for (const fs::path& path :
       {name, fs::path(name.string() + ".link"), fs::path(name.string() + ".partial"),
        fs::path(name.string() + ".previous")}) {
    std::error_code ec;
    if (fs::exists(fs::symlink_status(path, ec))) files.push_back(path);
  }
  for (const auto& numbered : detail::numbered_siblings(name))
    files.push_back(numbered.path);
  return files;
}

/// Saves a checkpoint at `folder`: `write` fills a fresh folder, which becomes the newest
/// complete checkpoint and the target of the link `folder` (the protocol is described at the
/// top of this header). Returns the numbered folder written.
/// @throws ldm::Error when a step fails (a full disk, no permission, a filesystem without
/// symbolic links); the complete checkpoints are then as they were, though after an error in
/// the link's swap the new one is complete and found by find_checkpoint().
inline std::filesystem::path save_checkpoint(
    const std::filesystem::path& folder, const CheckpointOptions& options,
    const std::function<void(const std::filesystem::path&)>& write) {
  namespace fs = std::filesystem;
  if (options.keep < 1) fail_expected("CheckpointOptions::keep", "at least 1", options.keep);
  const fs::path name = detail::checkpoint_name(folder), parent = detail::parent_of(name);
  const fs::path link = name.string() + ".link";
  auto before = [&](const std::string& step) {
    if (options.before_step) options.before_step(step);
  };
  {
    std::error_code ec;
    fs::create_directories(parent, ec);
    if (ec) fail(parent.string(), ": cannot create the folder: ", ec.message());
    const auto status = fs::symlink_status(name, ec);
    if (fs::exists(status) && !fs::is_directory(status) && !fs::is_symlink(status))
      fail_expected(name.string(), "a checkpoint folder or a link to one", "another kind of file");
  }

  auto numbered = detail::numbered_siblings(name);
  std::uint64_t next = numbered.empty() ? 1 : numbered.back().number + 1;
  for (const fs::path& plain : {fs::path(name.string() + ".previous"), name}) {
    if (!detail::is_plain_folder(plain)) continue;
    const fs::path adopted = detail::numbered_name(name, next++);
    before("adopt " + plain.string() + " as " + adopted.string());
    detail::rename_or_fail(plain, adopted, "number the existing checkpoint");
    before("sync " + parent.string() + " after adopting");
    io::sync_folder(parent);
  }

  const fs::path complete = detail::numbered_name(name, next),
                 partial = complete.string() + ".partial";
  try {
    before("create " + partial.string());
    std::error_code ec;
    fs::create_directory(partial, ec);
    if (ec) fail(partial.string(), ": cannot create the folder: ", ec.message());
    before("write the files into " + partial.string());
    write(partial);
    before("sync the files and folders of " + partial.string());
    detail::sync_tree(partial);
  } catch (const std::exception&) {
    std::error_code ignored;
    fs::remove_all(partial, ignored);
    throw;
  }
  before("rename " + partial.string() + " to " + complete.string());
  detail::rename_or_fail(partial, complete, "move the new checkpoint into place");
  before("sync " + parent.string() + " after the rename");
  io::sync_folder(parent);

  before("link " + link.string() + " to " + complete.string());
  {
    std::error_code ec;
    fs::remove(link, ec);  // a leftover of a crash at the next step
    fs::create_directory_symlink(complete.filename(), link, ec);
    if (ec) fail(link.string(), ": cannot create a link to the new checkpoint: ", ec.message());
  }
  before("rename " + link.string() + " over " + name.string());
  detail::rename_or_fail(link, name, "point the checkpoint's link at the new one");
  before("sync " + parent.string() + " after the link");
  io::sync_folder(parent);

  // What is left may fail to go (permissions, a busy mount): the save has succeeded, and the
  // next one tries again.
  numbered = detail::numbered_siblings(name);
  int newer_complete = 0;
  for (auto it = numbered.rbegin(); it != numbered.rend(); ++it) {
    if (it->number > next) continue;  // a save started since, by another process
    if (it->kind == detail::Numbered::complete && ++newer_complete <= options.keep) continue;
    fs::path doomed = it->path;
    std::error_code ec;
    if (it->kind != detail::Numbered::deleting) {
      const fs::path deleting = detail::numbered_name(name, it->number) + ".deleting";
      before("rename " + doomed.string() + " to " + deleting.string());
      fs::rename(doomed, deleting, ec);
      if (ec) continue;
      doomed = deleting;
    }
    before("remove " + doomed.string());
    fs::remove_all(doomed, ec);
  }
  const fs::path legacy_partial = name.string() + ".partial";
  std::error_code ec;
  if (fs::exists(fs::symlink_status(legacy_partial, ec))) {
    before("remove " + legacy_partial.string());
    fs::remove_all(legacy_partial, ec);
  }
  return complete;
}

}  // namespace ldm::pipeline
