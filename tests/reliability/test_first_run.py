"""The first real run (issue 23): a missing key, a provider that refuses the credentials with a 500, an exported key
and no --model, `kb add` of what `kb validate` rejects, and the records a no-op resume and `judge` leave."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from critiq.llm.local import LOCAL_MODEL
from tests.fakes.stub_server import StubServer
from tests.paths import REPO
from tests.reliability.cli_run import (
    assert_ok,
    code_pairs,
    critiq,
    env_for,
    error_lines,
    judge_args,
    mine_args,
    stub_args,
    write_jsonl,
)
from tests.reliability.provider import KEY, Provider, running_provider
from tests.test_docs_commands import shell_commands

pytestmark = pytest.mark.timeout(300)

NO_KEY_LINE = "error: OPENAI_API_KEY is not set: export it, or pass --api-key-env NAME"


@pytest.fixture()
def provider() -> Iterator[Provider]:
    with running_provider() as running:
        yield running


def _hosted(provider: Provider, **keys: str) -> dict[str, str]:
    """No provider key but those given; litellm's OpenAI requests go to the local provider (never the internet)."""
    return env_for(OPENAI_BASE_URL=provider.api_base, **keys)


COMMANDS: dict[str, Any] = {
    "mine": lambda w: mine_args(w, "pairs.jsonl", "--model", "gpt-4o", "--cache-dir", w / "cache"),
    "judge": lambda w: judge_args(w, "pairs.jsonl", "--model", "gpt-4o", "--cache-dir", w / "cache"),
    "demo": lambda w: ["demo", "--out", w / "run", "--model", "gpt-4o", "--cache-dir", w / "cache"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_no_key_is_one_line_before_any_request(provider: Provider, work: Path, command: str) -> None:
    """A hosted model with its key unset: one line naming the variable, nothing sent, nothing written."""
    before = sorted(p.name for p in work.iterdir())
    result = critiq(COMMANDS[command](work), work, env=_hosted(provider), timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(NO_KEY_LINE), result.stderr  # no retry noise either
    assert provider.hits == 0
    assert sorted(p.name for p in work.iterdir()) == before  # no run directory, no cache, no output


def test_no_key_in_python_names_the_parameter(monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's Python example without a key: the same stop, naming the parameter instead of the flag."""
    from critiq.errors import CritiqError
    from critiq.llm.session import ModelSettings, open_clients

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(CritiqError) as error, open_clients(ModelSettings(model="gpt-4o", cache_dir=None)):
        pass
    assert str(error.value).startswith("OPENAI_API_KEY is not set: export it, or pass api_key_env=NAME")


def test_the_same_command_runs_once_the_key_is_exported(provider: Provider, work: Path) -> None:
    args = COMMANDS["mine"](work)
    assert critiq(args, work, env=_hosted(provider)).returncode == 2
    assert_ok(critiq(args, work, env=_hosted(provider, OPENAI_API_KEY=KEY)))
    assert provider.state.requests and provider.state.refused == []
    assert json.loads((work / "run" / "criteria.json").read_text())["criteria"]


# a key refused with a 500: OpenAI's body shape, the words or the error type/code saying what is wrong
CREDENTIAL_REFUSALS = {
    "missing_credentials_500": (500, "Missing credentials. Please pass an `api_key`, or set the OPENAI_API_KEY "
                                "environment variable.", "server_error", None),
    "authentication_error_type_500": (500, "Request not allowed.", "authentication_error", None),
    "invalid_api_key_code_500": (500, "The request was not allowed.", "invalid_request_error", "invalid_api_key"),
    "permission_denied_403": (403, "You are not allowed to sample from this model.", "permission_error", None),
}  # fmt: skip
PATHS = {
    "litellm": ["--model", "gpt-4o"],  # a provider's model behind --api-base: litellm maps the request and errors
    "direct": ["--model", "openai/stub"],  # a self-hosted name: the direct transport
}


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("refusal", list(CREDENTIAL_REFUSALS))
def test_refused_credentials_stop_at_the_first_answer_whatever_the_status(
    provider: Provider, work: Path, refusal: str, path: str
) -> None:
    status, message, kind, code = CREDENTIAL_REFUSALS[refusal]
    provider.refusal = (status, {"error": {"message": message, "type": kind, "param": None, "code": code}})
    args = mine_args(work, "pairs.jsonl", *PATHS[path], "--api-base", provider.api_base, "--concurrency", 1)
    args += ["--api-key-env", "CRITIQ_FIRST_RUN_KEY", "--cache-dir", work / "cache"]
    env = env_for(CRITIQ_FIRST_RUN_KEY=KEY)
    stopped = critiq(args, work, env=env)
    assert stopped.returncode == 2, stopped.stderr[-2000:]
    lines = error_lines(stopped.stderr)
    assert len(lines) == 1 and "authentication failed" in lines[0] and message.split(".")[0] in lines[0], lines
    assert "retrying" not in stopped.stderr and "no initial criteria" not in stopped.stderr
    assert provider.hits == 1  # the first answer stopped it: one request, never retried
    if refusal != "missing_credentials_500":
        return
    # the stopped start blocks nothing: the same command, without --resume, runs once the provider takes the key
    provider.refusal = None
    assert_ok(critiq(args, work, env=env))
    assert (work / "run" / "criteria.json").exists()


def test_exported_key_and_no_model_is_the_embedded_model(work: Path) -> None:
    """OPENAI_API_KEY in the environment never chooses a hosted (billed) model: the dry run shows the embedded one."""
    env = env_for(OPENAI_API_KEY="sk-would-bill-you", ANTHROPIC_API_KEY="sk-ant-would-bill-you")
    for args in (
        ["mine", "pairs.jsonl", "--out", work / "run", "--dry-run"],
        ["annotate", "pairs.jsonl", "--criteria", "criteria.json", "--out", work / "out.jsonl", "--dry-run"],
    ):
        result = critiq(args, work, env=env)
        assert_ok(result)
        shown = result.stdout + result.stderr  # the console writes to stderr
        assert LOCAL_MODEL in shown and "nothing was sent" in shown, shown
        assert "gpt" not in shown and "claude" not in shown
    assert not (work / "run").exists()


def test_role_config_ignores_exported_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    from critiq.llm.session import ModelSettings, role_config

    monkeypatch.setenv("OPENAI_API_KEY", "sk-would-bill-you")
    assert role_config(ModelSettings(), "manager").model == LOCAL_MODEL
    assert role_config(ModelSettings(), "worker").model == LOCAL_MODEL
    assert role_config(ModelSettings(manager_model="gpt-4o"), "worker").model == LOCAL_MODEL  # only the named role
    assert role_config(ModelSettings(manager_model="gpt-4o"), "manager").model == "gpt-4o"


KB_ADD = ["kb", "add", "--name", "house_tone", "--domains", "writing,web", "--kind", "pairwise", "--source-title",
          "Our style guide", "--source-year", "2024", "--source-url", "https://example.org/style"]  # fmt: skip


def test_kb_add_refuses_what_kb_validate_rejects(work: Path) -> None:
    short = "Whether the text ..."  # the description docs/knowledge_base.md used to show: 4 words
    added = critiq([*KB_ADD, "--description", short, "--file", "mine.yaml"], work)
    assert added.returncode == 2
    lines = error_lines(added.stderr)
    assert len(lines) == 1 and "description too short to judge by (4 words)" in lines[0], added.stderr
    assert not (work / "mine.yaml").exists()  # nothing half-written
    # the same entry written by hand: `kb validate` finds exactly that problem
    entry = {"name": "house_tone", "description": short, "domains": ["writing", "web"], "kind": "pairwise",
             "source": {"title": "Our style guide", "year": 2024, "url": "https://example.org/style"}}  # fmt: skip
    (work / "hand.jsonl").write_text(json.dumps(entry) + "\n")
    validated = critiq(["kb", "validate", "--kb", "hand.jsonl"], work)
    assert validated.returncode == 1
    problem = next(line for line in validated.stdout.splitlines() if line.startswith("problem:"))
    assert problem.split("criterion 'house_tone': ")[1] == lines[0].split("criterion 'house_tone': ")[1]


def test_kb_add_of_the_documented_example_passes_kb_validate(work: Path) -> None:
    command = next(c for c in shell_commands(REPO / "docs" / "knowledge_base.md") if c.startswith("critiq kb add --"))
    assert_ok(critiq(shlex.split(command)[1:], work))  # as written
    assert_ok(critiq(["kb", "validate", "--kb", "my_criteria.yaml"], work))


def _annotation(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def test_a_no_op_resume_keeps_the_record_and_judge_writes_its_own(stub_server: StubServer, work: Path) -> None:
    model = stub_args(stub_server, work / "cache")
    args = ["annotate", "pairs.jsonl", "--criteria", "criteria.json", "--out", work / "labeled.jsonl", *model]
    stub_server.script([])
    assert_ok(critiq(args, work))
    record = work / "annotate.json"
    first = record.read_bytes()
    assert _annotation(record)["summary"]["written"] == 6 and _annotation(record)["usage"]["requests"] > 0
    assert _annotation(record)["uses_local_model"] is False  # a named server, not the embedded model

    resumed = critiq([*args, "--resume"], work)
    assert_ok(resumed)
    assert "skipped 6 already done" in resumed.stderr
    assert record.read_bytes() == first  # the record still describes the run that did the work

    judged = critiq(judge_args(work, "pairs.jsonl", *model, "--out", work / "judged.jsonl"), work)
    assert_ok(judged)
    assert record.read_bytes() == first  # judging into the same folder leaves annotate's record alone
    assert _annotation(work / "judge.json")["summary"]["out"] == str(work / "judged.jsonl")


def test_a_resume_that_did_work_rewrites_the_record(stub_server: StubServer, work: Path) -> None:
    from critiq.annotate.annotator import failed_path
    from critiq.rundir.annotation import AnnotationSummary, record_annotation

    out = work / "labeled.jsonl"
    record_annotation(out, AnnotationSummary(written=4, out=str(out)), None, model="m", failed=failed_path(out))
    kept = record_annotation(out, AnnotationSummary(skipped=4, out=str(out)), None, model="m")
    assert _annotation(kept)["summary"]["written"] == 4
    other = work / "other.jsonl"  # a record of another output is not kept for this one
    record_annotation(other, AnnotationSummary(skipped=4, out=str(other)), None, model="m")
    assert _annotation(kept)["summary"]["out"] == str(other)
    record_annotation(out, AnnotationSummary(written=2, skipped=4, out=str(out)), None, model="m")
    assert _annotation(kept)["summary"]["written"] == 2


@pytest.mark.llm
def test_judge_on_the_embedded_model_says_so(work: Path) -> None:
    (work / "one.jsonl").write_text((work / "pairs.jsonl").read_text().splitlines()[0] + "\n")
    criteria = json.loads((work / "criteria.json").read_text())[:1]
    (work / "one_criterion.json").write_text(json.dumps(criteria))
    env = env_for(OPENAI_API_KEY="sk-would-bill-you", HOME=str(work / "home"))  # never the shared ~/.cache/critiq
    args = judge_args(work, "one.jsonl", "--swap", "none", criteria="one_criterion.json")
    assert_ok(critiq(args, work, env=env, timeout=280))
    record = _annotation(work / "judge.json")
    assert record["uses_local_model"] is True and record["model"] == LOCAL_MODEL
    assert not (work / "annotate.json").exists()


def test_valid_requests_are_counted_where_the_run_reports_them(stub_server: StubServer, work: Path) -> None:
    """With --valid, stdout, report.md and usage.json give one request count."""
    stub_server.script([])
    write_jsonl(work / "valid.jsonl", code_pairs(9)[6:])  # pairs the training pairs do not hold
    args = mine_args(work, "pairs.jsonl", "--valid", "valid.jsonl", *stub_args(stub_server, work / "cache"))
    result = critiq(args, work)
    assert_ok(result)
    usage = json.loads((work / "run" / "usage.json").read_text())
    assert usage["requests"] == stub_server.stats()["total"] > 0
    assert f"requests {usage['requests']} ·" in result.stderr  # the console writes to stderr
    assert f"- requests {usage['requests']}," in (work / "run" / "report.md").read_text()
