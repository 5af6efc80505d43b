"""Errors raised by the client. Every failed RPC surfaces as a :class:`MixflowError` that
carries the gRPC status code and the server's message (which says what to fix)."""

from __future__ import annotations

import grpc


class MixflowError(Exception):
    """A failed mixflow call: ``code`` is the gRPC status, ``message`` the server's details."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message

    @classmethod
    def from_rpc_error(cls, e: grpc.RpcError) -> MixflowError:
        """Wrap a ``grpc.RpcError`` (which is also a ``grpc.Call``) with its code and details."""
        code = e.code() if isinstance(e, grpc.Call) else grpc.StatusCode.UNKNOWN
        details = (e.details() if isinstance(e, grpc.Call) else None) or str(e)
        if code == grpc.StatusCode.NOT_FOUND:
            return MixflowRunGone(details)
        return cls(code, details)


class MixflowRunGone(MixflowError):
    """The run does not exist on the server (NOT_FOUND): wrong run id, or the run was
    removed. Retrying cannot help; recreate the run or fix the id."""

    def __init__(self, message: str) -> None:
        super().__init__(grpc.StatusCode.NOT_FOUND, message)


class ReportRejected(MixflowError):
    """A queued report that the server refused (raised by :class:`SignalReporter` on the
    next ``report()`` or ``flush()``). ``step`` is the step of the rejected report."""

    def __init__(self, step: int, cause: MixflowError) -> None:
        super().__init__(cause.code, f"report of step {step} rejected: {cause.message}")
        self.step = step
        self.cause = cause


class MixflowWarning(UserWarning):
    """Something in the training loop keeps the mix from adapting (an unanswered eval
    request, a stream held back for reports): issued once per dataset, saying what to call."""
