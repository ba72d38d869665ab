"""Runs the Python binding's unittest suites (tests/python/test_*.py) against
the module in $BUILD/python and ends with one line:
    python: N passed, N failed, N skipped
Exit status 0 when nothing failed. Arguments: test name patterns (-k)."""
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def main():
    import cqrs_fixture  # imports cqrs from $BUILD/python (fails loudly if missing)
    print("python %s, module %s (client %s)" % (sys.version.split()[0],
          cqrs_fixture.cqrs.__file__, "built in" if cqrs_fixture.cqrs.HAVE_CLIENT else "absent"))
    loader = unittest.TestLoader()
    if len(sys.argv) > 1:
        loader.testNamePatterns = ["*%s*" % p for p in sys.argv[1:]]
    suite = loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    if cqrs_fixture._shared is not None:
        cqrs_fixture._shared.cleanup()
    bad = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    passed = result.testsRun - bad - skipped
    print("python: %d passed, %d failed, %d skipped" % (passed, bad, skipped))
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
