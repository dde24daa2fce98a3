"""Turning an uploaded image into one example in a dataset's own format, and back for display.

Uploads are untrusted: the size in bytes and the pixel count declared in the header are checked
before any pixel is decoded, only common still-image formats are opened, and every failure is a
ValueError that says what to upload instead. Digit-style sets get MNIST's own preprocessing
(invert to white ink on black, crop, fit into a 20 px box, centre by mass in 28x28); colour sets
are simply resized.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .data import DatasetInfo

MAX_UPLOAD_BYTES = 5 * 1024 * 1024  # 5 MiB
MAX_IMAGE_PIXELS = 25_000_000  # declared width x height; PIL's own default allows ~89 million
# Plain raster formats only: PIL's other plugins (EPS runs Ghostscript, for one) have no place here.
ALLOWED_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")
_UPLOAD_HINT = "upload a PNG or JPEG of a single image"
_WORKING_SIZE = 512  # big photos are reduced to about this before any per-pixel work
_INK_THRESHOLD = 0.2  # ink level (0..1 above the background) that counts for the bounding box

# How each 1-channel set laid out its examples in 28x28: (longer side of the ink box, centre by mass).
# MNIST fits digits in 20x20 and centres their mass; Fashion-MNIST fills 28 px and centres the box.
_MNIST_LAYOUT = (20, True)
_LAYOUTS = {"fashion-mnist": (28, False)}


def image_to_example(data: bytes, info: DatasetInfo) -> torch.Tensor:
    """Decode an uploaded image into one example (C, H, W) float32 in [0, 1] shaped like ``info``'s.

    Raises ValueError for empty, oversized, undecodable, animated, truncated or bomb-sized
    uploads, and for a blank drawing.
    """
    image = _open_checked(data)
    channels, height, width = info.input_shape
    if channels == 3:
        rgb = _flatten(image).convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
        pixels = np.asarray(rgb, dtype=np.float32) / 255.0  # (H, W, 3)
        return torch.from_numpy(pixels).permute(2, 0, 1).contiguous()
    gray = np.asarray(_flatten(image).convert("L"), dtype=np.float32) / 255.0  # (h, w)
    box, centre_by_mass = _LAYOUTS.get(info.name, _MNIST_LAYOUT)
    ink = _place_ink(_crop_to_ink(_ink(gray)), box, centre_by_mass, (height, width))
    return torch.from_numpy(ink)[None]  # (1, H, W)


def example_to_display(x: torch.Tensor) -> np.ndarray:
    """An example (C, H, W) in [0, 1] as uint8 pixels: (H, W) for one channel, (H, W, 3) for three."""
    if x.ndim != 3 or x.shape[0] not in (1, 3):
        raise ValueError(f"x must be (channels, height, width) with 1 or 3 channels, got {tuple(x.shape)}")
    pixels = (x.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    return pixels[0] if x.shape[0] == 1 else pixels.transpose(1, 2, 0)


# ---------------------------------------------------------------------------------------------
# Decoding safely
# ---------------------------------------------------------------------------------------------


def _open_checked(data: bytes) -> Image.Image:
    """Open, validate and fully decode ``data``; the pixel count is checked before decoding."""
    if len(data) == 0:
        raise ValueError(f"the upload is empty; {_UPLOAD_HINT}")
    if len(data) > MAX_UPLOAD_BYTES:
        raise ValueError(
            f"the upload is {len(data) / 2**20:.1f} MB, over the {MAX_UPLOAD_BYTES / 2**20:.0f} MB limit; "
            "upload a smaller PNG or JPEG"
        )
    image = _open_header(data)
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        raise _too_many_pixels(f"{width}x{height}")
    # MPO is how cameras store a photo plus a preview; only real animations are refused.
    if getattr(image, "is_animated", False) and image.format != "MPO":
        raise ValueError("the image is animated; upload a still image (PNG or JPEG)")
    image.draft(None, (_WORKING_SIZE, _WORKING_SIZE))  # JPEG only: decode at a reduced scale, cheaply
    try:
        image.load()
    except (OSError, ValueError, SyntaxError, EOFError) as error:  # "image file is truncated" is an OSError
        raise _damaged(error) from error
    image = ImageOps.exif_transpose(image)  # phone photos: apply the stored rotation
    image.thumbnail((_WORKING_SIZE, _WORKING_SIZE), Image.Resampling.LANCZOS)
    return image


def _open_header(data: bytes) -> Image.Image:
    """Read only the header, refusing what PIL itself flags as a decompression bomb.

    PIL's ``MAX_IMAGE_PIXELS`` is left alone; its bomb warning is turned into an error only inside
    ``catch_warnings``, which restores the filters on exit (though, like all warning filters, they
    are briefly process-wide).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise _too_many_pixels("declared by its header") from error
    except UnidentifiedImageError as error:  # an OSError, so it must come first
        raise ValueError(
            f"the upload is not an image we can read (accepted: {', '.join(ALLOWED_FORMATS)}); {_UPLOAD_HINT}"
        ) from error
    except (OSError, ValueError, SyntaxError, EOFError) as error:  # a header cut short or garbled
        raise _damaged(error) from error


