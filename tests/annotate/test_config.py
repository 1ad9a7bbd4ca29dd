"""AnnotateConfig: the one set of annotation settings, from which `critiq annotate`'s flags and the Ray job come."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from pydantic import ValidationError

from critiq.annotate.config import AnnotateConfig
from critiq.annotate.ray_job import RayAnnotateConfig
from critiq.cli.annotate import AnnotateOptions
from critiq.cli.app import app
from critiq.errors import CritiqError
from critiq.llm.session import ModelSettings


def options_of(name: str) -> dict[str, Any]:
    """The options of command ``name`` as click (typer's) builds them, by parameter name."""
    found = typer.main.get_command(app).commands[name]  # type: ignore[attr-defined]
    return {p.name: p for p in found.params if p.param_type_name == "option"}


def test_every_field_is_a_flag_of_annotate_with_the_config_s_default_and_help() -> None:
    options = options_of("annotate")
    for name, field in AnnotateConfig.model_fields.items():
        assert name in options, name
        assert options[name].default == field.get_default(), name
        assert options[name].help == field.description, name
    assert AnnotateConfig().length_matched is True  # as the flag has always said
    assert options["length_matched"].default is True


def test_judge_differs_only_in_not_stopping_early() -> None:
    options = options_of("judge")
    assert options["early_stop"].default is False
    shared = set(AnnotateConfig.model_fields) & set(options)
    assert shared >= {"margin", "swap", "judge", "max_chars", "language", "seed", "early_stop"}
    assert all(options[n].default == AnnotateConfig.model_fields[n].get_default() for n in shared - {"early_stop"})


def test_a_bad_choice_is_one_line_naming_its_flag() -> None:
    with pytest.raises(CritiqError, match=r"^--swap 'sideways': use random, both or none$"):
        AnnotateOptions(values={"swap": "sideways"}).config()
    with pytest.raises(CritiqError, match=r"^--judge 'combined': use per-criterion, all-in-one or overall$"):
        AnnotateOptions(values={"judge": "combined"}).config()
    assert AnnotateOptions(values={"engine": "ray", "judge": "all-in-one"}).config().engine == "ray"


def test_only_per_criterion_judging_stops_early() -> None:
    assert AnnotateConfig().stops_early
    assert not AnnotateConfig(judge="all-in-one").stops_early
    assert not AnnotateConfig(judge="overall").stops_early
    assert not AnnotateConfig(early_stop=False).stops_early


def test_the_ray_job_reuses_the_config_and_the_model_settings() -> None:
    settings = ModelSettings(model="openai/m", api_base="http://127.0.0.1:9/v1", cache_dir=None, max_requests=10)
    job = RayAnnotateConfig(settings=settings, annotate=AnnotateConfig(swap="both", margin=1))
    shipped = RayAnnotateConfig.model_validate(job.model_dump(mode="json"))  # what each Ray worker rebuilds
    assert shipped == job and shipped.annotate.swap == "both" and shipped.settings.max_requests == 10
    with pytest.raises(ValidationError, match="every Ray worker talks to it"):
        RayAnnotateConfig(settings=ModelSettings(model="openai/m", cache_dir=None))
