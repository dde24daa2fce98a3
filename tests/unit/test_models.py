import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from distill_core.data import get_info
from distill_core.models import (
    build_model,
    count_parameters,
    inference_seconds_per_example,
    parse_spec,
    predict_logits,
)

MNIST = get_info("mnist5k")
CIFAR = get_info("cifar10")


@pytest.mark.parametrize("spec", ["cnn", "cnn-small", "mlp:800-800", "mlp:30"])
@pytest.mark.parametrize("info", [MNIST, CIFAR], ids=["mnist", "cifar"])
def test_every_architecture_maps_images_to_class_logits(spec, info):
    model = build_model(spec, info)
    logits = model(torch.rand(3, *info.input_shape))
    assert logits.shape == (3, info.num_classes)


def test_mlp_parameter_count_matches_hand_count():
    # 784*800+800 + 800*800+800 + 800*10+10 (the Normalize buffers are not parameters)
    assert count_parameters(build_model("mlp:800-800", MNIST)) == 784 * 800 + 800 + 800 * 800 + 800 + 8010


def test_spec_round_trips_and_is_case_insensitive():
    assert str(parse_spec(" MLP:800-800 ")) == "mlp:800-800"
    assert parse_spec("mlp:30").hidden == (30,)


@pytest.mark.parametrize(
    "spec", ["", "mlp", "mlp:", "mlp:0", "mlp:10-", "mlp:-5", "resnet", "mlp:99999", "mlp:1-1-1-1-1-1-1-1-1"]
)
def test_bad_specs_are_refused_with_the_valid_forms(spec):
    with pytest.raises(ValueError, match="mlp:H1-H2|out of range"):
        parse_spec(spec)


@given(st.text(max_size=30))
def test_spec_parser_never_crashes_on_arbitrary_text(text):
    try:
        spec = parse_spec(text)
    except ValueError:
        return
    assert str(parse_spec(str(spec))) == str(spec)


def test_predict_logits_is_eval_mode_and_batched():
    torch.manual_seed(0)
    model = build_model("cnn", MNIST)  # has dropout: eval mode must make the output deterministic
    images = torch.rand(7, 1, 28, 28)
    first = predict_logits(model, images, batch_size=3)
    second = predict_logits(model, images, batch_size=7)
    assert torch.allclose(first, second, atol=1e-6)
    assert model.training  # restored


def test_inference_time_is_positive_and_small():
    seconds = inference_seconds_per_example(build_model("mlp:30", MNIST), MNIST.input_shape, repeats=3)
    assert 0 < seconds < 0.01
