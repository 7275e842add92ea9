"""A report figure: PNG bytes embedded as a data URI, with the command and config that produced it."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path

MAX_EMBED_SIDE = 1600
"""PNG files wider or taller than this (pixels) are downscaled before embedding, to keep the report light."""


@dataclass(frozen=True)
class Provenance:
    """Where a figure or table comes from: the command line, and the config / source file to open."""

    command: str
    config: Path | None = None


@dataclass(frozen=True)
class Figure:
    """One embedded image with a title and caption; ``png`` is the file's bytes."""

    title: str
    png: bytes
    provenance: Provenance
    caption: str = ""
    source: Path | None = None  # the PNG on disk, when the figure is a file another stage wrote

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


def shrink_png(data: bytes, *, max_side: int = MAX_EMBED_SIDE) -> bytes:
    """PNG bytes downscaled so the longer side is at most ``max_side`` pixels (unchanged when smaller)."""
    from PIL import Image

    img = Image.open(io.BytesIO(data))
    if max(img.size) <= max_side:
        return data
    img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def figure_from_file(path: Path, *, title: str, provenance: Provenance, caption: str = "") -> Figure:
    """Embed a PNG another stage wrote (curves, ROC, confusion matrix...)."""
    return Figure(title=title, png=shrink_png(Path(path).read_bytes()), provenance=provenance,
                  caption=caption, source=Path(path))


def matplotlib_png(fig) -> bytes:
    """Render a matplotlib figure to PNG bytes (100 dpi) and close it."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()
