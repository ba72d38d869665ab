"""Builds the `cqrs` package: its CPython extension cqrs._cqrs, the
pure-Python parts, the type stubs and py.typed (see README.md).

    pip install ./bindings/python                      # with a package index
    python3 -m venv --system-site-packages V           # offline (Debian's
    V/bin/pip install --no-build-isolation ./bindings/python   # setuptools, wheel)

Where the C library comes from, first match wins:

1. CQRS_PREFIX=/usr/local (or CQRS_INCLUDE_DIR and CQRS_LIB_DIR): an
   installed cqrs (`make install PREFIX=...`): headers from PREFIX/include,
   PREFIX/lib/libcqrs_client.a linked in statically (or -lcqrs_client with
   an rpath when only the shared library is there).
2. The source tree around this directory (../../include/cqrs_view.h and
   ../../core exist): the libcqrs_client sources (core/ ringbuf/ shm/
   client/) are compiled into the extension itself, so a fresh checkout
   needs no `make` first and the module needs no LD_LIBRARY_PATH.
   CQRS_SOURCE_DIR=/path/to/cqrs points at another tree.
3. pkg-config cqrs_client (an installed cqrs found through PKG_CONFIG_PATH).

Either way the module links libxxhash and libck dynamically (Debian:
libxxhash-dev, libck-dev) and never liburing or jemalloc. pyproject.toml
declares the build requirements (setuptools and wheel: setuptools before
70.1 has no bdist_wheel of its own); without a package index, pip must use
installed ones (--no-build-isolation: Debian's python3-setuptools and
python3-wheel, seen from a venv made with --system-site-packages).
"""
import glob
import os
import shlex
import subprocess

from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = sorted(glob.glob(os.path.join(HERE, "src", "*.c")))
CFLAGS = ["-std=c11", "-D_GNU_SOURCE", "-fvisibility=hidden", "-Wall", "-Wextra",
          "-Wno-missing-field-initializers", "-Wno-unused-parameter"]
LDFLAGS = ["-Wl,--exclude-libs,ALL",
           "-Wl,--version-script=" + os.path.join(HERE, "cqrs.map")]


def dep_libraries():
    """The libraries libcqrs_client needs: libxxhash and ck as pkg-config
    names them (Debian ships both .pc files; plain names if it cannot),
    and libm."""
    try:
        out = subprocess.run(["pkg-config", "--libs-only-l", "libxxhash", "ck"], check=True,
                             capture_output=True, text=True).stdout
        libs = [f[2:] for f in shlex.split(out) if f.startswith("-l")]
    except (OSError, subprocess.CalledProcessError):
        libs = ["xxhash", "ck"]
    return libs + ["m"]


def from_prefix():
    prefix = os.environ.get("CQRS_PREFIX")
    inc = os.environ.get("CQRS_INCLUDE_DIR") or (prefix and os.path.join(prefix, "include"))
    lib = os.environ.get("CQRS_LIB_DIR") or (prefix and os.path.join(prefix, "lib"))
    if not inc:
        return None
    return installed(inc, lib, "CQRS_PREFIX")


def installed(inc, lib, how):
    if not os.path.exists(os.path.join(inc, "cqrs_view.h")):
        raise SystemExit("cqrs: %s: no cqrs_view.h in %s" % (how, inc))
    kw = dict(include_dirs=[inc], libraries=dep_libraries(), extra_objects=[],
              library_dirs=[], runtime_library_dirs=[], define_macros=[])
    static = lib and os.path.join(lib, "libcqrs_client.a")
    if static and os.path.exists(static):
        kw["extra_objects"].append(static)
    else:
        kw["libraries"].insert(0, "cqrs_client")
        if lib:
            kw["library_dirs"].append(lib)
            kw["runtime_library_dirs"].append(lib)
    print("cqrs: building against the installed library (%s): %s" % (how, inc))
    return kw


def from_tree():
    root = os.environ.get("CQRS_SOURCE_DIR") or os.path.abspath(os.path.join(HERE, "..", ".."))
    if not (os.path.exists(os.path.join(root, "include", "cqrs_view.h"))
            and os.path.isdir(os.path.join(root, "core"))):
        return None
    lib_src = []
    for d in ("core", "ringbuf", "shm", "client"):
        lib_src += sorted(glob.glob(os.path.join(root, d, "*.c")))
    kw = dict(include_dirs=[os.path.join(root, "include"), root],
              libraries=dep_libraries(), extra_objects=[], library_dirs=[],
              runtime_library_dirs=[], define_macros=[], sources=lib_src)
    print("cqrs: building from the source tree %s (%d library sources)" % (root, len(lib_src)))
    return kw


def from_pkg_config():
    try:
        cflags = subprocess.run(["pkg-config", "--cflags-only-I", "cqrs_client"], check=True,
                                capture_output=True, text=True).stdout
        libdir = subprocess.run(["pkg-config", "--variable=libdir", "cqrs_client"], check=True,
                                capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    incs = [f[2:] for f in shlex.split(cflags) if f.startswith("-I")]
    inc = incs[0] if incs else os.path.join(os.path.dirname(libdir), "include")
    return installed(inc, libdir, "pkg-config cqrs_client")


def configure():
    kw = from_prefix() or from_tree() or from_pkg_config()
    if kw is None:
        raise SystemExit("cqrs: cannot find the cqrs C library: set CQRS_PREFIX to an installed "
                         "cqrs (make install), build from a cqrs source tree, or make "
                         "pkg-config find cqrs_client")
    kw["sources"] = SRC + kw.get("sources", [])
    return kw


kw = configure()
setup(
    name="cqrs",
    version="0.1.0",
    description="Read the views of a running cqrs engine from shared memory and submit commands",
    long_description=open(os.path.join(HERE, "README.md"), encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.8",
    packages=["cqrs"],
    package_dir={"cqrs": os.path.join(os.path.relpath(HERE), "cqrs")},
    package_data={"cqrs": ["py.typed", "*.pyi"]},
    extras_require={"numpy": ["numpy"], "pandas": ["numpy", "pandas"]},
    ext_modules=[Extension(
        "cqrs._cqrs",
        sources=kw["sources"],
        include_dirs=kw["include_dirs"],
        define_macros=kw["define_macros"],
        libraries=kw["libraries"],
        library_dirs=kw["library_dirs"],
        runtime_library_dirs=kw["runtime_library_dirs"],
        extra_objects=kw["extra_objects"],
        extra_compile_args=CFLAGS,
        extra_link_args=LDFLAGS,
    )],
    zip_safe=False,
)
