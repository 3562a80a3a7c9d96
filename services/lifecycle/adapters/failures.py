"""Which errors of the drivers may pass (retry as long as they last), which say
the process is stopping, and which are unforeseen."""

from aiokafka.errors import (
    ConsumerStoppedError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    ProducerClosed,
)
from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    InvalidOperation,
    OperationFailure,
    PyMongoError,
)

from services.lifecycle.service_layer.failures import Failure, Stopping
from services.lifecycle.service_layer.ports import VersionConflict

# Server error codes that say "not now": a conflict, a failover, a shutdown, a timeout.
_TRANSIENT_CODES = frozenset(
    {
        6,  # HostUnreachable
        7,  # HostNotFound
        50,  # MaxTimeMSExpired
        89,  # NetworkTimeout
        91,  # ShutdownInProgress
        112,  # WriteConflict
        189,  # PrimarySteppedDown
        251,  # NoSuchTransaction (aborted under us)
        262,  # ExceededTimeLimit
        9001,  # SocketException
        10107,  # NotWritablePrimary
        11600,  # InterruptedAtShutdown
        11602,  # InterruptedDueToReplStateChange
        13435,  # NotPrimaryNoSecondaryOk
        13436,  # NotPrimaryOrSecondary
    }
)
_TOO_LARGE_FOR_CACHE = 334  # TransactionTooLargeForCache: no transient label
_LABELS = ("TransientTransactionError", "RetryableWriteError", "UnknownTransactionCommitResult")


def classify(error: BaseException) -> Failure:
    if isinstance(error, Stopping | ProducerClosed | ConsumerStoppedError):
        return Failure.STOPPING
    if isinstance(error, InvalidOperation) and "after close" in str(error):
        return Failure.STOPPING
    if isinstance(error, VersionConflict | TimeoutError | ConnectionError):
        return Failure.TRANSIENT
    if isinstance(error, OperationFailure) and error.code == _TOO_LARGE_FOR_CACHE:
        return Failure.TOO_LARGE
    if isinstance(error, PyMongoError):
        return Failure.TRANSIENT if _mongo_may_pass(error) else Failure.UNFORESEEN
    if isinstance(error, KafkaError):
        may_pass = error.retriable or isinstance(error, KafkaConnectionError | KafkaTimeoutError)
        return Failure.TRANSIENT if may_pass else Failure.UNFORESEEN
    return Failure.UNFORESEEN


def _mongo_may_pass(error: PyMongoError) -> bool:
    if isinstance(error, ConnectionFailure) or any(map(error.has_error_label, _LABELS)):
        return True
    if isinstance(error, BulkWriteError):
        details = error.details
        codes = [e.get("code") for e in details.get("writeErrors", [])]
        codes += [e.get("code") for e in details.get("writeConcernErrors", [])]
        return bool(codes) and all(code in _TRANSIENT_CODES for code in codes)
    return isinstance(error, OperationFailure) and error.code in _TRANSIENT_CODES
