"""Ollama's options: types, defaults, merge order and what reaches the engine."""

from __future__ import annotations

import math

import pytest

from pasture import options as opts
from pasture.errors import BadRequestError
from pasture.runner.llama_server import sampling_fields


def test_defaults_are_ollamas() -> None:
    merged = opts.merge()
    assert merged["temperature"] == 0.8 and merged["top_k"] == 40 and merged["top_p"] == 0.9
    assert merged["min_p"] == 0.0 and merged["repeat_penalty"] == 1.0
    assert merged["repeat_last_n"] == 64 and merged["seed"] == -1 and merged["num_predict"] == -1


def test_request_options_override_modelfile_parameters_which_override_defaults() -> None:
    model = {"temperature": 0.2, "top_k": 10}
    request = opts.validate({"temperature": 1.5})
    merged = opts.merge(model, request)
    assert merged["temperature"] == 1.5 and merged["top_k"] == 10 and merged["top_p"] == 0.9


@pytest.mark.parametrize(("name", "value", "kind"), [
    ("temperature", "hot", "float"), ("num_predict", "10", "integer"),
    ("stop", 5, "array of strings"), ("use_mmap", 1, "boolean"), ("top_k", True, "integer"),
])
def test_wrong_types_name_the_option(name: str, value: object, kind: str) -> None:
    with pytest.raises(BadRequestError, match=f'option "{name}" must be of type {kind}'):
        opts.validate({name: value})


def test_floats_for_integers_are_truncated_and_a_string_stop_becomes_a_list() -> None:
    checked = opts.validate({"num_predict": 12.9, "stop": "END", "temperature": 1})
    assert checked == {"num_predict": 12, "stop": ["END"], "temperature": 1.0}


def test_non_finite_numbers_are_rejected() -> None:
    with pytest.raises(BadRequestError, match="finite"):
        opts.validate({"temperature": math.nan})


def test_unknown_and_retired_options_are_dropped() -> None:
    assert opts.validate({"no_such_option": 1, "mirostat": 2, "seed": 3}) == {"seed": 3}


def test_modelfile_parameters_are_typed_and_stop_accumulates() -> None:
    params: dict = {}
    for name, raw in [("temperature", "0.7"), ("stop", "<|im_end|>"), ("STOP", "User:"),
                      ("num_ctx", "8192"), ("use_mmap", "false"), ("mirostat", "1")]:
        opts.add_parameter(params, name, raw)
    assert params == {"temperature": 0.7, "stop": ["<|im_end|>", "User:"], "num_ctx": 8192,
                      "use_mmap": False}


@pytest.mark.parametrize(("name", "raw"), [("temperature", "warm"), ("num_ctx", "1.5"),
                                           ("use_mmap", "maybe"), ("top_p", "nan")])
def test_bad_parameter_values_are_rejected(name: str, raw: str) -> None:
    with pytest.raises(BadRequestError, match=name):
        opts.parse_parameter(name, raw)


def test_unknown_parameter_is_rejected() -> None:
    with pytest.raises(BadRequestError, match="unknown parameter"):
        opts.parse_parameter("flavour", "1")


def test_engine_fields_are_explicit_and_num_predict_is_capped() -> None:
    fields = sampling_fields(opts.merge({"stop": ["x"]}), num_ctx=2048)
    assert fields["min_p"] == 0.0 and fields["top_p"] == 0.9 and fields["temperature"] == 0.8
    assert fields["n_predict"] == 20480 and fields["stop"] == ["x"]
    assert "seed" not in fields  # -1: the engine picks a random seed
    assert sampling_fields(opts.merge({"seed": 7, "num_predict": 5}), 2048)["seed"] == 7


@pytest.mark.parametrize(("asked", "sent"), [(-1, 20480), (-2, 20480), (0, 0),
                                             (20480, 20480), (20481, 20480), (1 << 30, 20480)])
def test_num_predict_never_exceeds_ten_contexts(asked: int, sent: int) -> None:
    assert sampling_fields(opts.merge({"num_predict": asked}), 2048)["n_predict"] == sent


@pytest.mark.parametrize(("name", "value", "message"), [
    ("num_ctx", 0, "between 1 and 4194304"), ("num_ctx", 1 << 30, "between 1 and 4194304"),
    ("num_batch", 0, "between 1 and 65536"), ("num_keep", -5, "between -1 and 2147483647"),
    ("num_predict", -3, "between -2 and 2147483647"),
    ("top_k", 1 << 31, "between 0 and 2147483647"), ("top_p", 1.5, "between 0 and 1"),
    ("temperature", -0.1, "at least 0"), ("num_gpu", -2, "at least -1"),
    ("num_thread", 100_000, "between 0 and 1024"),
])
def test_out_of_range_options_are_rejected_naming_the_bounds(name: str, value: float,
                                                             message: str) -> None:
    with pytest.raises(BadRequestError, match=f'option "{name}" must be {message}'):
        opts.validate({name: value})


def test_bounds_apply_to_modelfile_parameters_too() -> None:
    with pytest.raises(BadRequestError, match="between 0 and 1"):
        opts.parse_parameter("top_p", "2")
    assert opts.parse_parameter("num_predict", "-2") == -2


def test_every_sampling_option_reaches_the_engine() -> None:
    given = {"stop": ["s"], "seed": 7}  # the defaults of both send nothing of their own
    options = opts.merge(given)
    assert set(options) >= set(opts.SAMPLING)
    assert len(sampling_fields(options, 2048)) == len(opts.SAMPLING)


def test_lora_entries_are_checked_and_reach_the_engine_as_one_scale_per_adapter() -> None:
    from pasture.runner.base import CompletionRequest
    from pasture.runner.llama_server import completion_payload

    checked = opts.validate({"lora": [{"id": 1, "scale": 2}, {"name": "sql", "scale": 0.5}]})
    assert checked == {"lora": [{"id": 1, "scale": 2.0}, {"name": "sql", "scale": 0.5}]}
    for bad in ({"id": 0, "scale": 1}, [{"scale": 1}], [{"id": -1, "scale": 1}],
                [{"id": True, "scale": 1}], [{"name": 3, "scale": 1}],
                [{"id": 0, "scale": math.inf}], [{"id": 0, "scale": 1, "alpha": 2}]):
        with pytest.raises(BadRequestError, match='option "lora"'):
            opts.validate({"lora": bad})
    with pytest.raises(BadRequestError, match='unknown parameter "lora"'):
        opts.parse_parameter("lora", "1")  # per request only, not a Modelfile PARAMETER

    def payload(lora: tuple[float, ...] | None) -> dict[str, object]:
        return completion_payload(CompletionRequest("hi", opts.merge(), lora=lora), 64, None, ())

    assert "lora" not in payload(None)
    assert payload((0.0, 0.5))["lora"] == [{"id": 0, "scale": 0.0}, {"id": 1, "scale": 0.5}]
