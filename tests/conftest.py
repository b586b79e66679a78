import os
import sys
import tempfile

# procedural datasets cache renders on disk: keep the tests' renders out of the home folder
os.environ.setdefault("LATENTSPEC_CACHE", tempfile.mkdtemp(prefix="latentspec-test-cache-"))

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, "tests")
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)
RUNTIME = os.path.join(ROOT, "runtime")
try:
    import latentspec_runtime  # noqa: F401
except ImportError:
    sys.path.insert(0, RUNTIME)
