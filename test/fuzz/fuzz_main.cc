// main() of every fuzz test (bazel/fuzz.bzl).
//
// Usage: FUZZER CORPUS_DIR_OR_FILE... [-libfuzzer_flag=value...]
//        FUZZER CRASH_FILE...            replays just those files (any build)
//        FUZZER CRASH_FILE -flag...      libFuzzer itself (--config=fuzz), e.g.
//                                        -minimize_crash=1 -runs=100000
//
// Default build (gcc, also --config=asan): replays every corpus file, then a
// bounded number of deterministic pseudo-random inputs (half mutated corpus
// files, half plain random bytes), through LLVMFuzzerTestOneInput. A harness
// fails by crashing or aborting, which fails the test; the input that was
// running is named on stderr and, for generated inputs, saved in
// TEST_UNDECLARED_OUTPUTS_DIR (or the working directory).
//   IOVTEE_FUZZ_REPLAY_INPUTS  number of generated inputs (default 4096)
//
// --config=fuzz (IOVTEE_LIBFUZZER): copies the corpus into a writable
// directory under TEST_TMPDIR and runs libFuzzer on it through
// LLVMFuzzerRunDriver, with -max_total_time and -print_final_stats=1 so the
// execution count is in the test log; crash reproducers go to
// TEST_UNDECLARED_OUTPUTS_DIR (bazel-testlogs/.../test.outputs/).
//   IOVTEE_FUZZ_SECONDS  how long to fuzz (default 20)
//   IOVTEE_FUZZ_ARGS     more libFuzzer flags, space-separated
//   IOVTEE_FUZZ_RAW=1    the command line goes to libFuzzer untouched (e.g.
//                        -merge=1 NEW_DIR OLD_DIR...)
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

#include "test/fuzz/splitmix.h"

#if defined(__SANITIZE_ADDRESS__)
#define IOVTEE_HAVE_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define IOVTEE_HAVE_SANITIZER 1
#endif
#endif
#ifdef IOVTEE_HAVE_SANITIZER
#include <sanitizer/common_interface_defs.h>
#endif

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);
#ifdef IOVTEE_LIBFUZZER
extern "C" int LLVMFuzzerRunDriver(int* argc, char*** argv,
                                   int (*callback)(const uint8_t* data, size_t size));
#endif

namespace {

namespace fs = std::filesystem;

using Bytes = std::vector<uint8_t>;

// Collects regular files: a directory's files sorted by name, or the file.
void CollectFiles(const std::string& path, std::vector<fs::path>* out) {
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) {
    out->push_back(path);
    return;
  }
  if (!fs::is_directory(path, ec)) {
    std::fprintf(stderr, "fuzz: no corpus at %s (treated as empty)\n", path.c_str());
    return;
  }
  std::vector<fs::path> files;
  for (const auto& entry : fs::recursive_directory_iterator(path, ec)) {
    if (entry.is_regular_file(ec)) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  out->insert(out->end(), files.begin(), files.end());
}

bool ReadFile(const fs::path& path, Bytes* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return true;
}

long EnvLong(const char* name, long fallback, long min, long max) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  long n = std::strtol(v, &end, 10);
  if (*end != '\0' || n < min || n > max) {
    std::fprintf(stderr, "fuzz: %s=%s is not a number in [%ld, %ld]\n", name, v, min, max);
    std::exit(2);
  }
  return n;
}

std::string OutputDir() {
  const char* d = std::getenv("TEST_UNDECLARED_OUTPUTS_DIR");
  return d != nullptr && *d != '\0' ? d : ".";
}

// ---------------------------------------------------------------------------
// Replay mode.

// What is running, for the crash handler (async-signal-safe state only).
char g_current[512] = "(startup)";
const Bytes* g_current_input = nullptr;
char g_dump_path[512] = "";

void WriteAll(int fd, const void* p, size_t n) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
    ssize_t w = write(fd, c, n);
    if (w <= 0) return;
    c += w;
    n -= static_cast<size_t>(w);
  }
}

