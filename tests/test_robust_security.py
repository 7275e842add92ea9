"""Nothing untrusted is unpickled (static scan of src/ plus crafted checkpoints), and the review server stays
local and inside its manifest (adds what tests/test_review_app.py does not already cover)."""

from __future__ import annotations

import ast
import inspect
import os
import pickle
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "medsift"
PICKLE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "shelve", "marshal"}


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            base = node.func.value
            yield (base.id if isinstance(base, ast.Name) else None), node.func.attr, node


def _kw(node: ast.Call, name: str):
    for kw in node.keywords:
        if kw.arg == name:
            return kw.value.value if isinstance(kw.value, ast.Constant) else "<not a constant>"
    return "<absent>"


@pytest.fixture(scope="module")
def sources() -> dict[str, ast.AST]:
    return {str(p.relative_to(SRC)): ast.parse(p.read_text(), str(p)) for p in sorted(SRC.rglob("*.py"))}


def test_scan_sees_the_known_torch_load_sites(sources):
    sites = [(f, node.lineno) for f, tree in sources.items() for base, attr, node in _calls(tree)
             if base == "torch" and attr == "load"]
    assert {f for f, _ in sites} >= {"engine/checkpoint.py", "tasks/models.py"}


def test_every_torch_load_passes_weights_only_true(sources):
    bad = [f"{f}:{node.lineno}" for f, tree in sources.items() for base, attr, node in _calls(tree)
           if base == "torch" and attr == "load" and _kw(node, "weights_only") is not True]
    assert bad == []


def test_no_np_load_allows_pickle(sources):
    bad = [f"{f}:{node.lineno}" for f, tree in sources.items() for base, attr, node in _calls(tree)
           if base in ("np", "numpy") and attr == "load" and _kw(node, "allow_pickle") not in ("<absent>", False)]
    assert bad == []


def test_no_pickle_module_or_pickle_readers_in_src(sources):
    bad = []
    for f, tree in sources.items():
        used = {(n.value.id, n.attr) for n in ast.walk(tree)
                if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in PICKLE_MODULES}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):  # importing pickle only to catch its errors is fine
                bad += [f"{f}: import {a.name} uses {sorted(used)}" for a in node.names
                        if a.name.split(".")[0] in PICKLE_MODULES
                        and not used <= {(a.name, "UnpicklingError"), (a.name, "PicklingError")}]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PICKLE_MODULES:
                bad.append(f"{f}: from {node.module}")
        bad += [f"{f}:{node.lineno} {base}.{attr}" for base, attr, node in _calls(tree)
                if attr in ("read_pickle", "to_pickle") or (base == "joblib" and attr in ("load", "dump"))
                or (base == "yaml" and attr in ("load", "unsafe_load"))]
    assert bad == []


