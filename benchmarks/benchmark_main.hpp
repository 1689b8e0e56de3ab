#pragma once
// What every benchmark program's main() shares: --version, and ldm's version in the context of
// each report (the console header and --benchmark_format=json), so that numbers name what they
// measured.

#include <benchmark/benchmark.h>

#include <cstdio>
#include <filesystem>
#include <ldm/version.hpp>
#include <string_view>

namespace bench {

// Prints "<program> (ldm X.Y.Z)" and returns true when the arguments hold --version.
inline bool version_asked(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (std::string_view(argv[i]) == "--version") {
      std::printf("%s (ldm %s)\n", std::filesystem::path(argv[0]).filename().c_str(),
                  ldm::version.string);
      return true;
    }
  return false;
}

// Google Benchmark's main, with --version and ldm's version in the reports.
inline int run(int argc, char** argv) {
  if (version_asked(argc, argv)) return 0;
  benchmark::AddCustomContext("ldm_version", ldm::version.string);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace bench