void ReportCurrent() {
  static bool reported = false;
  if (reported) return;
  reported = true;
  WriteAll(2, "fuzz: FAILED while running ", 27);
  WriteAll(2, g_current, strlen(g_current));
  WriteAll(2, "\n", 1);
  if (g_current_input != nullptr && g_dump_path[0] != '\0') {
    int fd = open(g_dump_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      WriteAll(fd, g_current_input->data(), g_current_input->size());
      close(fd);
      WriteAll(2, "fuzz: input saved to ", 21);
      WriteAll(2, g_dump_path, strlen(g_dump_path));
      WriteAll(2, "\n", 1);
    }
  }
}

void OnFatalSignal(int sig) {
  ReportCurrent();
  signal(sig, SIG_DFL);
  raise(sig);
}

void InstallCrashReporting() {
  for (int sig : {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL}) signal(sig, OnFatalSignal);
#ifdef IOVTEE_HAVE_SANITIZER
  __sanitizer_set_death_callback(ReportCurrent);
#endif
}

using Rng = ::iovtee::fuzz::SplitMix;

// A few byte-level mutations, enough to push seeds off their legal states.
void Mutate(Rng& rng, size_t max_len, Bytes* b) {
  int n = 1 + static_cast<int>(rng.Below(8));
  for (int i = 0; i < n; ++i) {
    switch (rng.Below(6)) {
      case 0:  // flip a bit
        if (!b->empty()) (*b)[rng.Below(b->size())] ^= uint8_t(1u << rng.Below(8));
        break;
      case 1:  // random byte
        if (!b->empty()) (*b)[rng.Below(b->size())] = uint8_t(rng.Next());
        break;
      case 2:  // interesting value
        if (!b->empty()) {
          static constexpr uint8_t kVals[] = {0, 1, 0x7f, 0x80, 0xff, 0x10, 0x40};
          (*b)[rng.Below(b->size())] = kVals[rng.Below(sizeof(kVals))];
        }
        break;
      case 3: {  // insert random bytes
        size_t pos = rng.Below(b->size() + 1);
        size_t len = 1 + rng.Below(16);
        Bytes ins(len);
        for (auto& c : ins) c = uint8_t(rng.Next());
        b->insert(b->begin() + static_cast<std::ptrdiff_t>(pos), ins.begin(), ins.end());
        break;
      }
      case 4: {  // erase
        if (b->empty()) break;
        size_t pos = rng.Below(b->size());
        size_t len = std::min(b->size() - pos, 1 + rng.Below(16));
        b->erase(b->begin() + static_cast<std::ptrdiff_t>(pos),
                 b->begin() + static_cast<std::ptrdiff_t>(pos + len));
        break;
      }
      default:  // truncate
        b->resize(rng.Below(b->size() + 1));
        break;
    }
  }
  if (b->size() > max_len) b->resize(max_len);
}

int Replay(const std::vector<fs::path>& files, const std::vector<std::string>& flags,
           long default_generated) {
  InstallCrashReporting();
  size_t max_len = 4096;  // libFuzzer's -max_len bounds generated inputs too
  for (const auto& f : flags) {
    if (f.rfind("-max_len=", 0) == 0) max_len = std::strtoul(f.c_str() + 9, nullptr, 10);
  }
  std::vector<Bytes> seeds;
  for (const auto& f : files) {
    Bytes b;
    if (!ReadFile(f, &b)) {
      std::fprintf(stderr, "fuzz: cannot read %s\n", f.c_str());
      return 1;
    }
    std::snprintf(g_current, sizeof(g_current), "corpus file %s", f.c_str());
    LLVMFuzzerTestOneInput(b.data(), b.size());
    seeds.push_back(std::move(b));
  }

  const long generated = EnvLong("IOVTEE_FUZZ_REPLAY_INPUTS", default_generated, 0, 100000000);
  const std::string dump = OutputDir() + "/crash-replay-input";
  std::snprintf(g_dump_path, sizeof(g_dump_path), "%s", dump.c_str());
  Rng rng(0x10f7eeull);
  Bytes input;
  for (long i = 0; i < generated; ++i) {
    if (!seeds.empty() && (i & 1) == 0) {
      input = seeds[rng.Below(seeds.size())];
      Mutate(rng, max_len, &input);
    } else {
      input.resize(rng.Below(max_len + 1));
      for (auto& c : input) c = uint8_t(rng.Next());
    }
    std::snprintf(g_current, sizeof(g_current), "generated input %ld (%zu bytes)", i, input.size());
    g_current_input = &input;
    LLVMFuzzerTestOneInput(input.data(), input.size());
    g_current_input = nullptr;
  }
  std::printf("fuzz: replayed %zu corpus files and %ld generated inputs: OK\n", files.size(),
              generated);
  return 0;
}

