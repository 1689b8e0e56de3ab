// The checkpoint protocol (pipeline/checkpoint_store.hpp) under crashes: a save killed before
// each of its filesystem steps, once and twice in a row, always leaves the newest complete
// checkpoint loadable, and a run resumed from it ends bit for bit where a run that was never
// killed ends.
//
// How a kill is simulated: CheckpointOptions::before_step throws Killed, which is not a
// std::exception, so save_checkpoint() runs none of its error cleanup (it removes a partial
// folder after a std::exception only) and the files are left exactly as a SIGKILL before that
// step would leave them. The model that was saving is then discarded, as the killed process
// would be, and a fresh one loads the checkpoint. (What the page cache held but the disk did not
// is beyond a test in one process; the protocol syncs files and folders before each rename for
// that.)
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <ldm/ldm.hpp>
#include <string>
#include <tuple>
#include <vector>

#include "support/small_pipeline.hpp"

using namespace ldm;
namespace fs = std::filesystem;

namespace {
using test::Small;
using Model = LatentDiffusion<Small>;
constexpr index_t N = 2;
constexpr std::uint64_t seed = 21;

struct Killed {};  // deliberately not a std::exception

// In memory where there is a tmpfs: the hundred-odd runs sync about 3,000 times, which takes
// half a minute on a virtual machine's disk and adds nothing a test in one process can observe.
fs::path fresh_folder(const std::string& name) {
  const fs::path memory = "/dev/shm";
  auto path = (fs::is_directory(memory) ? memory : fs::temp_directory_path()) /
              ("ldm_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(path);
  fs::create_directories(path);
  return path;
}

// Diffusion steps until `step`; batch k is the k-th of the run, so a resumed run sees the same
// batches as a straight one.
void train_to(Model& model, std::uint64_t step) {
  while (model.diffusion_steps() < step)
    model.diffusion_step<N>(test::small_batch<N>(100 + model.diffusion_steps()));
}

std::unique_ptr<Model> started() {
  auto model = std::make_unique<Model>(seed);
  model->autoencoder_step<N>(test::small_batch<N>(0));
  train_to(*model, 1);
  return model;
}

// A save killed before its filesystem step `kill_at` (0 for the first; -1 never kills). Returns
// whether it was killed, and in `published` whether the new checkpoint's rename had run. The
// step killed is described in `killed_step`.
bool save(Model& model, const fs::path& checkpoint, int kill_at, bool& published,
          std::string& killed_step) {
  int step = 0;
  published = false;
  pipeline::CheckpointOptions options;
  options.before_step = [&](const std::string& what) {
    // The step after the new checkpoint's rename: a kill from here on leaves it in place.
    if (what.starts_with("sync") && what.ends_with("after the rename")) published = true;
    if (step++ == kill_at) {
      killed_step = what;
      throw Killed{};
    }
  };
  try {
    model.save(checkpoint, {}, options);
    return false;
  } catch (const Killed&) {
    return true;
  }
}

// What a diffusers user opens: the link (or folder) `checkpoint` itself must hold a whole model.
void check_link_loads(const fs::path& checkpoint) {
  REQUIRE(fs::is_directory(checkpoint));
  for (const char* file : {"vae/config.json", "vae/diffusion_pytorch_model.safetensors",
                           "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
                           "scheduler/scheduler_config.json", "training_state.safetensors"})
    REQUIRE_MESSAGE(fs::is_regular_file(checkpoint / file), (checkpoint / file).string());
}

struct Outcome {
  std::vector<float> autoencoder, unet;
  std::vector<std::byte> ema_file;
};

Outcome outcome_of(const Model& model, const fs::path& checkpoint) {
  return {model.autoencoder_values_host(), model.training_unet_values_host(),
          io::read_file(checkpoint / "unet" / pipeline::weights_file)};
}

struct Kills {
  bool first = false, second = false;  // whether each kill came before its save ended
};

// Saves after diffusion steps 1, 2 and 3 and at step 4; the saves after steps 2 and 3 are killed
// before their steps number `first_kill` and `second_kill` (-1: not killed). After each kill the
// newest complete checkpoint is loaded into a new model, which must be at the step of the last
// save whose rename had run, and training resumes from there.
Outcome run(const fs::path& checkpoint, int first_kill, int second_kill, Kills& kills) {
  auto model = started();
  bool published = false;
  std::string killed_step;
  REQUIRE(!save(*model, checkpoint, -1, published, killed_step));
  std::uint64_t durable = 1;
  for (const auto& [step, kill_at, killed] :
       {std::tuple{2u, first_kill, &kills.first}, std::tuple{3u, second_kill, &kills.second}}) {
    train_to(*model, step);
    *killed = save(*model, checkpoint, kill_at, published, killed_step);
    if (!*killed || published) durable = step;
    if (!*killed) continue;
    CAPTURE(killed_step);
    check_link_loads(checkpoint);
    model = std::make_unique<Model>(seed + 1000);  // the killed process's state is gone
    model->load(checkpoint);
    REQUIRE(model->diffusion_steps() == durable);
    REQUIRE(model->autoencoder_steps() == 1);
  }
  train_to(*model, 4);
  REQUIRE(!save(*model, checkpoint, -1, published, killed_step));
  check_link_loads(checkpoint);
  // Only the newest two complete checkpoints and the link are left.
  const auto left = pipeline::checkpoint_files(checkpoint);
  REQUIRE(left.size() == 3);
  REQUIRE(fs::is_symlink(left[0]));
  REQUIRE(fs::equivalent(checkpoint, left[2]));
  return outcome_of(*model, checkpoint);
}
}  // namespace

TEST_CASE("a save killed before any of its steps, once or twice in a row, loses nothing") {
  const fs::path root = fresh_folder("crash");
  Kills kills;
  const Outcome straight = run(root / "straight" / "checkpoint", -1, -1, kills);
  // Kill numbers count up until a save outlives its kill: then every step has been killed.
  int scenarios = 0, first_steps = 0, second_steps = 0;
  for (int first = -1;; ++first) {
    for (int second = -1;; ++second) {
      CAPTURE(first);
      CAPTURE(second);
      const fs::path checkpoint = root / "run" / "checkpoint";
      fs::remove_all(checkpoint.parent_path());
      const Outcome resumed = run(checkpoint, first, second, kills);
      ++scenarios;
      REQUIRE(resumed.autoencoder == straight.autoencoder);
      REQUIRE(resumed.unet == straight.unet);
      REQUIRE(resumed.ema_file == straight.ema_file);
      if (first >= 0 && !kills.first) break;
      if (second >= 0 && !kills.second) break;
      second_steps = std::max(second_steps, second + 1);
    }
    if (first >= 0 && !kills.first) break;
    first_steps = first + 1;
  }
  MESSAGE(scenarios << " runs; saves killed before each of " << first_steps << " steps, then "
                    << "a later save before each of up to " << second_steps << " steps");
  CHECK(first_steps >= 8);
  CHECK(second_steps >= 8);
  fs::remove_all(root);
}

namespace {
// A checkpoint of one file, "number", holding `number`.
void save_number(const fs::path& checkpoint, int number, int keep = 2) {
  pipeline::save_checkpoint(checkpoint, {.keep = keep, .before_step = {}}, [&](const fs::path& to) {
    pipeline::write_text_atomically(to / "number", std::to_string(number));
  });
}
int number_in(const fs::path& folder) {
  return std::stoi(pipeline::read_json(folder / "number").dump());
}
}  // namespace

TEST_CASE("save_checkpoint keeps the newest `keep`, links the newest, adopts earlier folders") {
  const fs::path root = fresh_folder("checkpoint_store");
  const fs::path checkpoint = root / "checkpoint";
  CHECK(!pipeline::find_checkpoint(checkpoint));
  CHECK(!pipeline::find_checkpoint(root / "nowhere" / "checkpoint"));
  CHECK(pipeline::checkpoint_files(checkpoint).empty());
  CHECK_THROWS_WITH_AS(pipeline::existing_checkpoint(checkpoint),
                       doctest::Contains("no checkpoint folder there"), Error);

  for (int n = 1; n <= 4; ++n)
    save_number(checkpoint, n);
  CHECK(number_in(checkpoint) == 4);
  CHECK(fs::read_symlink(checkpoint) == "checkpoint.000004");
  CHECK(pipeline::checkpoint_files(checkpoint) ==
        std::vector<fs::path>{checkpoint, root / "checkpoint.000003", root / "checkpoint.000004"});
  // A trailing separator names the same checkpoint.
  CHECK(*pipeline::find_checkpoint(checkpoint.string() + "/") == root / "checkpoint.000004");
  save_number(checkpoint, 5, 1);
  CHECK(pipeline::checkpoint_files(checkpoint) ==
        std::vector<fs::path>{checkpoint, root / "checkpoint.000005"});
  CHECK_THROWS_WITH_AS(save_number(checkpoint, 6, 0), doctest::Contains("keep"), Error);

  // A full disk while writing: the partial folder goes, the last checkpoint stays.
  CHECK_THROWS_WITH_AS(pipeline::save_checkpoint(checkpoint, {},
                                                 [](const fs::path& to) {
                                                   pipeline::write_text_atomically(to / "a", "1");
                                                   fail("No space left on device (simulated)");
                                                 }),
                       doctest::Contains("No space left"), Error);
  CHECK(pipeline::checkpoint_files(checkpoint) ==
        std::vector<fs::path>{checkpoint, root / "checkpoint.000005"});

  // A plain folder (an earlier ldm's checkpoint, or diffusers') and an earlier ldm's
  // ".previous" and ".partial" after a crash between its renames: the plain folder is the
  // newest, and saving keeps both complete ones and clears the partial.
  const fs::path legacy = root / "legacy";
  fs::create_directories(legacy);
  fs::create_directories(root / "legacy.previous");
  fs::create_directories(root / "legacy.partial");
  pipeline::write_text_atomically(legacy / "number", "11");
  pipeline::write_text_atomically(root / "legacy.previous" / "number", "10");
  CHECK(number_in(*pipeline::find_checkpoint(legacy)) == 11);
  fs::rename(legacy, root / "moved");
  CHECK(number_in(*pipeline::find_checkpoint(legacy)) == 10);
  fs::rename(root / "moved", legacy);
  save_number(legacy, 12, 3);
  CHECK(number_in(legacy) == 12);
  CHECK(number_in(root / "legacy.000001") == 10);
  CHECK(number_in(root / "legacy.000002") == 11);
  CHECK(pipeline::checkpoint_files(legacy).size() == 4);  // the link and three numbered
  CHECK(!fs::exists(root / "legacy.partial"));

  // Killed before each step of a save that adopts them: the newest complete checkpoint is
  // always found, and the next save clears what the kill left.
  for (int kill_at = 0;; ++kill_at) {
    CAPTURE(kill_at);
    const fs::path adopted = root / "adopted" / "checkpoint";
    fs::remove_all(adopted.parent_path());
    fs::create_directories(adopted);
    fs::create_directories(adopted.string() + ".previous");
    pipeline::write_text_atomically(adopted / "number", "11");
    pipeline::write_text_atomically(adopted.string() + ".previous/number", "10");
    int step = 0;
    bool published = false;
    pipeline::CheckpointOptions options;
    options.before_step = [&](const std::string& what) {
      if (what.starts_with("sync") && what.ends_with("after the rename")) published = true;
      if (step++ == kill_at) throw Killed{};
    };
    try {
      pipeline::save_checkpoint(adopted, options, [](const fs::path& to) {
        pipeline::write_text_atomically(to / "number", "12");
      });
      break;
    } catch (const Killed&) {
    }
    CHECK(number_in(*pipeline::find_checkpoint(adopted)) == (published ? 12 : 11));
    save_number(adopted, 13);
    CHECK(number_in(adopted) == 13);
    CHECK(pipeline::checkpoint_files(adopted).size() == 3);  // the link and two numbered
  }

  // Only a folder or a link can become the checkpoint's link.
  pipeline::write_text_atomically(root / "file", "x");
  CHECK_THROWS_WITH_AS(save_number(root / "file", 1),
                       doctest::Contains("expected a checkpoint folder or a link to one"), Error);
  fs::remove_all(root);
}
