"""Fuzz tests that are plain tests in every build and libFuzzer runs under --config=fuzz.

One target, two ways:
  - default build (gcc) and --config=asan: a plain test whose main
    (//test/fuzz:fuzz_main) replays every file of the seed corpus plus a
    bounded number of deterministic pseudo-random inputs through
    LLVMFuzzerTestOneInput, and fails on any crash or failed check;
  - --config=fuzz (clang, -fsanitize=fuzzer-no-link,address,undefined, see
    .bazelrc): the same main calls LLVMFuzzerRunDriver for
    IOVTEE_FUZZ_SECONDS (default 20) on a writable copy of the corpus.

The switch is the --define=iovtee_fuzz=1 that --config=fuzz sets
(//test/fuzz:fuzzing): select()s on it pick fuzz_main's libFuzzer half and
link libFuzzer. The compile and link flags (-fsanitize=fuzzer-no-link,address,
undefined) are in .bazelrc, not selected here: the code under test, built by
other packages' rules, needs the coverage instrumentation as much as the
harness does.
"""

load("//bazel:iovtee.bzl", "IOVTEE_COPTS")

FUZZ_TAGS = ["fuzz", "security", "unit"]

# Under libFuzzer the harness itself is built with the fuzzer's coverage
# instrumentation and sanitizers (the whole build gets them from
# --config=fuzz); FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION is the
# conventional marker harnesses may test.
_FUZZ_DEFINES = select({
    "//test/fuzz:fuzzing": ["FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION"],
    "//conditions:default": [],
})

def iovtee_fuzz_test(
        name,
        srcs,
        deps = [],
        corpus = None,
        fuzz_args = [],
        tags = [],
        size = "small",
        **kwargs):
    """A fuzz target: srcs define LLVMFuzzerTestOneInput.

    Args:
      name: target name; by convention ends in _fuzz.
      srcs: the harness sources.
      deps: what the harness needs (fuzz_main and libFuzzer are added).
      corpus: seed corpus folder in this package (default "corpus/<name>");
        every file in it is replayed by the plain test and seeds libFuzzer.
      fuzz_args: extra libFuzzer flags (e.g. "-max_len=8192"), used under
        --config=fuzz only.
      tags: extra tags; "fuzz", "security" and "unit" are always set.
      size: the replay takes seconds. Under --config=fuzz the run lasts
        IOVTEE_FUZZ_SECONDS: pass a matching --test_timeout (scripts/test.sh
        does).
      **kwargs: passed to cc_test.
    """
    if corpus == None:
        corpus = "corpus/" + name
    native.cc_test(
        name = name,
        srcs = srcs,
        copts = IOVTEE_COPTS,
        local_defines = _FUZZ_DEFINES,
        deps = deps + ["//test/fuzz:fuzz_main"],
        data = native.glob([corpus + "/**"]),
        # The corpus folder, relative to the runfiles root (the test's
        # working directory), then flags for libFuzzer.
        args = [native.package_name() + "/" + corpus] + fuzz_args,
        # One executable with the instrumented code in it: no shared
        # libraries between the harness and libFuzzer.
        linkstatic = True,
        size = size,
        tags = FUZZ_TAGS + [t for t in tags if t not in FUZZ_TAGS],
        **kwargs
    )
