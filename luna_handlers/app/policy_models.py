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

from typing import Annotated

from pydantic import Field

from luna_handlers.app.policy_types import (
    CAPPED,
    Age,
    Angle,
    Flag,
    Limit,
    MatchTarget,
    MultifacePolicy,
    Origin,
    State,
    Str128,
    StrictModel,
    Tag,
    Threshold,
    TimeFilter,
    Ttl,
    UuidStr,
)

# --- filters (key sets are our choice) -------------------------------------------------------


class MatchResultFilter(StrictModel):
    """Keep the event only if match ``label`` found a candidate with similarity in [gte, lt)."""

    label: Str128
    similarity__gte: Threshold | None = None
    similarity__lt: Threshold | None = None


class EventFilters(StrictModel):
    """Filters on the processed event, used by match, storage and conditional-tag policies.

    All keys default to null (= no filtering); ``age`` bounds are half-open [gte, lt),
    ``gender`` 0 female / 1 male, ``liveness`` a list of liveness states.
    """

    age__gte: Age | None = None
    age__lt: Age | None = None
    gender: Flag | None = None
    liveness: Annotated[list[State], CAPPED] | None = None
    match: Annotated[list[MatchResultFilter], CAPPED] | None = None


class MatchCandidates(StrictModel):
    """Who to match against: ``origin`` (required, LUNA ``OriginEnum``) plus optional filters.

    Time filters take an ISO 8601 date-time with zone or ``now-<N><unit>`` (LUNA docs).
    """

    origin: Origin
    account_id: UuidStr | None = None
    list_id: UuidStr | None = None
    face_ids: Annotated[list[UuidStr], CAPPED] | None = None
    event_ids: Annotated[list[UuidStr], CAPPED] | None = None
    attribute_ids: Annotated[list[UuidStr], CAPPED] | None = None
    handler_ids: Annotated[list[UuidStr], CAPPED] | None = None
    user_data: Str128 | None = None
    create_time__gte: TimeFilter | None = None
    create_time__lt: TimeFilter | None = None
    end_time__gte: TimeFilter | None = None
    end_time__lt: TimeFilter | None = None


# --- detect / extract / match ----------------------------------------------------------------


class LivenessPolicy(StrictModel):
    """``estimate_liveness``: estimate 0 by default; optional image quality threshold."""

    estimate: Flag = 0
    quality_threshold: Threshold | None = None


class FaceQualityPolicy(StrictModel):
    """``face_quality``: estimate 0, filter (drop low quality faces) 0 by default."""

    estimate: Flag = 0
    filter: Flag = 0


class BodyAttributesPolicy(StrictModel):
    """``body_attributes``: every estimation off (0) by default."""

    estimate_basic_attributes: Flag = 0
    estimate_upper_body: Flag = 0
    estimate_lower_body: Flag = 0
    estimate_accessories: Flag = 0


class DetectPolicy(StrictModel):
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
    liveness_states: Annotated[list[State], CAPPED] | None = None
    mask_states: Annotated[list[State], CAPPED] | None = None
    face_quality: FaceQualityPolicy = FaceQualityPolicy()
    body_attributes: BodyAttributesPolicy = BodyAttributesPolicy()
    pitch_threshold: Angle | None = None
    roll_threshold: Angle | None = None
    yaw_threshold: Angle | None = None


class ExtractPolicy(StrictModel):
    """``extract_policy`` (LUNA docs). Defaults: every flag 0, ``fd_score_threshold`` 0.0."""

    extract_basic_attributes: Flag = 0
    extract_face_descriptor: Flag = 0
    extract_body_descriptor: Flag = 0
    fd_score_threshold: Threshold = 0.0


class MatchPolicy(StrictModel):
    """One ``match_policy`` item (LUNA docs). ``candidates`` is required; defaults: ``label`` "",
    ``limit`` 3 (1..1000), ``targets`` null (= all), ``threshold`` null (= none)."""

    candidates: MatchCandidates
    filters: EventFilters = EventFilters()
    label: Str128 = ""
    limit: Limit = 3
    targets: Annotated[list[MatchTarget], CAPPED] | None = None
    threshold: Threshold | None = None


# --- storage ---------------------------------------------------------------------------------


class FaceSamplePolicy(StrictModel):
    """``face_sample_policy``: ``store_sample`` 1 by default."""

    filters: EventFilters = EventFilters()
    store_sample: Flag = 1


class BodySamplePolicy(StrictModel):
    """``body_sample_policy``: ``store_sample`` 1 by default."""

    filters: EventFilters = EventFilters()
    store_sample: Flag = 1