def _damaged(error: Exception) -> ValueError:
    return ValueError(f"the image is truncated or damaged ({error}); upload the complete file")


def _too_many_pixels(size: str) -> ValueError:
    return ValueError(
        f"the image is too large ({size}; the limit is {MAX_IMAGE_PIXELS:,} pixels); "
        "upload a smaller image, a few hundred pixels across is plenty"
    )


def _flatten(image: Image.Image) -> Image.Image:
    """Any mode to "L" or "RGB"; transparency is composited onto a background that contrasts with the ink."""
    if image.mode in ("L", "RGB"):
        return image
    if image.mode in ("1", "I;16", "I;16L", "I;16B", "I;16N"):
        return image.convert("L")  # PIL scales 16-bit 0..65535 down to 0..255
    if image.mode in ("LA", "PA", "RGBA", "La", "RGBa") or "transparency" in image.info:
        return _composite(image.convert("RGBA"))
    return image.convert("RGB")  # CMYK, YCbCr, palette, 32-bit "I" and float "F"


def _composite(rgba: Image.Image) -> Image.Image:
    """Put a transparent drawing on white if its visible strokes are dark, on black if they are light."""
    pixels = np.asarray(rgba, dtype=np.float32)  # (h, w, 4)
    alpha = pixels[..., 3]
    visible_luma = (pixels[..., :3].mean(axis=2) * alpha).sum() / max(alpha.sum(), 1.0)
    background = Image.new("RGB", rgba.size, "white" if visible_luma < 128 else "black")
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


# ---------------------------------------------------------------------------------------------
# MNIST-style layout
# ---------------------------------------------------------------------------------------------


def _ink(gray: np.ndarray) -> np.ndarray:
    """Ink intensity (h, w) in [0, 1] over a zero background: bright-background drawings are inverted.

    The background level is the median of the image's border pixels; it is subtracted so grey
    paper or a JPEG's faint tint does not count as ink.
    """
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    background = float(np.median(border))
    ink, background = (1.0 - gray, 1.0 - background) if background > 0.5 else (gray, background)
    return np.clip((ink - background) / max(1.0 - background, 1e-6), 0.0, 1.0)


def _crop_to_ink(ink: np.ndarray) -> np.ndarray:
    rows = np.flatnonzero((ink > _INK_THRESHOLD).any(axis=1))
    cols = np.flatnonzero((ink > _INK_THRESHOLD).any(axis=0))
    if len(rows) == 0:
        raise ValueError("the image looks blank (no strokes found); upload a drawing with clearly visible ink")
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _place_ink(ink: np.ndarray, box: int, centre_by_mass: bool, frame: tuple[int, int]) -> np.ndarray:
    """Resize so the longer side is ``box`` px (aspect kept) and paste into a zero ``frame``."""
    scale = box / max(ink.shape)
    new_height, new_width = (max(1, round(side * scale)) for side in ink.shape)
    resized = Image.fromarray(ink.astype(np.float32)).resize((new_width, new_height), Image.Resampling.LANCZOS)
    glyph = np.clip(np.asarray(resized), 0.0, 1.0)  # LANCZOS rings slightly outside [0, 1]
    frame_height, frame_width = frame
    if centre_by_mass:
        rows, cols = np.indices(glyph.shape)
        mass = glyph.sum()
        # MNIST's centre of mass sits at pixel (14, 14) (mnist5k: 13.99 and 14.00, std 0.29)
        top = round(frame_height / 2 - (rows * glyph).sum() / mass)
        left = round(frame_width / 2 - (cols * glyph).sum() / mass)
    else:
        top, left = (frame_height - new_height) // 2, (frame_width - new_width) // 2
    # never push ink out of the frame
    top = min(max(top, 0), frame_height - new_height)
    left = min(max(left, 0), frame_width - new_width)
    placed = np.zeros(frame, dtype=np.float32)
    placed[top : top + new_height, left : left + new_width] = glyph
    return placed
