"""A saved model must load whatever its header length: 1 in 32 start with the byte a pickle does."""

from napari_attnseg.config import ModelConfig
from napari_attnseg.files.loading import load_model
from napari_attnseg.files.modelfile import new_model, save_model


def test_a_header_length_whose_first_byte_is_0x80_is_not_taken_for_a_pickle(tmp_path):
    model = new_model(ModelConfig(base_width=8, depth=2), name="tiny", seed=0)
    path = tmp_path / "m.model"
    for pad in range(512):  # the header grows by 8 bytes every 8 characters of padding
        model.card["note"] = "x" * pad
        save_model(model, path)
        if path.read_bytes()[:1] == b"\x80":
            break
    else:
        raise AssertionError("no padding gave a header length of 128 mod 256")
    assert load_model(path).card["note"] == "x" * pad
