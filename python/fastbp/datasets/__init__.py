"""Small datasets shipped with fastbp (no downloads).

``load_digits``: the UCI "Optical Recognition of Handwritten Digits" test set (1797 8x8
images, 10 classes; E. Alpaydin and C. Kaynak, 1998; UCI Machine Learning Repository,
CC BY 4.0), the same data scikit-learn ships as ``load_digits``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Tuple

import numpy as np

__all__ = ["load_digits", "xor"]


def load_digits(dtype: str = "float32") -> Tuple[np.ndarray, np.ndarray]:
    """Digits: X (1797, 64) scaled to [0, 1], y (1797,) int64 labels 0..9."""
    with np.load(Path(__file__).with_name("digits.npz")) as f:
        X = f["images"].astype(dtype) / 16.0
        y = f["target"].astype(np.int64)
    return X.astype(dtype), y


def xor(dtype: str = "float64") -> Tuple[np.ndarray, np.ndarray]:
    """The seed example: XOR with a bias column, X (4, 3), y (4, 1)."""
    X = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=dtype)
    y = np.array([[0], [1], [1], [0]], dtype=dtype)
    return X, y
