// The replay driver of the GCC build: runs LLVMFuzzerTestOneInput once on
// every file of the directories (or files) it is given, so `make test` replays
// each target's seed corpus and the inputs that once crashed it, without
// clang or libFuzzer. A crash fails the test the way it failed the fuzzer.
//
// A missing directory counts as empty: a target with no regressions yet has
// no regressions/<target>/ (git keeps no empty directories).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

std::vector<std::filesystem::path> inputs_of(const std::filesystem::path& arg) {
  std::vector<std::filesystem::path> out;
  std::error_code ec;
  if (std::filesystem::is_regular_file(arg, ec)) {
    out.push_back(arg);
  } else if (std::filesystem::is_directory(arg, ec)) {
    for (const auto& entry : std::filesystem::directory_iterator(arg)) {
      if (entry.is_regular_file()) out.push_back(entry.path());
    }
    // Sorted, so a failure names the same input on every run.
    std::sort(out.begin(), out.end());
  }
  return out;
}

bool replay(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", file.c_str());
    return false;
  }
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // A fresh heap copy of exactly `size` bytes, as libFuzzer passes it, so
  // ASan catches a read past the end of the input.
  std::vector<uint8_t> data(bytes.begin(), bytes.end());
  std::fprintf(stderr, "replay %s (%zu bytes)\n", file.c_str(), data.size());
  LLVMFuzzerTestOneInput(data.data(), data.size());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s DIR_OR_FILE...\n", argv[0]);
    return 2;
  }
  size_t replayed = 0;
  bool ok = true;
  for (int i = 1; i < argc; ++i) {
    auto files = inputs_of(argv[i]);
    if (files.empty()) std::fprintf(stderr, "%s: no inputs\n", argv[i]);
    for (const auto& f : files) {
      ok = replay(f) && ok;
      ++replayed;
    }
  }
  std::fprintf(stderr, "replayed %zu inputs\n", replayed);
  // An empty corpus means the test checks nothing: that is a broken layout.
  return ok && replayed > 0 ? 0 : 1;
}
