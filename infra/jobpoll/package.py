"""Packaging: `chalice package` of functions/ merged with infra/template.json, and the SAM transform.

The one artifact both homes deploy: AWS (`jobpoll deploy`) and the local emulation (`jobpoll local up`).
`render_merge_template()` inlines the state machine's ASL from statemachine/ (cfn-lint validates an inline
`Definition` only), fills in the values the template takes from the settings (`{"jobpoll:Setting": name}`:
the queue worker's limits, derived in chalicelib/settings.py), and chalice merges the result into its SAM
template. `to_cloudformation()` runs the SAM
transform here rather than in CloudFormation, so the local stack (moto has no transform) and AWS get the same
plain CloudFormation template, and the linted template is the deployed one.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .definition import asl_problems, placeholders
from .errors import PackageError
from .paths import FUNCTIONS_DIR, INFRA_TEMPLATE, ROOT, ensure_functions_importable

SAM_TEMPLATE = "sam.json"
DEPLOYMENT_ZIP = "deployment.zip"
API_GATEWAY_TYPES = ("AWS::Serverless::Api", "AWS::ApiGateway::")


@dataclass(frozen=True)
class Package:
    """`chalice package` output: the SAM template and the Lambda bundle it points at."""

    directory: Path

    @property
    def template_path(self) -> Path:
        return self.directory / SAM_TEMPLATE

    @property
    def deployment_zip(self) -> Path:
        return self.directory / DEPLOYMENT_ZIP

    def template(self) -> dict[str, Any]:
        return json.loads(self.template_path.read_text())  # type: ignore[no-any-return]


SETTING = "jobpoll:Setting"


def _with_settings(value: Any, settings: Any) -> Any:
    """`value` with every `{"jobpoll:Setting": name}` replaced by that attribute of `settings`."""
    if isinstance(value, dict):
        if set(value) == {SETTING}:
            return getattr(settings, value[SETTING])
        return {key: _with_settings(inner, settings) for key, inner in value.items()}
    if isinstance(value, list):
        return [_with_settings(item, settings) for item in value]
    return value


def render_merge_template(infra_template: Path = INFRA_TEMPLATE, settings: Any = None) -> dict[str, Any]:
    """infra/template.json with each state machine's `Definition` read from its `DefinitionFile` and each
    setting filled in from `settings` (default: the environment's, as `chalice package` reads app.py's)."""
    if settings is None:
        ensure_functions_importable()
        from chalicelib.settings import Settings

        settings = Settings.from_env()
    template: dict[str, Any] = _with_settings(json.loads(infra_template.read_text()), settings)
    for resource in template.get("Resources", {}).values():
        source = resource.get("Metadata", {}).get("jobpoll", {}).get("DefinitionFile")
        if source is None:
            continue
        try:
            definition = json.loads((ROOT / source).read_text())
        except (OSError, ValueError) as exc:
            raise PackageError(f"cannot read the state machine definition {source}: {exc}") from exc
        problems = asl_problems(definition)
        if problems:
            raise PackageError(f"{source}: " + "; ".join(problems))
        resource["Properties"]["Definition"] = definition
    return template


def schema_problems(spec: Any) -> list[str]:
    """What is wrong with a registered provider's input schema, or with an example it does not fit."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    if spec.input_schema is None:
        return []  # the schema depends on the deployment: the contract checks it where one is configured
    try:
        Draft202012Validator.check_schema(dict(spec.input_schema))
    except SchemaError as exc:
        return [f"input_schema is not a JSON Schema: {exc.message}"]
    validator = Draft202012Validator(dict(spec.input_schema))
    return [
        f"example {json.dumps(example)[:80]} does not fit its input_schema: {error.message}"
        for example in spec.examples
        for error in validator.iter_errors(example)
    ]


def check_providers(registry_file: Path | None = None) -> None:
    """Import and check every registered provider (declaration, protocol, examples against the schema):
    a broken one fails packaging with one line naming it, not the first job."""
    ensure_functions_importable()
    from chalicelib.providers import registry

    try:
        specs = registry.load(registry_file or registry.REGISTRY_FILE)
    except registry.ProviderRegistryError as exc:
        raise PackageError(str(exc)) from None
    for spec in specs:
        problems = schema_problems(spec)
        if problems:
            raise PackageError(f"provider {spec.name!r} ({spec.target}): {problems[0]}")


def chalice_executable() -> str:
    """The `chalice` command of this environment."""
    beside_python = Path(sys.executable).with_name("chalice")
    found = str(beside_python) if beside_python.exists() else shutil.which("chalice")
    if not found:
        raise PackageError("the `chalice` command is not installed (pip install -e '.[dev]')")
    return found


