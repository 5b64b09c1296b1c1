"""Product and SKU pictures: what is accepted, and where it is stored.

Files go through Django's storage API (``default_storage``: local files under ``MEDIA_ROOT`` unless
``STORAGES`` says otherwise). An upload is accepted only when Pillow reads it as a JPEG, PNG,
WebP or GIF of at most ``MAX_IMAGE_BYTES`` and ``MAX_IMAGE_SIDE`` pixels a side; it is stored under
the merchant's own folder with a random name and the extension of the format Pillow found (never
the name the browser sent), so a name cannot be guessed from another merchant's and a file cannot
pretend to be of another type."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from PIL import Image, UnidentifiedImageError

MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_IMAGE_SIDE = 8000
FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif"}


def image_format(file: Any) -> str:
    """The Pillow format of an uploaded or stored file, after checking its size and content.
    Raises ``ValidationError`` (codes ``image_too_large``, ``invalid_image``, ``image_format``,
    ``image_dimensions``); leaves the file at its start."""
    size = getattr(file, "size", None)
    if size is not None and size > MAX_IMAGE_BYTES:
        raise ValidationError(
            _("The image is %(size).1f MB; at most %(max)d MB is accepted."),
            code="image_too_large",
            params={"size": size / 1024 / 1024, "max": MAX_IMAGE_BYTES // (1024 * 1024)},
        )
    try:
        file.seek(0)
        with Image.open(file) as im:
            fmt, (width, height) = im.format or "", im.size
            im.verify()  # reads the whole file: a truncated or corrupt image is refused here
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ValidationError(
            _("This file is not an image (upload a JPEG, PNG, WebP or GIF)."), code="invalid_image"
        ) from exc
    finally:
        file.seek(0)
    if fmt not in FORMATS:
        raise ValidationError(
            _("%(format)s images are not accepted: upload a JPEG, PNG, WebP or GIF."),
            code="image_format",
            params={"format": fmt or "?"},
        )
    if width > MAX_IMAGE_SIDE or height > MAX_IMAGE_SIDE:
        raise ValidationError(
            _("The image is %(width)d × %(height)d pixels; at most %(max)d pixels a side is accepted."),
            code="image_dimensions",
            params={"width": width, "height": height, "max": MAX_IMAGE_SIDE},
        )
    return fmt


def validate_image(file: Any) -> None:
    """A model field validator: a fresh upload is checked; a file already stored passed before."""
    if getattr(file, "_committed", False):
        return
    image_format(file)


def _path(kind: str, instance: Any, filename: str) -> str:
    fmt = image_format(instance_file(instance))
    return f"catalog/{instance.merchant_id}/{kind}/{uuid.uuid4().hex}.{FORMATS[fmt]}"


def instance_file(instance: Any) -> Any:
    return instance.image.file


def product_image_path(instance: Any, filename: str) -> str:
    return _path("products", instance, filename)


def sku_image_path(instance: Any, filename: str) -> str:
    return _path("skus", instance, filename)
