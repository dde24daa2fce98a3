"""Tests for distill_core.images: uploads become dataset examples, and bad uploads are refused clearly."""

from __future__ import annotations

import io
import struct
import time
import warnings
import zlib

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFile

from distill_core import data, images

MNIST = data.get_info("mnist")


def _digit(mode: str = "L", ink: object = 0, paper: object = 255, size: tuple[int, int] = (200, 300)) -> Image.Image:
    """A hand-drawn-looking 7, off-centre on purpose, in ``mode`` with the given ink and paper colours."""
    image = Image.new(mode, size, paper)
    ImageDraw.Draw(image).line([(30, 40), (130, 40), (60, 250)], fill=ink, width=18)
    return image


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _centre_of_mass(example: torch.Tensor) -> tuple[float, float]:
    glyph = example[0].numpy()
    rows, cols = np.indices(glyph.shape)
    return float((rows * glyph).sum() / glyph.sum()), float((cols * glyph).sum() / glyph.sum())


def _ink_extent(example: torch.Tensor) -> tuple[int, int]:
    """Height and width of the bounding box of pixels brighter than 0.2."""
    rows, cols = np.nonzero(example[0].numpy() > 0.2)
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


def _assert_mnist_like(example: torch.Tensor) -> None:
    assert example.shape == (1, 28, 28) and example.dtype == torch.float32
    assert 0.0 <= example.min() and example.max() <= 1.0
    # inverted to white ink on black: the background (corners) is zero and the strokes are bright
    assert example[0, :3, :3].max() == 0.0 and example.max() > 0.9
    row, col = _centre_of_mass(example)
    assert abs(row - 14) <= 1 and abs(col - 14) <= 1  # MNIST puts the centre of mass at (14, 14)
    assert max(_ink_extent(example)) in (19, 20, 21)  # longer side fitted to MNIST's 20 px box


@pytest.fixture(scope="module")
def png_example() -> torch.Tensor:
    return images.image_to_example(_encode(_digit(), "PNG"), MNIST)


# ---------------------------------------------------------------------------------------------
# valid uploads
# ---------------------------------------------------------------------------------------------


def test_black_on_white_png_is_inverted_cropped_and_centred(png_example):
    _assert_mnist_like(png_example)
    assert _ink_extent(png_example)[0] == 20  # the drawing is taller than wide


def test_jpeg_matches_png(png_example):
    example = images.image_to_example(_encode(_digit(), "JPEG", quality=85), MNIST)
    _assert_mnist_like(example)
    assert (example - png_example).abs().mean() < 0.02  # only JPEG's compression noise differs


def test_white_on_black_is_not_inverted(png_example):
    example = images.image_to_example(_encode(_digit(ink=255, paper=0), "PNG"), MNIST)
    assert torch.allclose(example, png_example, atol=1e-5)


def test_real_mnist_digits_survive_the_round_trip():
    # Oracle: MNIST's own preprocessing. Drawing its digits black-on-white at 4x size and uploading
    # them must give back nearly the same 28x28 images.
    test = data.load_dataset("mnist5k").test
    correlations = []
    for pixels in test.images[:20, 0].numpy():
        drawing = Image.fromarray(((1 - pixels) * 255).astype(np.uint8)).resize((112, 112), Image.Resampling.BICUBIC)
        example = images.image_to_example(_encode(drawing, "PNG"), MNIST)
        correlations.append(np.corrcoef(example.numpy().ravel(), pixels.ravel())[0, 1])
    assert np.mean(correlations) > 0.9, correlations


def test_cmyk_jpeg_gives_a_valid_example(png_example):
    example = images.image_to_example(_encode(_digit("CMYK", (0, 0, 0, 255), (0, 0, 0, 0)), "JPEG"), MNIST)
    _assert_mnist_like(example)
    assert (example - png_example).abs().mean() < 0.03


def test_16_bit_png_gives_a_valid_example(png_example):
    strokes = np.asarray(_digit(ink=255, paper=0), dtype=np.uint16) * 257  # 0..65535
    encoded = _encode(Image.fromarray(strokes), "PNG")
    assert Image.open(io.BytesIO(encoded)).mode == "I;16"  # really a 16-bit file
    example = images.image_to_example(encoded, MNIST)
    assert torch.allclose(example, png_example, atol=1e-5)


@pytest.mark.parametrize("ink", [(0, 0, 0, 255), (255, 255, 255, 255)], ids=["dark-ink", "light-ink"])
def test_rgba_png_on_transparent_background(png_example, ink):
    # transparent paper is composited onto whichever background contrasts with the strokes
    example = images.image_to_example(_encode(_digit("RGBA", ink, (0, 0, 0, 0)), "PNG"), MNIST)
    assert torch.allclose(example, png_example, atol=1e-5)


