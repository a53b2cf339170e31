"""Both notebooks run top to bottom (TOOLR0_LITE_SMOKE=1: tiny model, CPU, smallest sizes), are stored without
outputs, and the Colab notebook stops at its GPU cell with a message on a machine without a GPU."""

from pathlib import Path

import nbformat
import pytest
import torch
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def execute(name: str, workdir: Path, monkeypatch, smoke: bool) -> nbformat.NotebookNode:
    if smoke:
        monkeypatch.setenv("TOOLR0_LITE_SMOKE", "1")
    else:
        monkeypatch.delenv("TOOLR0_LITE_SMOKE", raising=False)
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(workdir)}})
    client.execute()
    return notebook


@pytest.mark.parametrize("name", ["quickstart_colab.ipynb", "self_play_explained.ipynb"])
def test_notebooks_are_stored_without_outputs(name):
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


def test_self_play_explained_runs(tmp_path, monkeypatch):
    notebook = execute("self_play_explained.ipynb", tmp_path, monkeypatch, smoke=True)
    text = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
    assert "r_S = 2.000" in text and "rejected" in text and "r_G" in text
    assert (tmp_path / "runs" / "explained" / "iter_00" / "solver" / "adapter_model.safetensors").exists()


@pytest.mark.bfcl
def test_quickstart_colab_runs_in_smoke_mode(tmp_path, monkeypatch):
    execute("quickstart_colab.ipynb", tmp_path, monkeypatch, smoke=True)
    run = tmp_path / "runs" / "quickstart"
    assert (run / "eval" / "summary.json").exists() and (run / "report.md").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown where there is no GPU")
def test_quickstart_colab_stops_at_the_gpu_cell_without_a_gpu(tmp_path, monkeypatch):
    with pytest.raises(CellExecutionError) as failure:
        execute("quickstart_colab.ipynb", tmp_path, monkeypatch, smoke=False)
    assert failure.value.ename == "SystemExit" and "No CUDA GPU here" in failure.value.evalue
    assert not (tmp_path / "runs").exists()  # nothing after the GPU cell ran


def test_one_repository_url_everywhere():
    """pyproject.toml names the repository once; the README's Colab badge and the notebook's install cell use it."""
    import re

    root = NOTEBOOKS.parent
    url = re.search(r'^Repository = "([^"]+)"', (root / "pyproject.toml").read_text(), re.MULTILINE).group(1)
    path = url.removeprefix("https://github.com/")
    readme, notebook = (root / "README.md").read_text(), (NOTEBOOKS / "quickstart_colab.ipynb").read_text()
    assert f"colab.research.google.com/github/{path}/blob/main/notebooks/quickstart_colab.ipynb" in readme
    assert f"git+{url}" in notebook
    assert set(re.findall(r"github\.com/([\w.-]+/[\w.-]+)", readme + notebook)) == {path}
