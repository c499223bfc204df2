"""The one error hierarchy of luna-handlers.

Every error a client can see is a subclass of :class:`LunaError` that declares its LUNA
error code, HTTP status and short description on the class. Codes are registered at import
time and a duplicate code is a ``TypeError``, so two classes can never share one.

Outline::

    LunaError
    ├── InternalError                      1      500
    ├── request errors (400, 401, 404, 405, 413)
    │   ├── BadQueryParams                 12012
    │   ├── RequiredParamsNotFound         12014
    │   ├── BadContentType                 12017
    │   ├── BadInputJson                   12022  (carries the JSON path of the bad field)
    │   ├── BadAccountId                   11037
    │   ├── PayloadTooLarge                12040  (choice: code not public)
    │   ├── Unauthorized                   12041  (choice)
    │   ├── PageNotFound                   12042  (choice)
    │   ├── MethodNotAllowed               12043  (choice)
    │   ├── RequestTimeout                 12044  408  (choice)
    │   ├── HeaderFieldsTooLarge           12045  431  (choice)
    │   ├── URITooLong                     12046  414  (choice)
    │   ├── UnsupportedContentEncoding     12047  415  (choice)
    │   ├── DuplicateHeader                12048  (choice)
    │   ├── MalformedRequest               12050  (choice: not parseable as HTTP/1.1)
    │   └── TooManyConnections             12049  503  (choice)
    ├── objects
    │   ├── HandlerNotFound                34000
    │   ├── HandlerCorrupted               34002
    │   ├── VerifierNotFound               34004
    │   ├── FaceNotFound                   22001  404  (names every missing id)
    │   ├── ListNotFound                   22002  404  (names every missing id)
    │   ├── SampleNotFound                 22003  404  (choice)
    │   └── EventNotFound                  23001  404  (names every missing id)
    └── DatabaseError (grouping)
        ├── DatabaseUnavailable            34010  503  (not sent: safe to retry)
        │   └── DatabaseSwitched           34010  (the pool moved while the request waited)
        ├── DatabaseOutcomeUnknown         34011  503  (may have been applied)
        │   └── StoppedOutcomeUnknown      34011  (the service stopped mid-request)
        ├── DatabaseFailure                34012  500  (the database refused the statement)
        ├── ScansBusy                      34014  503  (choice: the lists' share is in use)
        └── ScanTimedOut                   34015  503  (choice: a list's statement timeout)
    face engine (codes: choice)
    ├── EngineBusy                         35001  503  (queue full; Retry-After)
    ├── BadImage                           35002  400
    ├── ImageTooLarge                      35003  413
    ├── EstimationNotAvailable             35004  400  (names the policy flag)
    └── EngineModelError                   35005  500
    processing (34007 LUNA's; 36xxx: choice)
    ├── StaticHandlerPolicies              34007  403
    ├── MultipleFaces                      36001  400
    ├── DynamicHandlerWithoutPolicies      36002  400
    ├── UnsupportedImageType               36003  400
    └── NoFaceFound                        36004  400

The codes marked "choice" are not published by VisionLabs; README.md lists them.
Exactly one place (``luna_handlers.app.errors``) turns these into HTTP responses.
"""

from __future__ import annotations

from luna_handlers.errors.base import (
    ERROR_LINK,
    InternalError,
    LunaError,
)
from luna_handlers.errors.database import (
    DatabaseError,
    DatabaseFailure,
    DatabaseOutcomeUnknown,
    DatabaseSwitched,
    DatabaseUnavailable,
    ScansBusy,
    ScanTimedOut,
    StoppedOutcomeUnknown,
)
from luna_handlers.errors.objects import (
    EventNotFound,
    FaceNotFound,
    HandlerCorrupted,
    HandlerNotFound,
    ListNotFound,
    SampleNotFound,
    VerifierCorrupted,
    VerifierNotFound,
)
from luna_handlers.errors.processing import (
    BadImage,
    DynamicHandlerWithoutPolicies,
    EngineBusy,
    EngineModelError,
    EstimationNotAvailable,
    ImageTooLarge,
    MultipleFaces,
    NoFaceFound,
    StaticHandlerPolicies,
    UnsupportedImageType,
)
from luna_handlers.errors.requests import (
    BadAccountId,
    BadContentType,
    BadInputJson,
    BadQueryParams,
    DuplicateHeader,
    HeaderFieldsTooLarge,
    MalformedRequest,
    MethodNotAllowed,
    PageNotFound,
    PayloadTooLarge,
    RequestTimeout,
    RequiredParamsNotFound,
    TooManyConnections,
    Unauthorized,
    UnsupportedContentEncoding,
    URITooLong,
)

__all__ = [
    "ERROR_LINK",
    "BadAccountId",
    "BadContentType",
    "BadImage",
    "BadInputJson",
    "BadQueryParams",
    "DatabaseError",
    "DatabaseFailure",
    "DatabaseOutcomeUnknown",
    "DatabaseSwitched",
    "DatabaseUnavailable",
    "DuplicateHeader",
    "DynamicHandlerWithoutPolicies",
    "EngineBusy",
    "EngineModelError",
    "EstimationNotAvailable",
    "EventNotFound",
    "FaceNotFound",
    "HandlerCorrupted",
    "HandlerNotFound",
    "HeaderFieldsTooLarge",
    "ImageTooLarge",
    "InternalError",
    "ListNotFound",
    "LunaError",
    "MalformedRequest",
    "MethodNotAllowed",
    "MultipleFaces",
    "NoFaceFound",
    "PageNotFound",
    "PayloadTooLarge",
    "RequestTimeout",
    "RequiredParamsNotFound",
    "SampleNotFound",
    "ScanTimedOut",
    "ScansBusy",
    "StaticHandlerPolicies",
    "StoppedOutcomeUnknown",
    "TooManyConnections",
    "URITooLong",
    "Unauthorized",
    "UnsupportedContentEncoding",
    "UnsupportedImageType",
    "VerifierCorrupted",
    "VerifierNotFound",
]
