"""The exception tree of agentic-pipeline.

Every error the program raises on purpose derives from ``PipelineError``; the CLI,
the MCP server and the HTTP endpoint render it once, at their edge. Driver errors
(sqlite3, psycopg, pypdfium2, zipfile) are translated at the boundary with
``raise ... from exc`` and never escape a store or an extractor.

    PipelineError
    ├── ConfigError                 bad setting or environment variable
    ├── InputError                  a user's or a model's input is invalid (exit 2 in the CLI)
    │   └── PathNotAllowed          a path outside the configured roots
    ├── NotFound                    unknown pipeline / book / worker id
    ├── StoreError                  the database failed or is unreachable
    │   ├── SchemaBehind            the schema needs `agentic-pipeline init`
    │   └── Conflict                a compare-and-set lost its race
    │       ├── StaleState          the pipeline is no longer in the expected state
    │       └── LeaseLost           another worker holds (or took over) the lease
    ├── InvalidTransition           the state machine forbids the move
    ├── BookError                   the book itself is bad: permanent, never retried
    │   ├── EmptyFile
    │   ├── UnsupportedFormat
    │   ├── CorruptFile
    │   ├── PasswordProtected
    │   ├── NoTextLayer
    │   ├── GarbageText
    │   └── BookTooLarge
    ├── TransientError              worth retrying (timeouts, resource exhaustion)
    │   └── StageTimeout
    ├── PolicyDenied                the autonomy policy or a limit refused the action
    │   └── MaxCountExceeded
    ├── StaleConfirmation           a batch confirmation token no longer matches
    └── AuditTampered               the audit chain does not verify
"""

from __future__ import annotations


class PipelineError(Exception):
    """Something went wrong in agentic-pipeline."""

    #: what the user can do about it, shown after the message when set
    hint: str | None = None

    def __init__(self, message: str | None = None, *, hint: str | None = None, **data: object) -> None:
        self.message = message or (self.__class__.__doc__ or self.__class__.__name__).strip().splitlines()[0]
        if hint is not None:
            self.hint = hint
        self.data = data
        for key, value in data.items():
            setattr(self, key, value)
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class ConfigError(PipelineError):
    """Invalid configuration."""


class InputError(PipelineError):
    """Invalid input."""


class PathNotAllowed(InputError):
    """The path is outside the allowed roots."""


class NotFound(PipelineError):
    """No such object."""


class StoreError(PipelineError):
    """The database operation failed."""


class SchemaBehind(StoreError):
    """The database schema is behind this version of agentic-pipeline."""

    hint = "run `agentic-pipeline init` to upgrade it"


class Conflict(StoreError):
    """The object changed underneath this operation."""


class StaleState(Conflict):
    """The pipeline is no longer in the expected state."""


class LeaseLost(Conflict):
    """The lease on this pipeline is held by someone else."""


class InvalidTransition(PipelineError):
    """The state machine does not allow this transition."""


class BookError(PipelineError):
    """The book cannot be read; retrying will not help."""

    permanent = True


class EmptyFile(BookError):
    """empty file: 0 bytes"""


class UnsupportedFormat(BookError):
    """unsupported format"""


class CorruptFile(BookError):
    """corrupt or unreadable file"""


class PasswordProtected(BookError):
    """password protected: the PDF needs a password to open"""


class NoTextLayer(BookError):
    """no text layer: scanned pages need OCR"""


class GarbageText(BookError):
    """the text layer decodes to garbage"""


class BookTooLarge(BookError):
    """the book exceeds the configured size limits"""


class TransientError(PipelineError):
    """A temporary failure; the operation may succeed if retried."""


class StageTimeout(TransientError):
    """The stage ran past its time limit and was killed."""


class PolicyDenied(PipelineError):
    """The policy refused this action."""


class MaxCountExceeded(PolicyDenied):
    """More items match than the allowed maximum; nothing was changed."""


class StaleConfirmation(PipelineError):
    """The confirmation token does not match the current set of matches."""


class AuditTampered(PipelineError):
    """The audit trail does not verify."""


# --- i13: a missing database told apart from one whose schema is behind ------------------------------
class NoDatabase(SchemaBehind):
    """There is no database at the configured place (a SQLite file that does not exist)."""

    hint = "create it with `agentic-pipeline init`, or check --db / AGENTIC_PIPELINE_DB"
