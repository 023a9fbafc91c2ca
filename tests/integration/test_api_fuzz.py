"""probe"""

from __future__ import annotations

import schemathesis
from api_harness import make_api
from chalice.config import Config
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events

from app import app
from jobpoll.emulation import Emulation
from jobpoll.local_api import serve, serving_in_thread


def test_probe(module_emulation: Emulation) -> None:
    api = make_api(module_emulation)
    config = SchemathesisConfig.from_dict(
        {
            "seed": 6,
            "headers": {"Authorization": f"Bearer {api.tokens['alice']}"},
            "generation": {"max-examples": 20, "database": "none"},
        }
    )
    failures = []
    with serving_in_thread(serve(app, Config(chalice_stage="dev"), "127.0.0.1", 0)) as url:
        schema = schemathesis.openapi.from_url(url + "/openapi.json", config=config)
        for event in schemathesis.engine.from_schema(schema).execute():
            if isinstance(event, events.ScenarioFinished) and event.status != Status.SUCCESS:
                for case_id, checks in event.recorder.checks.items():
                    for check in checks:
                        if check.status == Status.FAILURE:
                            case = event.recorder.cases[case_id].value
                            failures.append(
                                (
                                    event.phase,
                                    check.name,
                                    case.method,
                                    case.path,
                                    case.query,
                                    case.body,
                                    str(check.failure_info.failure)[:300] if check.failure_info else "",
                                )
                            )
            if isinstance(event, (events.NonFatalError, events.FatalError)):
                failures.append(("error", repr(event.value)[:500]))
    for f in failures:
        print(f)
    assert not failures
