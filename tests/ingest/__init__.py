import pytest

# support.check_reruns asserts: keep pytest's detailed assertion messages there too.
pytest.register_assert_rewrite("tests.ingest.support")
