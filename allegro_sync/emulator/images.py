"""``POST /sale/images``: an image uploaded by link (Allegro downloads it) or as bytes.

Answers 201 ``{location, expiresAt}``: a link on Allegro's image host that offers may use; an
unused upload expires (allegro-api.md 8.2). On Allegro this is served by the upload host
(``upload.allegro.pl``); the emulator serves every host on one port.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from . import context
from .auth import scope, seller_caller
from .clock import iso
from .errors import ApiError, error_entry, json_response

IMAGE_HOST = "a.allegroimg.com"
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")
MAX_IMAGE_BYTES = 10 * 1024 * 1024
UPLOAD_LIFETIME = timedelta(days=1)
# Allegro's gallery: at most 16 images, product images included (allegro-api.md 8.2)
MAX_IMAGES = 16
# A host that cannot resolve (RFC 2606 ``.invalid``): Allegro cannot download the image.
UNREACHABLE_SUFFIX = ".invalid"


def on_image_host(url: str) -> bool:
    """Whether a link points at Allegro's image host."""
    host = urlsplit(url).hostname or ""
    return host == IMAGE_HOST or host.endswith(".allegroimg.com")


def _problem(code: str, message: str, path: str, **metadata: str) -> dict[str, Any]:
    entry = error_entry(code, message, path)
    entry["metadata"] = metadata
    return entry


def gallery_errors(value: Any, path: str = "images") -> list[dict[str, Any]]:
    """What Allegro refuses in a list of image links, as its error objects (none: taken), the
    same for ``POST`` and ``PATCH /sale/product-offers`` (the spec's ``images``: an array of
    strings, in both requests): not a list of strings (``VALIDATION_ERROR``), more than 16
    (``GallerySizeException``), a link that is no http(s) URL with a host
    (``VALIDATION_ERROR``), a link Allegro cannot download (``OfferImagesNotAvailableException``:
    plain http off its own image host, or a host that does not resolve); https links elsewhere
    Allegro fetches itself."""
    if not isinstance(value, list) or not all(isinstance(url, str) for url in value):
        return [_problem("VALIDATION_ERROR", "images must be a list of URLs", path)]
    problems = []
    if len(value) > MAX_IMAGES:
        problems.append(
            _problem(
                "GallerySizeException",
                f"The gallery may have at most {MAX_IMAGES} images",
                path,
                gallerySizeLimit=str(MAX_IMAGES),
            )
        )
    for n, url in enumerate(value):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            problems.append(
                _problem("VALIDATION_ERROR", f"Invalid image URL: {url}", f"{path}[{n}]")
            )
        elif parts.hostname.endswith(UNREACHABLE_SUFFIX) or not (
            parts.scheme == "https" or on_image_host(url)
        ):
            problems.append(
                _problem(
                    "OfferImagesNotAvailableException",
                    f"Image {url} could not be downloaded: give an https link or upload it"
                    " through POST /sale/images",
                    f"{path}[{n}]",
                    imageUrl=url,
                )
            )
    return problems


async def upload_image(request: web.Request) -> web.Response:
    """``POST /sale/images``: JSON ``{"url"}`` or the bytes as image/jpeg, png or webp."""
    _, seller = seller_caller(request, scope("sale:offers:write"))
    emulator = context.get(request)
    ctype = request.content_type.lower()
    raw = await request.read()
    if ctype in IMAGE_TYPES:
        if not raw:
            raise ApiError(400, "VALIDATION_ERROR", "The image is empty")
        if len(raw) > MAX_IMAGE_BYTES:
            raise ApiError(413, "ImageTooBigException", "Image is too big")
        digest = hashlib.sha256(raw).hexdigest()[:32]
    elif ctype.endswith("json"):
        try:
            body = json.loads(raw)
        except ValueError:
            raise ApiError(400, "INVALID_JSON", "Malformed JSON body") from None
        url = body.get("url") if isinstance(body, dict) else None
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
            raise ApiError(422, "VALIDATION_ERROR", "url must be an http or https link", path="url")
        digest = hashlib.sha256(url.encode()).hexdigest()[:32]
    else:
        raise ApiError(415, "UnsupportedMediaTypeException", f"Unsupported media type {ctype}")
    location = f"https://{IMAGE_HOST}/original/{seller.id}/{digest}"
    expires = emulator.clock.now() + UPLOAD_LIFETIME
    emulator.uploaded_images[location] = expires.timestamp()
    return json_response({"location": location, "expiresAt": iso(expires)}, status=201)


def routes() -> list[web.RouteDef]:
    """The image upload route."""
    return [web.post("/sale/images", upload_image)]
