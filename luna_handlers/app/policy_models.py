"""Pydantic v2 models of handler and verifier policies (LUNA PLATFORM 5).

Where the fields come from: the field NAMES (and the 0/1 nature of the flags, ``multiface_policy``
in {0, 1, 2}, the list-shaped ``match_policy``/``conditional_tags_policy``, the match candidate
``origin`` enum and the ``*__gte``/``*__lt`` time filters) are taken from the LUNA PLATFORM 5
documentation (the handlers API reference, sections 5, 7, 8).
Everything LUNA does not publish -- defaults of most flags, numeric limits, the key sets of the
``filters`` objects, the match ``targets`` enum, ``notification_policy`` -- is a choice of this
project, stated in the docstring of each model.

Common rules (all models):

* unknown keys are rejected (``extra="forbid"``);
* no coercion (``strict=True``): ``"1"`` is not an int, ``true`` is not an int, ``1`` is not a
  bool. Integral JSON numbers such as ``1.0`` ARE accepted as ints (and normalised to ``1``),
  because JSON Schema counts them as integers and the published schema must match the parser;
* 0/1 flags are ints constrained to 0..1; thresholds are numbers in 0..1; every list is capped
  at :data:`MAX_POLICY_LIST_LENGTH` items.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

#: Cap of every list inside policies (match_policy, conditional_tags_policy, id lists, ...).
#: LUNA caps these with an unpublished ``MAX_POLICY_LIST_LENGTH``; 100 is our choice.
MAX_POLICY_LIST_LENGTH = 100
#: Max length of descriptions, labels, tags and ``user_data`` filters (LUNA ``Str128``).
MAX_STR_LENGTH = 128
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
#: ISO 8601 date-time with a zone (``2024-01-31T10:00:00Z``, ``...+03:00``, optional fraction)
#: or a relative time ``now-<N><unit>``, unit one of s m h d w M y (LUNA candidate filters).
TIME_PATTERN = (
    r"^(now-[0-9]{1,9}[smhdwMy]"
    r"|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2}))$"
)


def _integral(value: object) -> object:
    """Accept an integral float (``1.0``) as an int, as JSON Schema's ``integer`` does."""
    if type(value) is float and value.is_integer():
        return int(value)
    return value


# the range constraints must come BEFORE the validator so that they land in the JSON Schema
_INTEGRAL = BeforeValidator(_integral)
Flag = Annotated[int, Field(ge=0, le=1), _INTEGRAL]
Threshold = Annotated[float, Field(ge=0.0, le=1.0)]
Angle = Annotated[int, Field(ge=0, le=180), _INTEGRAL]
Limit = Annotated[int, Field(ge=1, le=1000), _INTEGRAL]
Ttl = Annotated[int, Field(ge=1, le=31_536_000), _INTEGRAL]
Age = Annotated[int, Field(ge=0, le=200), _INTEGRAL]
MultifacePolicy = Annotated[int, Field(ge=0, le=2), _INTEGRAL]
#: liveness state: 0 spoof, 1 real, 2 unknown; mask state: 0 missing, 1 medical mask, 2 occluded.
State = Annotated[int, Field(ge=0, le=2), _INTEGRAL]
UuidStr = Annotated[
    str,
    StringConstraints(pattern=UUID_PATTERN, max_length=36),
    Field(json_schema_extra={"format": "uuid"}),
]
Str128 = Annotated[str, StringConstraints(max_length=MAX_STR_LENGTH)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=MAX_STR_LENGTH)]
TimeFilter = Annotated[str, StringConstraints(pattern=TIME_PATTERN)]
Origin = Literal["faces", "events", "attributes"]
#: Fields a match result may carry (our choice; LUNA documents ``targets`` as a list of str).
MatchTarget = Literal[
    "similarity", "face_id", "event_id", "attribute_id", "user_data", "create_time",
    "external_id", "lists", "account_id", "handler_id", "source", "tags", "avatar",
]
_LIST = Field(max_length=MAX_POLICY_LIST_LENGTH)


class _Strict(BaseModel):
    """Base of every model: no unknown keys, no coercion, finite numbers, immutable.

    Being frozen makes a model without list values hashable, so pydantic can reuse a shared
    default instance (``filters: EventFilters = EventFilters()``) instead of copying it or
    calling a factory on every validation -- about 3x faster for sparse bodies. Models with a
    list default (``FacePolicy`` and those containing it) keep ``default_factory``.
    """

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


# --- filters (key sets are our choice) -------------------------------------------------------


class MatchResultFilter(_Strict):
    """Keep the event only if match ``label`` found a candidate with similarity in [gte, lt)."""

    label: Str128
    similarity__gte: Threshold | None = None
    similarity__lt: Threshold | None = None