// ---------------------------------------------------------------------------
// libFuzzer mode.

#ifdef IOVTEE_LIBFUZZER
int RunLibFuzzer(const char* argv0, const std::vector<fs::path>& files,
                 const std::vector<std::string>& flags) {
  const long seconds = EnvLong("IOVTEE_FUZZ_SECONDS", 20, 1, 7 * 24 * 3600);
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string base;
  if (tmp != nullptr && *tmp != '\0') {
    base = tmp;
  } else {
    char templ[] = "/tmp/iovtee-fuzz-XXXXXX";
    if (mkdtemp(templ) == nullptr) {
      std::perror("fuzz: mkdtemp");
      return 1;
    }
    base = templ;
  }
  const fs::path corpus = fs::path(base) / "corpus";
  std::error_code ec;
  fs::create_directories(corpus, ec);
  if (ec) {
    std::fprintf(stderr, "fuzz: cannot create %s: %s\n", corpus.c_str(), ec.message().c_str());
    return 1;
  }
  size_t copied = 0;
  for (const auto& f : files) {
    // Runfiles are read-only symlinks: copy the bytes, not the link.
    Bytes b;
    if (!ReadFile(f, &b)) continue;
    std::ofstream out(corpus / ("seed-" + std::to_string(copied) + "-" + f.filename().string()),
                      std::ios::binary);
    out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
    ++copied;
  }

  std::vector<std::string> args = {
      argv0,         "-max_total_time=" + std::to_string(seconds), "-print_final_stats=1",
      "-timeout=10", "-artifact_prefix=" + OutputDir() + "/",
  };
  args.insert(args.end(), flags.begin(), flags.end());
  if (const char* extra = std::getenv("IOVTEE_FUZZ_ARGS")) {
    std::string s = extra;
    size_t pos = 0;
    while (pos < s.size()) {
      size_t end = s.find(' ', pos);
      if (end == std::string::npos) end = s.size();
      if (end > pos) args.push_back(s.substr(pos, end - pos));
      pos = end + 1;
    }
  }
  args.push_back(corpus.string());

  std::printf("fuzz: %zu seeds copied to %s; libFuzzer for %ld s\n", copied, corpus.c_str(),
              seconds);
  std::fflush(stdout);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int argc = static_cast<int>(args.size());
  char** argvp = argv.data();
  return LLVMFuzzerRunDriver(&argc, &argvp, LLVMFuzzerTestOneInput);
}
#endif

}  // namespace

int main(int argc, char** argv) {
  std::vector<fs::path> files;
  std::vector<std::string> flags;
  bool only_files = true;  // reproducing: FUZZER crash-file...
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (!a.empty() && a[0] == '-') {
      flags.push_back(a);
    } else {
      std::error_code ec;
      only_files = only_files && fs::is_regular_file(a, ec);
      CollectFiles(a, &files);
    }
  }
#ifdef IOVTEE_LIBFUZZER
  if (const char* raw = std::getenv("IOVTEE_FUZZ_RAW"); raw != nullptr && *raw == '1') {
    return LLVMFuzzerRunDriver(&argc, &argv, LLVMFuzzerTestOneInput);
  }
  if (!only_files || files.empty()) {
    return RunLibFuzzer(argv[0], files, flags);  // libFuzzer calls LLVMFuzzerInitialize
  }
  // Files and libFuzzer flags (-minimize_crash=1, -runs=N...): libFuzzer as is.
  if (!flags.empty()) return LLVMFuzzerRunDriver(&argc, &argv, LLVMFuzzerTestOneInput);
#endif
  if (LLVMFuzzerInitialize != nullptr) LLVMFuzzerInitialize(&argc, &argv);
  return Replay(files, flags, only_files && !files.empty() ? 0 : 4096);
}
