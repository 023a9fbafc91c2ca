"""Amazon Transcribe batch transcription: StartTranscriptionJob, then GetTranscriptionJob until it ends.

The work id is the transcription job's name (`jobpoll-<hex>`, chosen here). The result is where the
transcript is and the service's description of the job; `cancel` deletes the transcription job. Transcribe
also announces each job's end on EventBridge (`Transcribe Job State Change`), which infra/template.json routes
to NotifyJob, so a job submitted with `notify: true` completes without being polled.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from ..errors import InvalidJobInput, ProviderError
from ..job import JobError
from .aws_service import NON_BLANK, call, cancel_call, checked_object, json_safe
from .base import PollResult, WorkState

_STATES = {
    "QUEUED": WorkState.PENDING,
    "IN_PROGRESS": WorkState.RUNNING,
    "COMPLETED": WorkState.SUCCEEDED,
    "FAILED": WorkState.FAILED,
}
JOB_NAME_PREFIX = "jobpoll-"
_SERVICE = "Amazon Transcribe"


class TranscribeProvider:
    """Amazon Transcribe: a batch transcription (StartTranscriptionJob, polled with GetTranscriptionJob)."""

    name = "aws-transcribe"
    kind = "poll"
    aws_service = "transcribe"  # the registry gives the constructor this service's client
    can_notify = True
    # The service's state-change event on EventBridge (its documented source and detail-type).
    event_source = "aws.transcribe"
    event_detail_type = "Transcribe Job State Change"
    input_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "required": ["media_uri"],
        "dependentRequired": {"output_key": ["output_bucket"]},
        "additionalProperties": False,
        "properties": {
            "media_uri": {
                "type": "string",
                "pattern": "^(s3|https)://",
                "maxLength": 2000,
                "description": "the audio or video file (s3://bucket/key)",
            },
            "language_code": {
                "type": "string",
                "pattern": NON_BLANK,
                "maxLength": 10,
                "description": "e.g. en-US; leave out to have Transcribe identify the language",
            },
            "media_format": {
                "type": "string",
                "enum": ["mp3", "mp4", "wav", "flac", "ogg", "amr", "webm", "m4a"],
                "description": "the media's format (Transcribe detects it when left out)",
            },
            "output_bucket": {
                "type": "string",
                "pattern": NON_BLANK,
                "maxLength": 64,
                "description": "an S3 bucket for the transcript (else Transcribe's own, served by a URL)",
            },
            "output_key": {
                "type": "string",
                "pattern": NON_BLANK,
                "maxLength": 1024,
                "description": "the transcript's key in output_bucket",
            },
        },
    }
    examples: ClassVar[list[dict[str, Any]]] = [
        {"media_uri": "s3://my-media/interview.mp3", "language_code": "en-US"},
        {"media_uri": "s3://my-media/call.wav", "output_bucket": "my-transcripts", "output_key": "call.json"},
    ]

    def __init__(self, client: Any) -> None:
        self._client = client

    def validate(self, request: Any) -> dict[str, Any]:
        checked = checked_object(request, self.name, self.input_schema)
        if "output_key" in checked and "output_bucket" not in checked:
            raise InvalidJobInput("'output_key' needs 'output_bucket'")
        return checked

    def submit(self, request: dict[str, Any]) -> str:
        name = f"{JOB_NAME_PREFIX}{uuid.uuid4().hex}"
        parameters: dict[str, Any] = {
            "TranscriptionJobName": name,
            "Media": {"MediaFileUri": request["media_uri"]},
        }
        if "language_code" in request:
            parameters["LanguageCode"] = request["language_code"]
        else:
            parameters["IdentifyLanguage"] = True
        if "media_format" in request:
            parameters["MediaFormat"] = request["media_format"]
        if "output_bucket" in request:
            parameters["OutputBucketName"] = request["output_bucket"]
        if "output_key" in request:
            parameters["OutputKey"] = request["output_key"]
        call(_SERVICE, self._client.start_transcription_job, **parameters)
        return name

    def poll(self, work_id: str) -> PollResult:
        job = call(_SERVICE, self._client.get_transcription_job, TranscriptionJobName=work_id)[
            "TranscriptionJob"
        ]
        status = str(job.get("TranscriptionJobStatus", ""))
        state = _STATES.get(status)
        if state is None:
            raise ProviderError(f"{_SERVICE} answered an unknown job status {status!r}")
        if state is WorkState.SUCCEEDED:
            result = {
                "transcript_uri": job.get("Transcript", {}).get("TranscriptFileUri"),
                "job": json_safe(job),
            }
            return PollResult(state, progress=1.0, result=result, provider_status=status)
        if state is WorkState.FAILED:
            reason = job.get("FailureReason") or "Amazon Transcribe reported the job FAILED"
            return PollResult(state, error=JobError("TranscriptionFailed", reason), provider_status=status)
        return PollResult(state, provider_status=status)

    def cancel(self, work_id: str) -> None:
        # Transcribe cannot stop a job: deleting it is the way. A job deleted already is canceled already.
        cancel_call(
            _SERVICE, self._client.delete_transcription_job, "couldn't be found", TranscriptionJobName=work_id
        )

    def work_id_of_event(self, event: dict[str, Any]) -> str | None:
        """The work id a `Transcribe Job State Change` event is about (only jobs jobpoll named)."""
        name = (event.get("detail") or {}).get("TranscriptionJobName")
        return name if isinstance(name, str) and name.startswith(JOB_NAME_PREFIX) else None
