import pytest
import torch

from napari_attnseg.config import ModelConfig
from napari_attnseg.model import ATTENTION_REGISTRY, build_network, count_parameters


@pytest.mark.parametrize("attention", sorted(ATTENTION_REGISTRY))
@pytest.mark.parametrize("size", [(37, 53), (8, 8), (5, 130)])
def test_output_matches_odd_input_sizes(attention, size):
    network = build_network(ModelConfig(base_width=4, depth=3, attention=attention)).eval()
    with torch.no_grad():
        logits = network(torch.randn(2, 1, *size))
    assert logits.shape == (2, 3, *size)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("attention", sorted(ATTENTION_REGISTRY))
def test_backward_reaches_every_parameter(attention):
    network = build_network(ModelConfig(base_width=4, depth=3, attention=attention, in_channels=2))
    network(torch.randn(2, 2, 24, 24)).sum().backward()
    without_grad = [name for name, p in network.named_parameters() if p.grad is None]
    assert without_grad == []


def test_semantic_task_has_n_outputs():
    network = build_network(ModelConfig(task="semantic", n_classes=5, base_width=4, depth=2))
    assert network(torch.randn(1, 1, 16, 16)).shape == (1, 5, 16, 16)


def test_parameter_counts_do_not_drift():
    # Regression guard: a change here changes saved models' shapes.
    counts = {name: count_parameters(build_network(ModelConfig(attention=name))) for name in ATTENTION_REGISTRY}
    assert counts == {"gate": 504326, "se": 493663, "nonlocal": 515571, "none": 482483}


def test_gate_returns_one_map_per_skip_in_unit_range():
    network = build_network(ModelConfig(base_width=4, depth=4)).eval()
    with torch.no_grad():
        logits, maps = network(torch.randn(1, 1, 45, 30), return_attention=True)
    assert len(maps) == 3
    for alpha in maps:
        assert alpha.shape == (1, 1, 45, 30)
        assert float(alpha.min()) >= 0.0 and float(alpha.max()) <= 1.0


def test_gate_maps_stay_float32_under_bf16_autocast():
    # bf16 coefficients made the upsampling and the product with the skip several times slower
    network = build_network(ModelConfig(base_width=4, depth=3)).eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        logits, maps = network(torch.randn(1, 1, 32, 32), return_attention=True)
    assert logits.dtype == torch.bfloat16  # autocast is on: the convolutions did run in bf16
    assert [alpha.dtype for alpha in maps] == [torch.float32, torch.float32]


def test_gates_change_the_output():
    torch.manual_seed(0)
    network = build_network(ModelConfig(base_width=4, depth=3)).eval()
    image = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        before = network(image)
        for gate in network.skip_attention:
            gate.psi.bias.fill_(-20.0)  # gates closed: skips contribute (almost) nothing
        after = network(image)
    assert not torch.allclose(before, after, atol=1e-4)


@pytest.mark.parametrize("attention", ["none", "se", "nonlocal"])
def test_ungated_types_return_no_maps(attention):
    network = build_network(ModelConfig(base_width=4, depth=3, attention=attention)).eval()
    _, maps = network(torch.randn(1, 1, 16, 16), return_attention=True)
    assert maps == []
