"""Test fixture: a running `cqrs-orders serve` engine with a unique name.

    eng = cqrs_fixture.shared()    # one populated engine for the whole run
    eng.name, eng.dir, eng.cli("view", "get", eng.name, "order_summaries", "5")
    eng = cqrs_fixture.ServedEngine(populate=False).start()   # a private one

The shared engine is populated first by a short `cqrs-orders demo` run in
the same data directory (customers 1..50 and tens of thousands of orders),
then served (durability none) so the views hold recovered data and the
gateway accepts commands. Every engine is stopped with SIGTERM, its segments
removed with `cqrs rm` and its directory deleted, also when the test process
dies (the server gets SIGTERM through PR_SET_PDEATHSIG).

BUILD (environment) names the build folder: its python/ holds the module;
CQRS_PYTHONPATH, when set, is where the module is imported from instead.
"""
import atexit
import ctypes
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.abspath(os.path.join(ROOT, os.environ.get("BUILD", "build")))
CUSTOMERS = 50

sys.path.insert(0, os.environ.get("CQRS_PYTHONPATH") or os.path.join(BUILD, "python"))
import cqrs  # noqa: E402  (the module under test, from $BUILD/python)


def _die_with_parent():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def unique_name(prefix="py"):
    return "%s_%d_%d" % (prefix, os.getpid(), random.randrange(1 << 30))


class ServedEngine:
    def __init__(self, populate=True, prefix="py"):
        self.name = unique_name(prefix)
        self.dir = tempfile.mkdtemp(prefix="cqrs-pytest.")
        self.populate = populate
        self.proc = None

    def cli(self, *args):
        return subprocess.run([os.path.join(BUILD, "cqrs")] + list(args), check=True,
                              capture_output=True, text=True).stdout

    def start(self):
        atexit.register(self.cleanup)
        orders = os.path.join(BUILD, "cqrs-orders")
        if self.populate:
            subprocess.run([orders, "demo", "--dir", self.dir, "--name", self.name, "--duration",
                            "0.5", "--fresh", "--quiet", "--customers", str(CUSTOMERS)],
                           check=True, stdout=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        self.log = open(os.path.join(self.dir, "serve.out"), "w")
        self.proc = subprocess.Popen([orders, "serve", "--dir", self.dir, "--name", self.name,
                                      "--durability", "none"], stdout=self.log,
                                     stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + 30
        while True:
            try:
                e = cqrs.connect(self.name, readonly=True)
                if len(e.views()) == 3:
                    e.close()
                    break
                e.close()
            except cqrs.Error:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("cqrs-orders serve did not come up: " + self.output())
            time.sleep(0.05)
        return self

    def output(self):
        try:
            with open(os.path.join(self.dir, "serve.out")) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        """SIGTERM and wait; returns the exit status."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None

    def cleanup(self):
        self.stop()
        subprocess.run([os.path.join(BUILD, "cqrs"), "rm", self.name],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if getattr(self, "log", None):
            self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


_shared = None


def shared():
    global _shared
    if _shared is None:
        _shared = ServedEngine().start()
    return _shared