class EventFilters(_Strict):
    """Filters on the processed event, used by match, storage and conditional-tag policies.

    All keys default to null (= no filtering); ``age`` bounds are half-open [gte, lt),
    ``gender`` 0 female / 1 male, ``liveness`` a list of liveness states.
    """

    age__gte: Age | None = None
    age__lt: Age | None = None
    gender: Flag | None = None
    liveness: Annotated[list[State], _LIST] | None = None
    match: Annotated[list[MatchResultFilter], _LIST] | None = None


class MatchCandidates(_Strict):
    """Who to match against: ``origin`` (required, LUNA ``OriginEnum``) plus optional filters.

    Time filters take an ISO 8601 date-time with zone or ``now-<N><unit>`` (LUNA docs).
    """

    origin: Origin
    account_id: UuidStr | None = None
    list_id: UuidStr | None = None
    face_ids: Annotated[list[UuidStr], _LIST] | None = None
    event_ids: Annotated[list[UuidStr], _LIST] | None = None
    attribute_ids: Annotated[list[UuidStr], _LIST] | None = None
    handler_ids: Annotated[list[UuidStr], _LIST] | None = None
    user_data: Str128 | None = None
    create_time__gte: TimeFilter | None = None
    create_time__lt: TimeFilter | None = None
    end_time__gte: TimeFilter | None = None
    end_time__lt: TimeFilter | None = None


# --- detect / extract / match ----------------------------------------------------------------


class LivenessPolicy(_Strict):
    """``estimate_liveness``: estimate 0 by default; optional image quality threshold."""

    estimate: Flag = 0
    quality_threshold: Threshold | None = None


class FaceQualityPolicy(_Strict):
    """``face_quality``: estimate 0, filter (drop low quality faces) 0 by default."""

    estimate: Flag = 0
    filter: Flag = 0


class BodyAttributesPolicy(_Strict):
    """``body_attributes``: every estimation off (0) by default."""

    estimate_basic_attributes: Flag = 0
    estimate_upper_body: Flag = 0
    estimate_lower_body: Flag = 0
    estimate_accessories: Flag = 0


class DetectPolicy(_Strict):
    """``detect_policy`` (LUNA docs). Defaults: ``detect_face`` 1, ``multiface_policy`` 1
    (0 one face only, 1 all faces, 2 best face), every other flag 0, angle thresholds
    (degrees 0..180) and state lists null (= no filtering)."""

    detect_face: Flag = 1
    detect_body: Flag = 0
    multiface_policy: MultifacePolicy = 1
    detect_landmarks68: Flag = 0
    estimate_head_pose: Flag = 0
    estimate_gaze: Flag = 0
    estimate_eyes_attributes: Flag = 0
    estimate_mouth_attributes: Flag = 0
    estimate_emotions: Flag = 0
    estimate_mask: Flag = 0
    estimate_quality: Flag = 0
    estimate_glasses: Flag = 0
    extract_exif: Flag = 0
    estimate_liveness: LivenessPolicy = LivenessPolicy()
    liveness_states: Annotated[list[State], _LIST] | None = None
    mask_states: Annotated[list[State], _LIST] | None = None
    face_quality: FaceQualityPolicy = FaceQualityPolicy()
    body_attributes: BodyAttributesPolicy = BodyAttributesPolicy()
    pitch_threshold: Angle | None = None
    roll_threshold: Angle | None = None
    yaw_threshold: Angle | None = None


class ExtractPolicy(_Strict):
    """``extract_policy`` (LUNA docs). Defaults: every flag 0, ``fd_score_threshold`` 0.0."""

    extract_basic_attributes: Flag = 0
    extract_face_descriptor: Flag = 0
    extract_body_descriptor: Flag = 0
    fd_score_threshold: Threshold = 0.0


class MatchPolicy(_Strict):
    """One ``match_policy`` item (LUNA docs). ``candidates`` is required; defaults: ``label`` "",
    ``limit`` 3 (1..1000), ``targets`` null (= all), ``threshold`` null (= none)."""

    candidates: MatchCandidates
    filters: EventFilters = EventFilters()
    label: Str128 = ""
    limit: Limit = 3
    targets: Annotated[list[MatchTarget], _LIST] | None = None
    threshold: Threshold | None = None


# --- storage ---------------------------------------------------------------------------------


class FaceSamplePolicy(_Strict):
    """``face_sample_policy``: ``store_sample`` 1 by default."""

    filters: EventFilters = EventFilters()
    store_sample: Flag = 1


class BodySamplePolicy(_Strict):
    """``body_sample_policy``: ``store_sample`` 1 by default."""

    filters: EventFilters = EventFilters()
    store_sample: Flag = 1


