import pytest

from napari_attnseg.config import InferConfig, ModelConfig, TrainConfig
from napari_attnseg.errors import ConfigError


@pytest.mark.parametrize("cls", [ModelConfig, InferConfig, TrainConfig])
def test_round_trip_through_dict(cls):
    config = cls()
    assert cls.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    "cls, changes, fragment",
    [
        (ModelConfig, {"attention": "magic"}, "attention"),
        (ModelConfig, {"task": "instance", "n_classes": 4}, "exactly 3"),
        (ModelConfig, {"depth": 1}, "depth"),
        (ModelConfig, {"norm_percentiles": (99.0, 1.0)}, "norm_percentiles"),
        (InferConfig, {"tile_size": 8}, "tile_size"),
        (InferConfig, {"overlap": 200, "tile_size": 256}, "overlap"),
        (InferConfig, {"device": "tpu"}, "device"),
        (InferConfig, {"prob_threshold": 1.5}, "prob_threshold"),
        (TrainConfig, {"max_epochs": -1}, "max_epochs"),
        (TrainConfig, {"max_seconds": 0}, "max_seconds"),
        (TrainConfig, {"val_fraction": 1.0}, "val_fraction"),
    ],
)
def test_bad_values_name_the_option(cls, changes, fragment):
    with pytest.raises(ConfigError, match=fragment):
        cls(**changes)


def test_unknown_keys_are_refused():
    with pytest.raises(ConfigError, match="no option"):
        ModelConfig.from_dict({"depth": 3, "wings": 2})


def test_configs_are_frozen():
    with pytest.raises(AttributeError):
        ModelConfig().depth = 5  # type: ignore[misc]


def test_multiple_follows_depth():
    assert ModelConfig(depth=4).multiple == 8
