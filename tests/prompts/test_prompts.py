"""Prompt templates are data: both languages render every template, and a user folder overrides single files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from critiq.data.models import Criterion, Pair, Point
from critiq.errors import CritiqError
from critiq.judge.worker import Worker
from critiq.prompts import BUNDLED, LANGUAGES, Prompts
from tests.fakes import ScriptedClient

PLACEHOLDER = re.compile(r"\$\{?([_a-zA-Z][_a-zA-Z0-9]*)")


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_template_renders_in_both_languages(language: str) -> None:
    names = sorted(p.stem for p in (BUNDLED / "en").glob("*.txt"))
    assert names == sorted(p.stem for p in (BUNDLED / language).glob("*.txt"))
    prompts = Prompts(language)
    for name in names:
        fields = set(PLACEHOLDER.findall((BUNDLED / language / f"{name}.txt").read_text()))
        assert fields == set(PLACEHOLDER.findall((BUNDLED / "en" / f"{name}.txt").read_text())), name
        text = prompts.render(name, **{field: f"<{field}>" for field in fields})
        assert "$" not in text and all(f"<{field}>" in text for field in fields)


def test_chinese_worker_prompt_keeps_the_texts_before_the_criterion() -> None:
    worker = Worker(ScriptedClient(lambda m, s: None), Prompts("zh"))  # type: ignore[arg-type]
    pair = Pair(id="1", a="第一段文本", b="第二段文本", preferred="a")
    user = worker.messages(pair, Criterion(name="clarity", description="表达清晰"), swapped=False)[1]["content"]
    assert user.index("第一段文本") < user.index("第二段文本") < user.index("表达清晰")
    assert "标准" in user


def test_user_folder_overrides_one_template(tmp_path: Path) -> None:
    (tmp_path / "judge_point.txt").write_text("Rate this: $text -- $name -- $description")
    prompts = Prompts("en", tmp_path)
    worker = Worker(ScriptedClient(lambda m, s: None), prompts)  # type: ignore[arg-type]
    user = worker.messages(Point(id="p", text="hello"), Criterion(name="n", description="d"), swapped=False)
    assert user[1]["content"].startswith("Rate this: <<<TEXT-")
    assert prompts.render("judge_system") == Prompts("en").render("judge_system")  # the rest stay bundled


def test_bad_prompt_settings_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(CritiqError, match="language='fr'"):
        Prompts("fr")
    with pytest.raises(CritiqError, match="not a directory"):
        Prompts("en", tmp_path / "missing")
    (tmp_path / "judge_system.txt").write_text("needs $nothing_given")
    with pytest.raises(CritiqError, match="needs a value for 'nothing_given'"):
        Prompts("en", tmp_path).render("judge_system")


def test_digest_covers_the_templates_in_use(tmp_path: Path) -> None:
    assert Prompts("en").digest() == Prompts("en").digest() != Prompts("zh").digest()
    (tmp_path / "judge_pair.txt").write_text("my own $text_a $text_b $name $description")
    assert Prompts("en", tmp_path).digest() != Prompts("en").digest()  # a user override changes the run identity
    (tmp_path / "unrelated.txt").write_text("not a template critiq uses")
    assert Prompts("en", tmp_path).digest() == Prompts("en", tmp_path / ".." / tmp_path.name).digest()


def test_fragments_keep_their_leading_space() -> None:
    assert Prompts("en").fragment("evidence_note", note="tidy", order="").startswith(" The expert's own reason")
    assert Prompts("en").render("evidence_note", note="tidy", order="").startswith("The expert's")