class ImageOriginPolicy(_Strict):
    """``image_origin_policy``: ``store_image`` 1, ``use_external_references`` 0 by default."""

    filters: EventFilters = EventFilters()
    store_image: Flag = 1
    use_external_references: Flag = 0


class AttributePolicy(_Strict):
    """``attribute_policy``: ``store_attribute`` 1, ``ttl`` null (= server default) or
    1..31536000 seconds."""

    filters: EventFilters = EventFilters()
    store_attribute: Flag = 1
    ttl: Ttl | None = None


class LinkToListPolicy(_Strict):
    """One ``link_to_lists_policy`` item: ``list_id`` required."""

    list_id: UuidStr
    filters: EventFilters = EventFilters()


class FacePolicy(_Strict):
    """``face_policy``: ``store_face`` 0 (faces are created only on request),
    ``set_sample_as_avatar`` 1, no list links by default."""

    filters: EventFilters = EventFilters()
    store_face: Flag = 0
    set_sample_as_avatar: Flag = 1
    link_to_lists_policy: Annotated[list[LinkToListPolicy], _LIST] = Field(default_factory=list)


class EventPolicy(_Strict):
    """``event_policy``: ``store_event`` 1, ``wait_saving`` 0 by default."""

    filters: EventFilters = EventFilters()
    store_event: Flag = 1
    wait_saving: Flag = 0


class NotificationPolicy(_Strict):
    """``notification_policy`` (fields not published; our inference): ``send_notification`` 1."""

    filters: EventFilters = EventFilters()
    send_notification: Flag = 1


class StoragePolicy(_Strict):
    """``storage_policy`` of a handler: every sub-policy present with its defaults."""

    face_sample_policy: FaceSamplePolicy = FaceSamplePolicy()
    body_sample_policy: BodySamplePolicy = BodySamplePolicy()
    image_origin_policy: ImageOriginPolicy = ImageOriginPolicy()
    attribute_policy: AttributePolicy = AttributePolicy()
    face_policy: FacePolicy = Field(default_factory=FacePolicy)
    event_policy: EventPolicy = EventPolicy()
    notification_policy: NotificationPolicy = NotificationPolicy()


class ConditionalTag(_Strict):
    """One ``conditional_tags_policy`` item: attach ``tag`` (1..128 chars) when filters pass."""

    tag: Tag
    filters: EventFilters = EventFilters()


class HandlerPolicies(_Strict):
    """Handler policies (LUNA ``Policies``); ``{}`` is valid and means all defaults."""

    detect_policy: DetectPolicy = DetectPolicy()
    extract_policy: ExtractPolicy = ExtractPolicy()
    match_policy: Annotated[list[MatchPolicy], _LIST] = Field(default_factory=list)
    storage_policy: StoragePolicy = Field(default_factory=StoragePolicy)
    conditional_tags_policy: Annotated[list[ConditionalTag], _LIST] = Field(default_factory=list)


# --- verifier --------------------------------------------------------------------------------


class VerifierFaceSamplePolicy(FaceSamplePolicy):
    """Verifier ``face_sample_policy``: a 1:1 check stores nothing by default (0)."""

    store_sample: Flag = 0


class VerifierAttributePolicy(AttributePolicy):
    """Verifier ``attribute_policy``: ``store_attribute`` 0 by default."""

    store_attribute: Flag = 0


class VerifierStoragePolicy(_Strict):
    """Verifier ``storage_policy``: only face samples and attributes."""

    face_sample_policy: VerifierFaceSamplePolicy = VerifierFaceSamplePolicy()
    attribute_policy: VerifierAttributePolicy = VerifierAttributePolicy()


class VerifierPolicies(_Strict):
    """Verifier policies; ``verification_threshold`` 0.9 by default."""

    detect_policy: DetectPolicy = DetectPolicy()
    extract_policy: ExtractPolicy = ExtractPolicy()
    storage_policy: VerifierStoragePolicy = VerifierStoragePolicy()
    verification_threshold: Threshold = 0.9


# --- request bodies --------------------------------------------------------------------------


class HandlerBody(_Strict):
    """POST/PUT /1/handlers. The dynamic/static rule on ``policies`` is checked by the parser."""

    description: Str128 = ""
    is_dynamic: bool = False
    policies: HandlerPolicies | None = None


class VerifierBody(_Strict):
    """POST/PUT /1/verifiers."""

    description: Str128 = ""
    policies: VerifierPolicies = VerifierPolicies()


class ValidatorBody(_Strict):
    """POST /1/handlers/validator."""

    policies: HandlerPolicies