def chalice_package(stage: str, out_dir: Path, region: str) -> Package:
    """Check the providers, run `chalice package --merge-template` into `out_dir`, check what it produced."""
    check_providers()
    out_dir.mkdir(parents=True, exist_ok=True)
    merge_path = out_dir / "merge-template.json"
    merge_path.write_text(json.dumps(render_merge_template(), indent=2))
    packaged = out_dir / "chalice"
    if packaged.exists():
        shutil.rmtree(packaged)
    env = {**os.environ, "AWS_DEFAULT_REGION": region}
    result = subprocess.run(
        [
            chalice_executable(),
            "package",
            "--stage",
            stage,
            "--merge-template",
            str(merge_path),
            str(packaged),
        ],
        cwd=FUNCTIONS_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise PackageError(f"chalice package failed: {detail[-1] if detail else result.returncode}")
    package = Package(packaged)
    check_packaged(package.template())
    return package


def check_packaged(template: Mapping[str, Any]) -> None:
    """Raise PackageError if the merge left a partial resource or a state machine placeholder unfilled."""
    problems = []
    for name, resource in template.get("Resources", {}).items():
        if "Type" not in resource:
            problems.append(
                f"infra/template.json adds properties to {name}, which chalice did not generate "
                "(renamed or removed function?)"
            )
        if resource.get("Type") == "AWS::StepFunctions::StateMachine":
            properties = resource.get("Properties", {})
            used = placeholders(json.dumps(properties.get("Definition", {})))
            given = set(properties.get("DefinitionSubstitutions", {}))
            if used - given:
                problems.append(f"{name}: no DefinitionSubstitutions for {sorted(used - given)}")
            if given - used:
                problems.append(f"{name}: DefinitionSubstitutions {sorted(given - used)} are not used")
    if problems:
        raise PackageError("; ".join(problems))


def with_code_location(template: Mapping[str, Any], bucket: str, key: str) -> dict[str, Any]:
    """The SAM template with every `./deployment.zip` CodeUri pointing at the uploaded bundle."""
    located = copy.deepcopy(dict(template))
    for name, resource in located.get("Resources", {}).items():
        properties = resource.get("Properties", {})
        code_uri = properties.get("CodeUri")
        if code_uri is None:
            continue
        if code_uri != f"./{DEPLOYMENT_ZIP}":
            raise PackageError(f"{name}: unexpected CodeUri {code_uri!r} (automatic layers are unsupported)")
        properties["CodeUri"] = {"Bucket": bucket, "Key": key}
    return located


def _references(value: Any) -> Iterator[str]:
    """Logical ids a template fragment refers to (Ref, Fn::GetAtt, Fn::Sub, DependsOn)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                yield inner
            elif key == "Fn::GetAtt":
                target = inner[0] if isinstance(inner, list) else str(inner).split(".")[0]
                yield target
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) else inner
                if isinstance(text, str):
                    yield from (m.split(".")[0] for m in re.findall(r"\$\{([^!}][^}]*)\}", text))
            elif key == "DependsOn":
                yield from ([inner] if isinstance(inner, str) else inner)
            yield from _references(inner)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)


def without_api_gateway(template: Mapping[str, Any]) -> dict[str, Any]:
    """The template minus API Gateway and everything that refers to it (locally `chalice local` serves the
    API: moto's RestApi ignores the swagger body)."""
    stripped = copy.deepcopy(dict(template))
    resources: dict[str, Any] = stripped.get("Resources", {})
    dropped = {n for n, r in resources.items() if str(r.get("Type", "")).startswith(API_GATEWAY_TYPES)}
    while True:
        more = {n for n, r in resources.items() if n not in dropped and dropped & set(_references(r))}
        if not more:
            break
        dropped |= more
    for name in dropped:
        del resources[name]
    outputs = stripped.get("Outputs", {})
    for name in [n for n, o in outputs.items() if dropped & set(_references(o))]:
        del outputs[name]
    return stripped


class _NoManagedPolicies:
    """The template names no SAM managed policies: the transform must not ask IAM for the list."""

    def load(self) -> dict[str, str]:
        return {}


def to_cloudformation(sam_template: Mapping[str, Any], region: str) -> dict[str, Any]:
    """Run the SAM transform locally; returns plain CloudFormation."""
    import boto3
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=region))
    try:
        translated: dict[str, Any] = translator.translate(
            copy.deepcopy(dict(sam_template)),
            parameter_values={},
            get_managed_policy_map=_NoManagedPolicies().load,
        )
    except InvalidDocumentException as exc:
        raise PackageError(f"SAM transform failed: {exc}") from exc
    return translated


def cloudformation_template(
    package: Package, region: str, bucket: str, key: str, with_api: bool = True
) -> dict[str, Any]:
    """The package's template, its code at s3://bucket/key, transformed to plain CloudFormation."""
    sam = with_code_location(package.template(), bucket, key)
    if not with_api:
        sam = without_api_gateway(sam)
    return to_cloudformation(sam, region)