def test_palette_gif_and_la_png_are_accepted(png_example):
    for encoded in (_encode(_digit().convert("P"), "GIF"), _encode(_digit("LA", (0, 255), (0, 0)), "PNG")):
        assert torch.allclose(images.image_to_example(encoded, MNIST), png_example, atol=1e-5)


def test_fashion_items_fill_the_frame_centred_by_box():
    example = images.image_to_example(_encode(_digit(), "PNG"), data.get_info("fashion-mnist"))
    height, width = _ink_extent(example)
    assert height == 28
    rows, cols = np.nonzero(example[0].numpy() > 0.2)
    assert abs((cols.min() + cols.max()) / 2 - 13.5) <= 1


def test_colour_dataset_is_resized_to_32x32():
    photo = Image.new("RGB", (300, 200), (255, 0, 0))
    ImageDraw.Draw(photo).rectangle((150, 0, 299, 199), fill=(0, 0, 255))
    example = images.image_to_example(_encode(photo, "PNG"), data.get_info("cifar10"))
    assert example.shape == (3, 32, 32) and example.dtype == torch.float32
    assert torch.allclose(example[:, :, :10], torch.tensor([1.0, 0, 0])[:, None, None].expand(3, 32, 10), atol=0.01)
    assert torch.allclose(example[:, :, -10:], torch.tensor([0, 0, 1.0])[:, None, None].expand(3, 32, 10), atol=0.01)


# ---------------------------------------------------------------------------------------------
# refused uploads
# ---------------------------------------------------------------------------------------------


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height but carries only a few bytes of pixel data."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    "size",
    [(100_000, 100_000), (10_000, 10_000), (6_000, 6_000)],
    ids=["over-PIL-error-limit", "over-PIL-warning-limit", "over-our-limit-only"],
)
def test_decompression_bomb_is_refused_before_decoding(monkeypatch, size):
    encoded = _png_header_only(*size)
    assert len(encoded) < 200  # tiny on disk, enormous once decoded

    def fail_load(self):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", fail_load)
    limit_before, filters_before = Image.MAX_IMAGE_PIXELS, list(warnings.filters)
    started = time.perf_counter()
    with pytest.raises(ValueError, match=r"the image is too large .*25,000,000 pixels.*upload a smaller image"):
        images.image_to_example(encoded, MNIST)
    assert time.perf_counter() - started < 1.0
    # PIL's global limit and the warning filters are left exactly as they were
    assert Image.MAX_IMAGE_PIXELS == limit_before and warnings.filters == filters_before


def test_empty_upload():
    with pytest.raises(ValueError, match="the upload is empty; upload a PNG or JPEG"):
        images.image_to_example(b"", MNIST)


def test_oversize_upload_is_refused_by_length():
    with pytest.raises(ValueError, match=r"over the 5 MB limit; upload a smaller PNG or JPEG"):
        images.image_to_example(b"\0" * (images.MAX_UPLOAD_BYTES + 1), MNIST)


@pytest.mark.parametrize(
    "payload",
    [b"this is not an image", b"%PDF-1.4 fake", _encode(_digit(), "TIFF")],
    ids=["text", "pdf", "tiff-not-allowed"],
)
def test_not_an_image(payload):
    with pytest.raises(ValueError, match=r"not an image we can read \(accepted: PNG, JPEG, GIF, BMP, WEBP\)"):
        images.image_to_example(payload, MNIST)


def test_zero_size_png_is_refused_as_unreadable():
    # PIL will not even identify a 0x0 image, so it gets the "not an image" message
    with pytest.raises(ValueError, match="not an image we can read"):
        images.image_to_example(_png_header_only(0, 0), MNIST)


def test_animated_gif_is_refused():
    frames = [_digit(), _digit().rotate(20, fillcolor=255)]
    encoded = _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    with pytest.raises(ValueError, match="the image is animated; upload a still image"):
        images.image_to_example(encoded, MNIST)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_file_is_refused(fmt):
    encoded = _encode(_digit(), fmt)
    with pytest.raises(ValueError, match="the image is truncated or damaged .*upload the complete file"):
        images.image_to_example(encoded[: len(encoded) // 2], MNIST)


def test_blank_drawing_is_refused():
    with pytest.raises(ValueError, match="the image looks blank"):
        images.image_to_example(_encode(Image.new("L", (50, 50), 255), "PNG"), MNIST)


# ---------------------------------------------------------------------------------------------
# example_to_display
# ---------------------------------------------------------------------------------------------


def test_example_to_display_shapes_and_values():
    grey = images.example_to_display(torch.tensor([[[0.0, 0.5, 1.0]]]))
    assert grey.dtype == np.uint8 and grey.tolist() == [[0, 128, 255]]
    colour = images.example_to_display(torch.rand(3, 32, 32))
    assert colour.shape == (32, 32, 3) and colour.dtype == np.uint8
    with pytest.raises(ValueError, match="x must be \\(channels, height, width\\) with 1 or 3 channels"):
        images.example_to_display(torch.zeros(2, 4, 4))
