"""Project-wide C++ rules: one place for warnings and the DPDK compile flags.

Every project target goes through these macros, so a header that pulls in a
DPDK header compiles the same way wherever it is included.
"""

load("@dpdk//:defs.bzl", DPDK_COPTS = "COPTS")

IOVTEE_COPTS = [
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wno-unused-parameter",
    "-Wno-missing-field-initializers",
] + DPDK_COPTS

# The areas a test can belong to; every test names at least one, so each area
# runs alone with --test_tag_filters=AREA.
TEST_AREAS = [
    "infra",
    "virtio",
    "softnic",
    "mapping",
    "switch",
    "vm",
    "ovs",
    "fuzz",
    "security",
    "lint",
]

def iovtee_cc_library(name, copts = [], **kwargs):
    native.cc_library(name = name, copts = IOVTEE_COPTS + copts, **kwargs)

def iovtee_cc_binary(name, copts = [], **kwargs):
    native.cc_binary(name = name, copts = IOVTEE_COPTS + copts, **kwargs)

def _check_tags(name, tags):
    if not [t for t in tags if t in TEST_AREAS]:
        fail("test %s needs an area tag, one of %s" % (name, TEST_AREAS))

def iovtee_cc_test(name, tags = [], copts = [], deps = [], **kwargs):
    """A GoogleTest test; tags must name the test's area."""
    _check_tags(name, tags)
    native.cc_test(
        name = name,
        copts = IOVTEE_COPTS + copts,
        deps = deps + ["@gtest//:gtest_main"],
        tags = tags,
        **kwargs
    )

def iovtee_sh_test(name, tags = [], **kwargs):
    _check_tags(name, tags)
    native.sh_test(name = name, tags = tags, **kwargs)
