"""The mapping from validation errors to the real API's wording."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from assistd.assistants.protocol import CreateAssistantRequest
from assistd.errors import param_path, validation_error_to_api_error
from assistd.threads.protocol import CreateThreadRequest


def first_error(model: Any, body: Any) -> tuple[str, str | None, str | None]:
    with pytest.raises(ValidationError) as exc:
        model.model_validate(body)
    err = validation_error_to_api_error(exc.value.errors(), body)
    return err.message, err.param, err.code


class TestParamPath:
    def test_union_tags_are_not_part_of_the_path(self) -> None:
        body = {"tools": [{"type": "function", "function": {"name": "x y"}}]}
        assert param_path(("tools", 0, "function", "function", "name"), body) == "tools[0].function.name"

    def test_missing_leaf_is_kept(self) -> None:
        assert param_path(("messages", 1, "role"), {"messages": [{}, {"content": "x"}]}) == "messages[1].role"


class TestMessages:
    def test_unknown_parameter_wins_over_other_errors(self) -> None:
        assert first_error(CreateAssistantRequest, {"model": 1, "x": 2}) == (
            "Unknown parameter: 'x'.",
            "x",
            "unknown_parameter",
        )

    def test_nested_missing(self) -> None:
        msg, param, code = first_error(CreateThreadRequest, {"messages": [{"role": "user"}]})
        assert (msg, param, code) == (
            "Missing required parameter: 'messages[0].content'.",
            "messages[0].content",
            "missing_required_parameter",
        )

    def test_array_too_long(self) -> None:
        msg, param, code = first_error(
            CreateAssistantRequest, {"model": "m", "tools": [{"type": "code_interpreter"}] * 130}
        )
        assert (
            msg
            == "Invalid 'tools': array too long. Expected an array with maximum length 128, but got an array with length 130 instead."
        )
        assert (param, code) == ("tools", "array_above_max_length")

    def test_range(self) -> None:
        msg, param, code = first_error(CreateAssistantRequest, {"model": "m", "temperature": 3})
        assert msg == "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got 3 instead."
        assert (param, code) == ("temperature", "decimal_above_max_value")

    def test_type(self) -> None:
        msg, param, code = first_error(CreateAssistantRequest, {"model": "m", "name": ["x"]})
        assert msg == "Invalid type for 'name': expected a string, but got an array instead."
        assert (param, code) == ("name", "invalid_type")

    def test_bool_is_not_a_number(self) -> None:
        _, param, code = first_error(CreateAssistantRequest, {"model": "m", "temperature": True})
        assert (param, code) == ("temperature", "invalid_type")