class _Evil:
    """Unpickling this would create ``marker`` (stands for running any code)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def _malicious_files(tmp_path: Path) -> list[Path]:
    import torch

    marker = tmp_path / "pwned"
    zip_ckpt = tmp_path / "evil_zip.pt"
    torch.save({"model": {"w": torch.zeros(2)}, "epoch": 3, "extra": _Evil(marker)}, zip_ckpt)
    raw = tmp_path / "evil_raw.pt"
    raw.write_bytes(pickle.dumps({"model": _Evil(marker)}, protocol=2))
    return [zip_ckpt, raw]


def test_malicious_checkpoint_is_refused_and_runs_nothing(tmp_path):
    from medsift.engine.checkpoint import load_checkpoint
    from medsift.errors import MedsiftError

    for path in _malicious_files(tmp_path):
        with pytest.raises(MedsiftError, match="refused: it holds pickled objects"):
            load_checkpoint(path)
        assert not (tmp_path / "pwned").exists(), path.name


def test_malicious_pretrained_weights_are_refused_and_run_nothing(tmp_path):
    import torch

    from medsift.tasks.models import load_encoder_weights

    model = torch.nn.Linear(2, 2)
    for path in _malicious_files(tmp_path):
        with pytest.raises(Exception):
            load_encoder_weights(model, path)
        assert not (tmp_path / "pwned").exists(), path.name


def test_plain_checkpoint_still_loads(tmp_path):
    import torch

    from medsift.engine.checkpoint import load_checkpoint, save_checkpoint

    save_checkpoint(tmp_path / "ok.pt", {"model": {"w": torch.arange(3.0)}, "epoch": 2, "history": [0.5, 0.25]})
    state = load_checkpoint(tmp_path / "ok.pt")
    assert state["epoch"] == 2 and state["history"] == [0.5, 0.25]
    assert torch.equal(state["model"]["w"], torch.tensor([0.0, 1.0, 2.0]))


# ------------------------------------------------------------------------------------------- review server

flask = pytest.importorskip("flask")


@pytest.fixture(scope="module")
def review_ws(tmp_path_factory):
    from review_fixtures import build_workspace

    return build_workspace(tmp_path_factory.mktemp("robust_review"))


@pytest.fixture()
def client(review_ws):
    from medsift.review.app import create_app

    return create_app(review_ws, reviewer="t", prerender=0).test_client()


def test_review_binds_loopback_by_default(review_ws):
    from medsift.review.app import make_review_server, serve

    assert inspect.signature(serve).parameters["host"].default == "127.0.0.1"
    server = make_review_server(review_ws, port=0)
    try:
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.server_close()


@pytest.mark.parametrize("url", [
    "/assets/..%2f..%2fapp.py", "/assets/%2e%2e%2freview.js", "/assets/../../cli.py", "/assets//etc/passwd",
    "/api/image/%252e%252e%252fmanifest.png", "/api/image/P1_00%2f..%2f..%2fmanifest.png",
    "/api/image/..%5c..%5cmanifest.png", "/api/image/%2fetc%2fpasswd.png",
])
def test_encoded_and_absolute_paths_are_404(client, url):
    resp = client.get(url)
    assert resp.status_code == 404, url
    assert b"root:" not in resp.data


@pytest.mark.parametrize("image_id", ["../evil", "/etc/passwd", "%2e%2e%2fx", "NOT_IN_MANIFEST"])
def test_decisions_for_ids_outside_the_manifest_are_refused_and_not_written(client, review_ws, image_id):
    from medsift.review.app import decisions_path

    path = decisions_path(review_ws)
    before = path.read_bytes() if path.exists() else b""
    resp = client.post("/api/decision", json={"image_id": image_id, "decision": "accept"})
    assert resp.status_code == 422
    assert (path.read_bytes() if path.exists() else b"") == before


def test_symlinked_source_outside_is_not_followed_to_a_crash(client, review_ws, tmp_path):
    """A manifest row whose source file became a symlink loop answers 422, and the server keeps serving."""
    import pandas as pd

    df = pd.read_parquet(review_ws / "manifest.parquet")
    src = Path(df.loc[df["image_id"] == "P2_03", "image_path"].iloc[0])
    src = src if src.is_absolute() else review_ws / src
    saved = src.read_bytes()
    src.unlink()
    os.symlink(src.name, src)
    try:
        assert client.get("/api/image/P2_03.png?size=256").status_code == 422
        assert client.get("/api/items").status_code == 200
    finally:
        src.unlink()
        src.write_bytes(saved)


def test_slice_cache_with_pickled_arrays_is_refused_and_rebuilt(tmp_path):
    import numpy as np

    from medsift.manifest import new_manifest
    from medsift.preprocess.cache import SliceCache, build_cache
    from medsift.preprocess.config import PreprocessConfig

    df = new_manifest([{"image_id": f"a{k}", "patient_id": "p", "image_path": f"/x/a{k}.png", "format": "png",
                        "has_hu": False, "width": 8, "height": 8} for k in range(2)])
    cfg = PreprocessConfig(size=8)
    kwargs = dict(n_jobs=1, progress=False, load_slice=lambda row: np.full((8, 8), 7.0, np.float32),
                  load_mask=lambda row: None)
    build_cache(df, tmp_path / "cache", cfg, **kwargs)
    marker = tmp_path / "pwned"
    np.save(tmp_path / "cache" / "images.npy", np.array([_Evil(marker)], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="allow_pickle|Python objects"):  # refused, never unpickled
        SliceCache(tmp_path / "cache")
    rebuilt = build_cache(df, tmp_path / "cache", cfg, **kwargs)
    assert rebuilt.images.dtype == np.uint8 and rebuilt.images.shape == (2, 1, 8, 8)
    assert not marker.exists()
