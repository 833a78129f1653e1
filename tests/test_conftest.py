"""conftest.py's require_shared: a missing ../shared path skips with its reason, and fails under CI."""

import pytest


def test_a_missing_shared_path_skips_naming_it_and_why_and_fails_under_ci(monkeypatch, require_shared):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"shared/no-such-file \(the reason\)"):
        require_shared("no-such-file", "the reason")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"CI is set.*shared/no-such-file \(the reason\)"):
        require_shared("no-such-file", "the reason")
