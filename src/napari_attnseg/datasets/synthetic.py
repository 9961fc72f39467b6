"""A generator of synthetic fluorescence-nuclei images with exact instance labels.

The bundled default model is trained only on these images, so anyone can reproduce it without data.
Each image draws its own scale, density, shapes, brightness spread, texture, blur and camera noise, so
the model sees isolated and touching, bright and dim, crisp and blurred nuclei.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def synthetic_nuclei(
    shape: tuple[int, int] = (256, 256),
    seed: int | np.random.Generator | None = None,
    radius_range: tuple[float, float] = (4.0, 22.0),
) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic nuclei image (uint16) and its instance labels (int32)."""
    rng = np.random.default_rng(seed)
    height, width = shape
    mean_radius = float(np.exp(rng.uniform(np.log(radius_range[0]), np.log(radius_range[1]))))
    fill = rng.uniform(0.08, 0.5)
    n_objects = max(1, int(fill * height * width / (np.pi * mean_radius**2)))
    cluster_share = rng.uniform(0.0, 0.7)

    ellipses = _place_ellipses(rng, shape, n_objects, mean_radius, cluster_share)
    labels, signal = _render(rng, shape, ellipses)
    image = _camera(rng, signal, mean_radius)
    return image, labels


def _place_ellipses(rng, shape, n_objects, mean_radius, cluster_share):
    height, width = shape
    ellipses: list[tuple[float, float, float, float, float]] = []
    for _ in range(n_objects * 3):
        if len(ellipses) >= n_objects:
            break
        radius = mean_radius * float(np.exp(rng.normal(0.0, 0.22)))
        aspect = float(rng.uniform(1.0, 1.7))
        major, minor = radius * np.sqrt(aspect), radius / np.sqrt(aspect)
        if ellipses and rng.random() < cluster_share:
            # Touching: put the new nucleus against an existing one.
            cy, cx, other_major, other_minor, _ = ellipses[int(rng.integers(len(ellipses)))]
            angle = rng.uniform(0, 2 * np.pi)
            distance = 0.9 * (np.sqrt(other_major * other_minor) + np.sqrt(major * minor))
            centre_y, centre_x = cy + distance * np.sin(angle), cx + distance * np.cos(angle)
        else:
            centre_y, centre_x = rng.uniform(-radius, height + radius), rng.uniform(-radius, width + radius)
        size = np.sqrt(major * minor)
        too_close = any(
            np.hypot(centre_y - y, centre_x - x) < 0.75 * (size + np.sqrt(a * b))
            for y, x, a, b, _ in ellipses
        )
        if not too_close:
            ellipses.append((centre_y, centre_x, major, minor, float(rng.uniform(0, np.pi))))
    return ellipses


def _render(rng, shape, ellipses):
    height, width = shape
    labels = np.zeros(shape, dtype=np.int32)
    nearest = np.full(shape, np.inf, dtype=np.float32)
    signal = np.zeros(shape, dtype=np.float32)
    dim_share = rng.uniform(0.0, 0.4)
    texture_strength = rng.uniform(0.0, 0.5)
    for index, (cy, cx, major, minor, theta) in enumerate(ellipses, start=1):
        if rng.random() < 0.04:
            major, minor = 0.6 * major, 0.6 * minor
        reach = int(np.ceil(major * 1.4)) + 3
        y0, y1 = max(int(cy) - reach, 0), min(int(cy) + reach + 1, height)
        x0, x1 = max(int(cx) - reach, 0), min(int(cx) + reach + 1, width)
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        dy, dx = yy - cy, xx - cx
        u = dx * np.cos(theta) + dy * np.sin(theta)
        v = -dx * np.sin(theta) + dy * np.cos(theta)
        angle = np.arctan2(v, u)
        wobble = 1.0 + sum(
            rng.normal(0, 0.05) * np.cos(k * angle + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 5)
        )
        distance = np.sqrt((u / major) ** 2 + (v / minor) ** 2) / wobble
        inside = distance < 1.0
        window_nearest = nearest[y0:y1, x0:x1]
        owned = inside & (distance < window_nearest)
        labels[y0:y1, x0:x1][owned] = index
        window_nearest[owned] = distance[owned]

        brightness = rng.uniform(0.08, 0.35) if rng.random() < dim_share else rng.uniform(0.5, 1.0)
        if rng.random() < 0.04:  # condensed (mitotic or apoptotic) nuclei glow far brighter
            brightness *= rng.uniform(3.0, 8.0)
        # The label edge sits at half the nucleus' intensity, as a human annotator would draw it.
        edge_width = max(0.15 * np.sqrt(major * minor), 1.0) / np.sqrt(major * minor)
        profile = np.clip(0.5 + (1.0 - distance) / edge_width, 0.0, 1.0)
        shading = 1.0 + rng.uniform(-0.3, 0.3) * (1.0 - distance**2)  # dome or rim-bright
        texture = 1.0 + texture_strength * _smooth_noise(rng, profile.shape, sigma=rng.uniform(1.0, 3.0))
        np.maximum(signal[y0:y1, x0:x1], brightness * profile * shading * texture,
                   out=signal[y0:y1, x0:x1])
    return labels, np.clip(signal, 0.0, None)


def _smooth_noise(rng, shape, sigma):
    noise = ndi.gaussian_filter(rng.normal(size=shape).astype(np.float32), sigma)
    return noise / (noise.std() + 1e-6)


def _camera(rng, signal, mean_radius):
    height, width = signal.shape
    # Unlabelled out-of-focus haze and a slow illumination gradient.
    haze = ndi.gaussian_filter(rng.random(signal.shape).astype(np.float32) ** 8, mean_radius * 2)
    haze *= rng.uniform(0.0, 0.15) / (haze.max() + 1e-6)
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    gradient = rng.uniform(0.0, 0.08) * (rng.normal() * yy + rng.normal() * xx)
    blurred = ndi.gaussian_filter(signal, rng.uniform(0.3, min(3.0, 0.3 * mean_radius)))
    # Out-of-focus light from the nuclei themselves: a wide glow around (and between) them that
    # belongs to no object.
    glow = ndi.gaussian_filter(signal, rng.uniform(0.3, 0.9) * mean_radius) * rng.uniform(0.0, 0.4)
    scene = blurred * (1.0 + rng.uniform(-0.3, 0.3) * (yy - 0.5)) + glow + haze + np.abs(gradient)
    photons = rng.choice([30.0, 100.0, 400.0, 2000.0]) * float(np.exp(rng.normal(0, 0.3)))
    counts = rng.poisson(np.clip(scene, 0, None) * photons).astype(np.float32)
    offset, read_noise = rng.uniform(50, 500), rng.uniform(0.5, 6.0)
    image = counts + offset + rng.normal(0.0, read_noise, signal.shape)
    return np.clip(image, 0, 65535).astype(np.uint16)
