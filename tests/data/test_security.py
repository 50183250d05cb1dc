"""Secrets stay out of URLs, and so out of logs and error messages (issue 7)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("url", ["https://user:s3cret@mirror.example/ml/", "http://:s3cret@10.0.0.1/"])
def test_a_mirror_url_with_credentials_is_refused_without_echoing_them(url, monkeypatch):
    from movierec_spark import MovieRecError
    from movierec_spark.data import download
    from movierec_spark.data.releases import get_release

    monkeypatch.delenv(download.BASE_URL_ENV, raising=False)
    with pytest.raises(MovieRecError) as refused:
        download.archive_url(get_release("ml-latest-small"), url)
    assert "s3cret" not in str(refused.value) and "credentials" in str(refused.value)
    monkeypatch.setenv(download.BASE_URL_ENV, url)
    with pytest.raises(MovieRecError, match=r"\$MOVIEREC_MOVIELENS_URL") as refused:
        download.archive_url(get_release("ml-latest-small"))
    assert "s3cret" not in str(refused.value)
