#pragma once
// ldm's version, in semantic versioning (MAJOR.MINOR.PATCH). These three #defines are the one
// place it is written: the top-level CMakeLists.txt reads them for project(VERSION), so the
// installed package's version file, `--version` and the checkpoints agree with the headers, and
// the headers know their version without a generated file (copied without CMake, too).

/// ldm's major version: raised for changes that break the API or the checkpoint format.
#define LDM_VERSION_MAJOR 0
/// ldm's minor version: raised for additions that keep compatibility.
#define LDM_VERSION_MINOR 1
/// ldm's patch version: raised for fixes.
#define LDM_VERSION_PATCH 0

/// Internal: `x` as a string literal.
#define LDM_DETAIL_STRINGIFY(x) #x
/// Internal: "MAJOR.MINOR.PATCH" as a string literal, from the three numbers' macros.
#define LDM_DETAIL_VERSION_TEXT(major, minor, patch) \
  LDM_DETAIL_STRINGIFY(major) "." LDM_DETAIL_STRINGIFY(minor) "." LDM_DETAIL_STRINGIFY(patch)

namespace ldm {

/// A semantic version: MAJOR.MINOR.PATCH, and the same as text.
struct Version {
  int major;           ///< Incompatible API or checkpoint changes.
  int minor;           ///< Compatible additions.
  int patch;           ///< Compatible fixes.
  const char* string;  ///< "MAJOR.MINOR.PATCH", as `--version` prints it and checkpoints record it.
};

/// The version of these headers, e.g. `ldm::version.string` is "0.1.0".
inline constexpr Version version{
    LDM_VERSION_MAJOR, LDM_VERSION_MINOR, LDM_VERSION_PATCH,
    LDM_DETAIL_VERSION_TEXT(LDM_VERSION_MAJOR, LDM_VERSION_MINOR, LDM_VERSION_PATCH)};

}  // namespace ldm
