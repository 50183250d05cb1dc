"""The notebook runs headless end to end against a small saved model, with no JVM in its kernel."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "recommend_for_me.ipynb"


def _html_rows(cell) -> list[list[str]]:
    """The data cells of the HTML table a cell displayed (pandas' DataFrame repr)."""
    markup = "".join(o.get("data", {}).get("text/html", "") for o in cell.get("outputs", []))
    rows = re.findall(r"<tr>(.*?)</tr>", markup, flags=re.S)
    return [[html.unescape(td) for td in re.findall(r"<td>(.*?)</td>", row, flags=re.S)] for row in rows if "<td>" in row]


def _text(cell) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            parts.append(output.get("text", ""))
        data = output.get("data", {})
        parts.append(data.get("text/plain", ""))
        parts.append(data.get("text/html", ""))
    return "\n".join(parts)


# Run first in the kernel: from then on any import of pyspark fails, so
# nothing the notebook does can start a JVM.
NO_PYSPARK = 'import sys\nsys.modules["pyspark"] = None'
SPARK_MODULES = 'sorted(m for m, v in sys.modules.items() if m.startswith("pyspark") and v is not None)'


@pytest.mark.slow
def test_notebook_executes_and_shows_top_n_and_similar(spark, tmp_path, tmp_path_factory, monkeypatch):
    import nbclient
    import nbformat

    from tests.tiny_models import saved_trained_model

    model_dir = saved_trained_model(spark, tmp_path_factory)
    monkeypatch.setenv("MOVIEREC_MODEL", str(model_dir))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    notebook.cells.insert(0, nbformat.v4.new_code_cell(NO_PYSPARK))
    notebook.cells.append(nbformat.v4.new_code_cell(SPARK_MODULES))
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    client.execute()

    code = [c for c in notebook.cells if c.cell_type == "code"]
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors
    by_source = {c.source.strip(): c for c in code}
    widget = next(_text(c) for source, c in by_source.items() if source.endswith("app.widget"))
    assert "VBox" in widget
    # Columns: #, movie, genres, predicted, ratings, because you liked.
    top_n = _html_rows(by_source["app.recommend()"])
    assert len(top_n) == 10
    assert [row[0] for row in top_n] == [str(i) for i in range(1, 11)]
    recommended = [row[1] for row in top_n]
    rated = {"Matrix, The (1999)", "Toy Story (1995)", "Alien (1979)", "Heat (1995)"}
    assert not rated & set(recommended)
    assert "Rarely Seen (2000)" not in recommended  # fewer ratings than min_ratings
    # Every explanation is a movie the example rated 4 or more.
    assert {row[5] for row in top_n} <= {"Matrix, The (1999)", "Toy Story (1995)", "Alien (1979)"}
    similar = _html_rows(by_source['app.similar("The Matrix")'])
    assert similar and "Matrix, The (1999)" not in [row[1] for row in similar]
    scores = [float(row[3]) for row in similar]
    assert scores == sorted(scores, reverse=True)
    assert _text(by_source[SPARK_MODULES]).strip() == "[]"
