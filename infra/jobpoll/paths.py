"""Where the project's parts live, found from this file (the tooling runs from a checkout)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS_DIR = ROOT / "functions"
STATEMACHINE_DIR = ROOT / "statemachine"
INFRA_DIR = ROOT / "infra"
POLLER_ASL = STATEMACHINE_DIR / "poller.asl.json"
INFRA_TEMPLATE = INFRA_DIR / "template.json"
# What `jobpoll local up` writes for clients while it runs (API URL, AWS endpoint, stack outputs).
LOCAL_STATE = ROOT / ".jobpoll" / "local.json"


def ensure_functions_importable() -> None:
    """Make `import app` and `import chalicelib` load the Chalice project, as Lambda does."""
    path = str(FUNCTIONS_DIR)
    if path not in sys.path:
        sys.path.insert(0, path)
