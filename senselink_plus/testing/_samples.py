"""The sample face photos shipped with the package (for the demo, examples and tests)."""

from __future__ import annotations

from importlib import resources

__all__ = ["sample_image"]


def sample_image(name: str) -> bytes:
    """One of the sample face images shipped with the package (alice, bob, visitor).

    >>> sample_image("alice")[:4]
    b'\\x89PNG'
    """
    return resources.files("senselink_plus").joinpath(f"_samples/{name}.png").read_bytes()
