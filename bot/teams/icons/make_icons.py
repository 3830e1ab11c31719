"""Draw the Teams app icons once: ``python bot/teams/icons/make_icons.py``.

Teams wants a 192×192 colour icon (full bleed; Teams rounds the corners) and a 32×32
outline icon, white on a transparent background. The PNGs are committed; this script says
how they were made and remakes them if the design changes. The mark: three rising bars
(a score that climbs) under a spark (a hot lead).
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).parent
ORANGE = (217, 72, 15, 255)
WHITE = (255, 255, 255, 255)
BARS = ((0.22, 0.62), (0.42, 0.46), (0.62, 0.30))  # (left, top) of each bar, in units
BAR_WIDTH, BASE = 0.16, 0.80
SPARK = (0.78, 0.20, 0.07)  # centre x, centre y, radius


def draw_mark(draw: ImageDraw.ImageDraw, size: int, fill: tuple[int, int, int, int]) -> None:
    for left, top in BARS:
        box = (left * size, top * size, (left + BAR_WIDTH) * size, BASE * size)
        draw.rectangle([round(v) for v in box], fill=fill)
    x, y, r = (v * size for v in SPARK)
    draw.ellipse([round(x - r), round(y - r), round(x + r), round(y + r)], fill=fill)


def color_icon(size: int = 192) -> Image.Image:
    image = Image.new("RGBA", (size, size), ORANGE)
    draw_mark(ImageDraw.Draw(image), size, WHITE)
    return image


def outline_icon(size: int = 32) -> Image.Image:
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw_mark(ImageDraw.Draw(image), size, WHITE)
    return image


if __name__ == "__main__":
    color_icon().save(HERE / "color.png", optimize=True)
    outline_icon().save(HERE / "outline.png", optimize=True)
