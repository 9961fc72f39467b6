import numpy as np

from napari_attnseg.inference.uncertainty import most_uncertain_window, normalized_entropy


def test_entropy_is_zero_when_sure_and_one_when_uniform():
    sure = np.zeros((3, 4, 4), dtype=np.float32)
    sure[1] = 1.0
    assert normalized_entropy(sure).max() < 1e-4
    uniform = np.full((3, 4, 4), 1 / 3, dtype=np.float32)
    np.testing.assert_allclose(normalized_entropy(uniform), 1.0, rtol=1e-5)


def test_suggestion_skips_checked_pixels():
    uncertainty = np.zeros((100, 100), dtype=np.float32)
    uncertainty[10:20, 10:20] = 1.0  # most uncertain, but checked
    uncertainty[70:80, 60:70] = 0.5
    checked = np.zeros_like(uncertainty, dtype=bool)
    checked[:50, :50] = True
    row, col = most_uncertain_window(uncertainty, checked, window=10)
    assert 70 <= row < 80 and 60 <= col < 70
    assert most_uncertain_window(uncertainty, np.ones_like(checked), window=10) is None
