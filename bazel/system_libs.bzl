"""Repository rules over Debian's system libraries (no downloads).

pkg_config_repository runs pkg-config once per fetch and turns its output into
a cc_library with the link flags, plus a defs.bzl with the compile flags, which
project targets add through //bazel:iovtee.bzl (copts do not propagate).
"""

def _split_cflags(words):
    copts = []
    skip_next = False
    for i, w in enumerate(words):
        if skip_next:
            skip_next = False
            continue
        if w.startswith("-I"):
            d = w[2:]

            # /usr/include as an include dir breaks #include_next <stdlib.h>.
            if d in ("/usr/include", "/usr/include/"):
                continue

            # Bazel accepts absolute include dirs only inside the toolchain's
            # built-in ones (/usr/include); the others pkg-config lists
            # (libnl3, dbus) are for PMD internals that no public header needs.
            if not d.startswith("/usr/include/"):
                continue

            # -isystem keeps the library's own warnings out of our -Werror.
            copts += ["-isystem", d]
        elif w == "-include":
            copts += ["-include", words[i + 1]]
            skip_next = True
        else:
            copts.append(w)
    return copts

def _split_libs(words):
    # A leading -Wl,--as-needed drops DPDK libraries that tests reach only
    # through shared project libraries ("undefined symbol" at run time).
    out = []
    for w in words:
        if w == "-Wl,--as-needed":
            continue
        out.append(w)
    return out

def _pkg_config(ctx, args):
    r = ctx.execute(["pkg-config"] + args)
    if r.return_code != 0:
        fail("pkg-config %s failed: %s\nInstall the Debian packages with scripts/setup.sh." %
             (" ".join(args), r.stderr))
    return [w for w in r.stdout.strip().replace("\n", " ").split(" ") if w]

def _pkg_config_repository_impl(ctx):
    cflags = _split_cflags(_pkg_config(ctx, ["--cflags"] + ctx.attr.modules))
    libs = _split_libs(_pkg_config(ctx, ["--libs"] + ctx.attr.modules))
    ctx.file("defs.bzl", "COPTS = %r\nLINKOPTS = %r\n" % (cflags, libs))
    ctx.file("BUILD.bazel", """\
package(default_visibility = ["//visibility:public"])

exports_files(["defs.bzl"])

cc_library(
    name = "{name}",
    linkopts = {libs},
)
""".format(name = ctx.name, libs = repr(libs)))

pkg_config_repository = repository_rule(
    implementation = _pkg_config_repository_impl,
    attrs = {"modules": attr.string_list(mandatory = True)},
    local = True,
    environ = ["PKG_CONFIG_PATH"],
)

def _system_gtest_repository_impl(ctx):
    for lib in ["libgtest.a", "libgmock.a"]:
        if not ctx.path("/usr/lib/x86_64-linux-gnu/" + lib).exists:
            fail("%s not found: install libgtest-dev and libgmock-dev (scripts/setup.sh)" % lib)
    ctx.file("BUILD.bazel", """\
package(default_visibility = ["//visibility:public"])

cc_library(
    name = "gtest",
    linkopts = ["-lgmock", "-lgtest", "-pthread"],
)

cc_library(
    name = "gtest_main",
    linkopts = ["-lgmock_main", "-lgmock", "-lgtest", "-pthread"],
)
""")

system_gtest_repository = repository_rule(
    implementation = _system_gtest_repository_impl,
    local = True,
)

def _dpdk_driver_sdk_repository_impl(ctx):
    # scripts/setup.sh extracts the headers for the installed libdpdk-dev.
    r = ctx.execute(["dpkg-query", "-W", "-f=${Version}", "libdpdk-dev"])
    if r.return_code != 0:
        fail("libdpdk-dev is not installed: run scripts/setup.sh")
    sdk = ctx.os.environ.get("IOVTEE_DPDK_SDK", "/var/cache/iovtee/dpdk-sdk-" + r.stdout.strip())
    headers = ["ethdev_driver.h", "ethdev_vdev.h", "bus_vdev_driver.h", "bus_driver.h", "dev_driver.h"]
    for h in headers:
        src = ctx.path(sdk + "/include/" + h)
        if not src.exists:
            fail("%s not found: run scripts/setup.sh (it fetches DPDK's driver SDK headers)" % src)
        ctx.symlink(src, "include/" + h)
    ctx.file("BUILD.bazel", """\
package(default_visibility = ["//visibility:public"])

# DPDK's driver SDK headers, for out-of-tree PMDs. Their functions are
# exported by the shared libraries as INTERNAL symbols.
cc_library(
    name = "dpdk_driver_sdk",
    hdrs = glob(["include/*.h"]),
    defines = ["ALLOW_INTERNAL_API"],
    includes = ["include"],
    deps = ["@dpdk"],
)
""")

dpdk_driver_sdk_repository = repository_rule(
    implementation = _dpdk_driver_sdk_repository_impl,
    local = True,
    environ = ["IOVTEE_DPDK_SDK"],
)