class ImageOriginPolicy(StrictModel):
    """``image_origin_policy``: ``store_image`` 1, ``use_external_references`` 0 by default."""

    filters: EventFilters = EventFilters()
    store_image: Flag = 1
    use_external_references: Flag = 0


class AttributePolicy(StrictModel):
    """``attribute_policy``: ``store_attribute`` 1, ``ttl`` null (= server default) or
    1..31536000 seconds."""

    filters: EventFilters = EventFilters()
    store_attribute: Flag = 1
    ttl: Ttl | None = None


class LinkToListPolicy(StrictModel):
    """One ``link_to_lists_policy`` item: ``list_id`` required."""

    list_id: UuidStr
    filters: EventFilters = EventFilters()


class FacePolicy(StrictModel):
    """``face_policy``: ``store_face`` 0 (faces are created only on request),
    ``set_sample_as_avatar`` 1, no list links by default."""

    filters: EventFilters = EventFilters()
    store_face: Flag = 0
    set_sample_as_avatar: Flag = 1
    link_to_lists_policy: Annotated[list[LinkToListPolicy], CAPPED] = Field(default_factory=list)


class EventPolicy(StrictModel):
    """``event_policy``: ``store_event`` 1, ``wait_saving`` 0 by default."""

    filters: EventFilters = EventFilters()
    store_event: Flag = 1
    wait_saving: Flag = 0


class NotificationPolicy(StrictModel):
    """``notification_policy`` (fields not published; our inference): ``send_notification`` 1."""

    filters: EventFilters = EventFilters()
    send_notification: Flag = 1


class StoragePolicy(StrictModel):
    """``storage_policy`` of a handler: every sub-policy present with its defaults."""

    face_sample_policy: FaceSamplePolicy = FaceSamplePolicy()
    body_sample_policy: BodySamplePolicy = BodySamplePolicy()
    image_origin_policy: ImageOriginPolicy = ImageOriginPolicy()
    attribute_policy: AttributePolicy = AttributePolicy()
    face_policy: FacePolicy = Field(default_factory=FacePolicy)
    event_policy: EventPolicy = EventPolicy()
    notification_policy: NotificationPolicy = NotificationPolicy()


class ConditionalTag(StrictModel):
    """One ``conditional_tags_policy`` item: attach ``tag`` (1..128 chars) when filters pass."""

    tag: Tag
    filters: EventFilters = EventFilters()


class HandlerPolicies(StrictModel):
    """Handler policies (LUNA ``Policies``); ``{}`` is valid and means all defaults."""

    detect_policy: DetectPolicy = DetectPolicy()
    extract_policy: ExtractPolicy = ExtractPolicy()
    match_policy: Annotated[list[MatchPolicy], CAPPED] = Field(default_factory=list)
    storage_policy: StoragePolicy = Field(default_factory=StoragePolicy)
    conditional_tags_policy: Annotated[list[ConditionalTag], CAPPED] = Field(default_factory=list)


# --- verifier --------------------------------------------------------------------------------


class VerifierFaceSamplePolicy(FaceSamplePolicy):
    """Verifier ``face_sample_policy``: a 1:1 check stores nothing by default (0)."""

    store_sample: Flag = 0


class VerifierAttributePolicy(AttributePolicy):
    """Verifier ``attribute_policy``: ``store_attribute`` 0 by default."""

    store_attribute: Flag = 0


class VerifierStoragePolicy(StrictModel):
    """Verifier ``storage_policy``: only face samples and attributes."""

    face_sample_policy: VerifierFaceSamplePolicy = VerifierFaceSamplePolicy()
    attribute_policy: VerifierAttributePolicy = VerifierAttributePolicy()


class VerifierPolicies(StrictModel):
    """Verifier policies; ``verification_threshold`` 0.9 by default."""

    detect_policy: DetectPolicy = DetectPolicy()
    extract_policy: ExtractPolicy = ExtractPolicy()
    storage_policy: VerifierStoragePolicy = VerifierStoragePolicy()
    verification_threshold: Threshold = 0.9


# --- request bodies --------------------------------------------------------------------------


class HandlerBody(StrictModel):
    """POST/PUT /1/handlers. The dynamic/static rule on ``policies`` is checked by the parser."""

    description: Str128 = ""
    is_dynamic: bool = False
    policies: HandlerPolicies | None = None


class VerifierBody(StrictModel):
    """POST/PUT /1/verifiers."""

    description: Str128 = ""
    policies: VerifierPolicies = VerifierPolicies()


class ValidatorBody(StrictModel):
    """POST /1/handlers/validator."""

    policies: HandlerPolicies
