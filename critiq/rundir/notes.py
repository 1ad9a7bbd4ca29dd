"""``run.json``: free-form notes a pipeline script may leave; model names under any ``model``-like key."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

MODEL_KEYS = ("model", "manager_model", "worker_model", "models")


class RunNotes(BaseModel):
    """``run.json``: anything; ``uses_local_model`` and the model names found under :data:`MODEL_KEYS` are read."""

    model_config = ConfigDict(extra="allow")

    uses_local_model: bool = False

    def recorded_models(self) -> list[str]:
        found: list[str] = []

        def walk(value: object, key: str = "") -> None:
            if key in MODEL_KEYS:
                names = value.values() if isinstance(value, dict) else value if isinstance(value, list) else [value]
                found.extend(n for n in names if isinstance(n, str) and n and n not in found)
            elif isinstance(value, dict):
                for name, item in value.items():
                    walk(item, str(name))
            elif isinstance(value, list):
                for item in value:
                    walk(item)

        walk(self.model_extra or {})
        return found
