"""An episode as a picture: the rendered frames of a rollout saved as an animated GIF."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from data.files import write_atomically


def save_gif(frames: list, path: Path, frame_ms: int = 250) -> None:
    images = [Image.fromarray(frame) for frame in frames]
    buffer = io.BytesIO()
    images[0].save(
        buffer, format="GIF", save_all=True, append_images=images[1:], duration=frame_ms, loop=0
    )
    write_atomically(path, buffer.getvalue())
