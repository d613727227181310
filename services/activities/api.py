"""HTTP API of the activities service: activities, sign-ups, attendance and hours, publicity, demands.

No lock and no memory of this process decides anything, so any number of replicas may serve it:
- a change of the activity itself (publish, start, complete, cancel, revise, publicity) is read, decided by the rules
  in ``domain`` and written conditionally on the version it read (:func:`change_activity`), its events in the same
  write (outbox); a decision that depends on the sign-ups is also conditional on the roster's version;
- a change of sign-ups (sign-up, cancellation with the promotion it causes, approval, check-in/out, corrections) is
  decided by ONE conditional write on the activity (capacity, order of arrival, counters and events together) after
  claiming the sign-up documents it changes, then applied to them (``store``: claim → commit → apply).
Domain refusals become RFC 9457 problems in one place (:func:`problem_of`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from shared import clock
from shared.aggregates import VERSION, Aggregates, Contended, Write, backoff, versioned
from shared.contracts.envelope import Envelope
from shared.contracts.events import (
    ActivityCancelled,
    ActivityCompleted,
    ActivityPublished,
    AttendanceRecorded,
    DemandRecorded,
    Event,
    Participation,
    PublicityPublished,
    ServiceHoursCorrected,
    SignUpCancelled,
    SignUpConfirmed,
    VolunteerSignedUp,
)
from shared.identity import Identity, IdentityDep, require_roles
from shared.problems import Problem, problem_response
from shared.programme import LineOfWork, Theme
from shared.storage import MAX_PAGE_OFFSET, Doc

from .batches import DECISION, SignUpBatches, counted, not_found_activity
from .domain import (
    CHECKIN_GRACE,
    HOURS_STEP,
    Activity,
    ActivityDraft,
    ActivityError,
    ActivityNotEditable,
    ActivityStatus,
    ActivityValidationError,
    CheckInCodeMismatch,
    CheckInRefused,
    Demand,
    DemandStatus,
    InvalidCorrection,
    OutsideCheckInWindow,
    SignUpRefused,
    SignUpStatus,
    Violation,
    VolunteerInactive,
    VolunteerUnknown,
    approve_signup,
    cancel,
    cancel_signup,
    change_demand_status,
    checkin_code,
    checkin_window,
    complete,
    correct_hours,
    create_activity,
    decide_signup,
    make_correction,
    parse_draft,
    parse_publicity,
    publicise,
    publish,
    record_check_in,
    record_check_out,
    reject_signup,
    revise_activity,
    start,
    verify_checkin,
    violations_from_validation_error,
    waitlist_order,
)
from .scope import (
    acting_reach,
    can_see,
    demand_units,
    drafts_filter,
    masked_outside,
    reach_of,
    require_admin_of,
)
from .store import (
    ACTIVITIES,
    ATTEMPTS,
    DEMANDS,
    LISTING_EXCLUDE,
    ROSTER_V,
    SOURCE,
    Change,
    Claim,
    Committed,
    Store,
    activity_fields,
    attendance_doc,
    attendance_of,
    bson,
    bump,
    confirmed_count,
    count_of,
    to_activity,
    to_demand,
    to_signup,
)

log = logging.getLogger("stvs.activities")
router = APIRouter()
ADMINS = require_roles("province_admin", "unit_admin")
CLOCK_SKEW = timedelta(minutes=2)
RUNNING = [ActivityStatus.PUBLISHED.value, ActivityStatus.ONGOING.value]
CONFIRMED, WAITLISTED = SignUpStatus.CONFIRMED, SignUpStatus.WAITLISTED

VolunteerId = Annotated[str, Path(pattern=r"^[^.$\s]{1,64}$", description="志愿者 ID")]
ActivityId = Annotated[str, Path(min_length=1, max_length=64, description="活动 ID")]


# ---------------------------------------------------------------- plumbing


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


StoreDep = Annotated[Store, Depends(get_store)]


def get_batches(request: Request) -> SignUpBatches:
    batches: SignUpBatches = request.app.state.batches
    return batches


BatchesDep = Annotated[SignUpBatches, Depends(get_batches)]


def get_secret(request: Request) -> str:
    secret: str = request.app.state.checkin_secret
    return secret


SecretDep = Annotated[str, Depends(get_secret)]


_STATUS_OF: list[tuple[type[ActivityError], int]] = [
    (ActivityValidationError, 422),
    (VolunteerUnknown, 422),
    (VolunteerInactive, 422),
    (SignUpRefused, 409),
    (CheckInCodeMismatch, 403),
    (CheckInRefused, 409),
    (InvalidCorrection, 422),
]


def problem_of(error: ActivityError) -> Problem:
    """The one mapping of domain refusals to problem details (Chinese message, stable code)."""
    status = next((s for cls, s in _STATUS_OF if isinstance(error, cls)), 409)
    if error.code == "cancel_reason_required":
        status = 422
    errors = None
    if isinstance(error, ActivityValidationError):
        errors = [{"field": v.field, "message": v.message} for v in error.violations]
    return Problem(status, error.code, error.message, errors=errors)


def install_activity_errors(app: FastAPI) -> None:
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ActivityError)
        return problem_response(problem_of(exc), request.url.path)

    app.add_exception_handler(ActivityError, handle)


def envelope(data: Event, subject: str) -> Envelope[Any]:
    return Envelope.new(data, source=SOURCE, subject=subject)


def no_counts() -> dict[str, int]:
    return {s.value: 0 for s in SignUpStatus}


def activity_view(doc: Mapping[str, Any], mine: Mapping[str, Any] | None = None) -> dict[str, Any]:
    fields = {k: doc.get(k) for k in Activity.model_fields if k != "id"}
    out: dict[str, Any] = {"id": doc["_id"], **fields}
    out["status_label"] = ActivityStatus(doc["status"]).label
    out["line_of_work_label"] = LineOfWork(doc["line_of_work"]).label
    out["theme_labels"] = [Theme(t).label for t in doc.get("themes", [])]
    out["signup_counts"] = {**no_counts(), **(doc.get("counts") or {})}
    for key in ("created_at", "published_at", "started_at", "completed_at", "cancelled_at"):
        if doc.get(key) is not None:
            out[key] = doc[key]
    if doc["status"] == ActivityStatus.COMPLETED.value:
        # As ActivityCompleted carried them, with every later correction (ServiceHoursCorrected) applied.
        out["total_hours"] = str(Decimal(str(doc.get("total_hours") or "0")).quantize(HOURS_STEP))
        out["participants"] = int(doc.get("participants") or 0)
    if mine is not None:
        out["my_signup"] = signup_view(mine)
    return out


def signup_view(entry: Mapping[str, Any], waitlist_position: int | None = None) -> dict[str, Any]:
    status = SignUpStatus(entry["status"])
    out = {
        "activity_id": entry["activity_id"],
        "volunteer_id": entry["volunteer_id"],
        "display_name": entry.get("display_name"),
        "sequence": entry["sequence"],
        "status": status.value,
        "status_label": status.label,
        "signed_up_at": entry["signed_up_at"],
        "by": entry.get("by"),
    }
    if waitlist_position is not None:
        out["waitlist_position"] = waitlist_position
    return out


def require_running(doc: Mapping[str, Any], action: str) -> None:
    status = ActivityStatus(doc["status"])
    if status not in (ActivityStatus.PUBLISHED, ActivityStatus.ONGOING):
        raise Problem(409, "activity_not_open", f"活动状态为“{status.label}”，不能{action}")


# ---------------------------------------------------------------- activities


PLACE_LEFT = {"$lt": [counted(CONFIRMED), "$capacity"]}
PLACE_FREE = {"$and": [PLACE_LEFT, {"$eq": [counted(WAITLISTED), 0]}]}  # a place nobody on the waitlist is owed


def premise(status: SignUpStatus) -> dict[str, Any] | None:
    """What must still hold of the activity when a sign-up is committed with ``status``."""
    if status is CONFIRMED:
        return PLACE_FREE
    if status is WAITLISTED:
        return {"$not": [PLACE_FREE]}
    return None


async def reread(store: Store, activity_id: str, attempt: int) -> Doc | None:
    """The activity again after a commit found its premises changed (after a short, jittered pause)."""
    await backoff(attempt)
    return await store.get(ACTIVITIES, activity_id, DECISION)


# ---------------------------------------------------------------- activities


async def check_demands(store: Store, demand_ids: tuple[str, ...]) -> None:
    missing = [d for d in demand_ids if await store.get(DEMANDS, d, {"_id": 1}) is None]
    if missing:
        raise ActivityValidationError([Violation(field="demand_ids", message=f"对接需求不存在：{'、'.join(missing)}")])


@router.post("/activities", status_code=201, tags=["活动"], summary="创建活动（草稿）")
async def create(
    store: StoreDep, body: Annotated[dict[str, Any], Body()], identity: Identity = ADMINS
) -> dict[str, Any]:
    draft = parse_draft(body)
    require_admin_of(await reach_of(store, identity), draft.unit_id)
    await check_demands(store, draft.demand_ids)
    activity = create_activity(draft, activity_id=str(uuid.uuid4()))
    now = clock.now()
    doc: Doc = {
        "_id": activity.id,
        **activity_fields(activity),
        "next_seq": 0,
        "counts": no_counts(),
        "created_at": now,
        "created_by": identity.subject,
        "updated_at": now,
        VERSION: 1,
        ROSTER_V: 0,
    }
    await store.insert(ACTIVITIES, doc, [])
    return activity_view(doc)


Decision = tuple[dict[str, Any], list[Envelope[Any]], dict[str, Any]]


async def change_activity(
    store: Store,
    activity_id: str,
    identity: Identity,
    decide: Callable[[Doc, Activity], Awaitable[Decision]],
) -> Doc:
    """Read, decide and write one activity conditionally on the version it was read at (and on whatever else the
    decision names: the roster's version when it read the sign-ups); decided again after a concurrent change."""
    reach = await reach_of(store, identity)
    for attempt in range(ATTEMPTS):
        doc = await store.get(ACTIVITIES, activity_id, DECISION)
        if doc is None:
            raise not_found_activity()
        require_admin_of(reach, doc["unit_id"])
        update, events, condition = await decide(doc, to_activity(doc))
        update.setdefault("$set", {})["updated_at"] = clock.now()
        filter_ = {"_id": activity_id, VERSION: doc.get(VERSION), **condition}
        written = await store.outbox.update_one(ACTIVITIES, filter_, versioned(update), events)
        if written.matched_count:
            changed = await store.get(ACTIVITIES, activity_id, LISTING_EXCLUDE)
            assert changed is not None
            return changed
        await backoff(attempt)
    raise Contended(ACTIVITIES, activity_id, ATTEMPTS)


def roster_unchanged(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The condition of a decision taken on the sign-ups read with ``doc``: nobody's sign-up changed meanwhile."""
    return {ROSTER_V: doc.get(ROSTER_V)}


@router.patch("/activities/{activity_id}", tags=["活动"], summary="修改活动信息")
async def revise(
    store: StoreDep,
    activity_id: ActivityId,
    body: Annotated[dict[str, Any], Body()],
    identity: Identity = ADMINS,
) -> dict[str, Any]:
    if "demand_ids" in body and isinstance(body["demand_ids"], list):
        await check_demands(store, tuple(str(d) for d in body["demand_ids"]))
    grew = False

    async def decide(doc: Doc, activity: Activity) -> Decision:
        nonlocal grew
        if activity.status not in (ActivityStatus.DRAFT, ActivityStatus.PUBLISHED, ActivityStatus.ONGOING):
            raise ActivityNotEditable(activity.status)
        confirmed = confirmed_count(doc)
        current = activity.model_dump(include=set(ActivityDraft.model_fields))
        draft = parse_draft({**current, **body}, confirmed_count=confirmed)
        revised = revise_activity(activity, draft, confirmed_count=confirmed)
        grew = revised.capacity > activity.capacity
        # The capacity may not fall below the confirmed sign-ups, whatever was confirmed since the read.
        keep_places = {"$expr": {"$lte": [counted(CONFIRMED), revised.capacity]}}
        return {"$set": activity_fields(revised)}, [], keep_places

    doc = await change_activity(store, activity_id, identity, decide)
    if grew:  # the new places go to the waitlist first, earliest first
        await fill(store, activity_id)
        doc = await store.get(ACTIVITIES, activity_id, LISTING_EXCLUDE) or doc
    return activity_view(doc)


@router.post("/activities/{activity_id}/publish", tags=["活动"], summary="发布活动")
async def publish_activity(store: StoreDep, activity_id: ActivityId, identity: Identity = ADMINS) -> dict[str, Any]:
    async def decide(doc: Doc, activity: Activity) -> Decision:
        published, now = publish(activity), clock.now()
        data = ActivityPublished(
            activity_id=activity.id,
            unit_id=activity.unit_id,
            title=activity.title,
            line_of_work=activity.line_of_work.value,
            themes=sorted(t.value for t in activity.themes),
            county=activity.county,
            starts_at=activity.starts_at,
            ends_at=activity.ends_at,
            capacity=activity.capacity,
            signup_closes_at=activity.signup_closes_at,
            published_at=now,
        )
        return {"$set": {"status": published.status.value, "published_at": now}}, [envelope(data, activity.id)], {}

    return activity_view(await change_activity(store, activity_id, identity, decide))


@router.post("/activities/{activity_id}/start", tags=["活动"], summary="活动开始（进行中）")
async def start_activity(store: StoreDep, activity_id: ActivityId, identity: Identity = ADMINS) -> dict[str, Any]:
    async def decide(doc: Doc, activity: Activity) -> Decision:
        return {"$set": {"status": start(activity).status.value, "started_at": clock.now()}}, [], {}

    return activity_view(await change_activity(store, activity_id, identity, decide))


def participants(roster: list[Doc], activity: Activity) -> list[Participation]:
    """Everyone with an attendance record (checked in, or hours corrected), with effective hours."""
    out = []
    for entry in roster:
        if entry.get("attendance"):
            attendance = attendance_of(entry, activity.id, entry["volunteer_id"])
            hours = attendance.effective_hours(activity.starts_at, activity.ends_at)
            name = entry.get("display_name") or entry["volunteer_id"]
            out.append(Participation(volunteer_id=entry["volunteer_id"], display_name=name, hours=float(hours)))
    return out


@router.post("/activities/{activity_id}/complete", tags=["活动"], summary="活动结束，汇总服务时长")
async def complete_activity(store: StoreDep, activity_id: ActivityId, identity: Identity = ADMINS) -> dict[str, Any]:
    async def decide(doc: Doc, activity: Activity) -> Decision:
        completed, now = complete(activity), clock.now()
        people = participants(await store.roster(doc), activity)
        total = sum((Decimal(str(p.hours)) for p in people), Decimal("0"))
        data = ActivityCompleted(
            activity_id=activity.id,
            unit_id=activity.unit_id,
            title=activity.title,
            line_of_work=activity.line_of_work.value,
            themes=sorted(t.value for t in activity.themes),
            starts_at=activity.starts_at,
            ends_at=activity.ends_at,
            completed_at=now,
            people_served=activity.publicity.people_served if activity.publicity else None,
            participants=people,
            total_hours=float(total),
        )
        sets = {
            "status": completed.status.value,
            "completed_at": now,
            "total_hours": str(total),
            "participants": len(people),
        }
        return {"$set": sets}, [envelope(data, activity.id)], roster_unchanged(doc)

    return activity_view(await change_activity(store, activity_id, identity, decide))


class CancelBody(BaseModel):
    reason: str = Field("", max_length=500, description="取消原因（必填）")


@router.post("/activities/{activity_id}/cancel", tags=["活动"], summary="取消活动（须填写原因）")
async def cancel_activity(
    store: StoreDep, activity_id: ActivityId, body: CancelBody, identity: Identity = ADMINS
) -> dict[str, Any]:
    async def decide(doc: Doc, activity: Activity) -> Decision:
        cancelled, now = cancel(activity, body.reason), clock.now()
        told = sorted(d["volunteer_id"] for d in await store.roster(doc) if SignUpStatus(d["status"]).is_active)
        data = ActivityCancelled(
            activity_id=activity.id,
            unit_id=activity.unit_id,
            title=activity.title,
            starts_at=activity.starts_at,
            reason=cancelled.cancel_reason,
            cancelled_at=now,
            signed_up_volunteer_ids=told,
        )
        sets = {"status": cancelled.status.value, "cancel_reason": cancelled.cancel_reason, "cancelled_at": now}
        return {"$set": sets}, [envelope(data, activity.id)], roster_unchanged(doc)

    return activity_view(await change_activity(store, activity_id, identity, decide))


@router.post("/activities/{activity_id}/publicity", tags=["活动"], summary="发布活动宣传信息（活动结束后）")
async def publish_publicity(
    store: StoreDep,
    activity_id: ActivityId,
    body: Annotated[dict[str, Any], Body()],
    identity: Identity = ADMINS,
) -> dict[str, Any]:
    record = parse_publicity(body)

    async def decide(doc: Doc, activity: Activity) -> Decision:
        publicised, now = publicise(activity, record), clock.now()
        data = PublicityPublished(
            activity_id=activity.id,
            unit_id=activity.unit_id,
            summary=record.summary,
            people_served=record.people_served,
            links=[str(u) for u in (*record.links, *record.photo_urls)],
            published_at=now,
            starts_at=activity.starts_at,
            previous_people_served=activity.publicity.people_served if activity.publicity else 0,
        )
        sets = {"publicity": bson(publicised.publicity), "publicity_published_at": now}
        return {"$set": sets}, [envelope(data, activity.id)], {}

    return activity_view(await change_activity(store, activity_id, identity, decide))


@router.get("/activities/{activity_id}", tags=["活动"], summary="活动详情")
async def get_activity(store: StoreDep, activity_id: ActivityId, identity: IdentityDep) -> dict[str, Any]:
    doc = await store.get(ACTIVITIES, activity_id, DECISION)
    if doc is None or not can_see(await reach_of(store, identity), doc):
        raise not_found_activity()
    mine = await store.signup(doc, identity.volunteer_id) if identity.volunteer_id else None
    return activity_view(doc, mine)


@router.get("/activities", tags=["活动"], summary="活动列表（志愿者看到已发布的活动）")
async def list_activities(
    store: StoreDep,
    identity: IdentityDep,
    unit_id: str | None = None,
    status: ActivityStatus | None = None,
    line_of_work: LineOfWork | None = None,
    theme: Theme | None = None,
    from_: Annotated[AwareDatetime | None, Query(alias="from", description="开始时间不早于")] = None,
    to: Annotated[AwareDatetime | None, Query(description="开始时间早于")] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_PAGE_OFFSET, description="跳过的条数")] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    filter_: dict[str, Any] = {}
    if unit_id is not None:
        filter_["unit_id"] = unit_id
    if status is not None:
        filter_["status"] = status.value
    elif identity.role == "volunteer":
        filter_["status"] = ActivityStatus.PUBLISHED.value  # the public listing: open for sign-up
    if line_of_work is not None:
        filter_["line_of_work"] = line_of_work.value
    if theme is not None:
        filter_["themes"] = theme.value
    window: dict[str, Any] = {}
    if from_ is not None:
        window["$gte"] = from_
    if to is not None:
        window["$lt"] = to
    if window:
        filter_["starts_at"] = window
    # Drafts only for the administrators of the organising unit (or of a unit above it) and the province.
    reach = await reach_of(store, identity)
    drafts = drafts_filter(reach, unit_id, status)
    if drafts is None:
        return {"items": [], "total": 0, "offset": offset, "limit": limit}
    filter_.update(drafts)
    total, docs = await store.find(
        ACTIVITIES, filter_, sort="starts_at", offset=offset, limit=limit, projection=LISTING_EXCLUDE
    )
    return {"items": [activity_view(d) for d in docs], "total": total, "offset": offset, "limit": limit}


# ---------------------------------------------------------------- sign-ups


class SignUpBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    volunteer_id: str | None = Field(None, pattern=r"^[^.$\s]{1,64}$", description="管理员代志愿者报名时填写")


def acting_volunteer(identity: Identity, volunteer_id: str | None) -> tuple[str, Literal["volunteer", "admin"]]:
    """Whose sign-up it is and who acts: the volunteer for themself, or an administrator for a volunteer."""
    if identity.role == "volunteer":
        if not identity.volunteer_id:
            raise Problem(403, "no_volunteer", "当前账号未关联志愿者身份")
        if volunteer_id not in (None, identity.volunteer_id):
            raise Problem(403, "not_yourself", "志愿者只能为本人报名或取消报名")
        return identity.volunteer_id, "volunteer"
    if identity.role not in ("province_admin", "unit_admin"):
        raise Problem(403, "forbidden_role", "当前账号的角色无权执行此操作")
    if not volunteer_id:
        raise Problem(422, "volunteer_required", "管理员代为操作时必须指定志愿者", errors=[{"field": "volunteer_id"}])
    return volunteer_id, "admin"


def signup_not_found() -> Problem:
    return Problem(404, "signup_not_found", "未找到该志愿者的报名记录")


# Refusals after which a claim is given back unchanged. Anything else (the database unreachable in the middle of a
# commit...) leaves the claim: the commit may have happened, and the claim's settlement will find out.
REFUSALS = (ActivityError, Problem, Contended)


async def claimed_for(
    store: Store, activity_id: str, volunteer_id: str, extra: Awaitable[Any] | None = None
) -> tuple[Claim, Doc | None, Any]:
    """Claim the volunteer's sign-up document and read the activity (and ``extra``) at the same time."""
    reads: list[Awaitable[Any]] = [store.claim(activity_id, volunteer_id), store.get(ACTIVITIES, activity_id, DECISION)]
    if extra is not None:
        reads.append(extra)
    results = await asyncio.gather(*reads, return_exceptions=True)
    claim = results[0]
    if isinstance(claim, BaseException):
        raise claim
    for result in results[1:]:
        if isinstance(result, BaseException):
            await store.release(claim)
            raise result
    assert isinstance(claim, Claim)
    activity: Doc | None = results[1]  # type: ignore[assignment]
    return claim, activity, results[2] if extra is not None else None


async def commit_or_refuse(
    store: Store,
    claim: Claim,
    activity: Doc | None,
    decide: Callable[[Doc], Awaitable[tuple[list[Change], dict[str, Any]]] | tuple[list[Change], dict[str, Any]]],
) -> tuple[Committed, list[Change]]:
    """Decide on the activity and commit; decided again on a fresh read while a premise moved. A refusal gives the
    claims back. ``decide`` returns the changes and the keyword arguments of :meth:`Store.commit`."""
    changes: list[Change] = []
    try:
        for attempt in range(ATTEMPTS):
            if activity is None:
                raise not_found_activity()
            decided = decide(activity)
            changes, commit = await decided if asyncio.iscoroutine(decided) else decided  # type: ignore[misc]
            committed = await store.commit(claim.activity_id, changes, **commit)
            if committed is not None:
                return committed, changes
            for change in changes:
                if change.claim is not claim:  # a second claim (the waitlist's head) is chosen again
                    await store.release(change.claim)
            activity = await reread(store, claim.activity_id, attempt)
        raise Contended(ACTIVITIES, claim.activity_id, ATTEMPTS)
    except REFUSALS:
        for change in changes:
            if change.claim is not claim:
                await store.release(change.claim)
        await store.release(claim)
        raise


@router.post("/activities/{activity_id}/signups", status_code=201, tags=["报名"], summary="报名（满员进入候补）")
async def sign_up(
    store: StoreDep,
    batches: BatchesDep,
    activity_id: ActivityId,
    identity: IdentityDep,
    body: Annotated[SignUpBody | None, Body()] = None,
) -> dict[str, Any]:
    volunteer_id, by = acting_volunteer(identity, body.volunteer_id if body else None)
    reach = await acting_reach(store, identity, volunteer_id, by)
    claim = await store.claim(activity_id, volunteer_id)
    prior = claim.status

    def decide(doc: Mapping[str, Any], volunteer: Doc | None) -> tuple[Change, SignUpStatus | None, SignUpStatus]:
        if by == "admin":
            require_admin_of(reach, doc["unit_id"])
        elif not can_see(reach, doc):
            raise not_found_activity()
        known = volunteer is not None and "status" in volunteer
        active = volunteer is not None and volunteer.get("status") == "active" and bool(volunteer.get("unit_ids"))
        now = clock.now()
        status = decide_signup(
            to_activity(doc),
            now=now,
            volunteer_known=known,
            volunteer_active=active,
            already_signed=prior is not None and prior.is_active,
            confirmed_count=count_of(doc, CONFIRMED),
            waitlisted_count=count_of(doc, WAITLISTED),
        )
        fields = {
            "activity_id": activity_id,
            "volunteer_id": volunteer_id,
            "status": status.value,
            "signed_up_at": now,
            "display_name": volunteer.get("display_name") if volunteer else None,
            "by": by,
        }
        data = VolunteerSignedUp(
            activity_id=activity_id, volunteer_id=volunteer_id, status=status.value, signed_up_at=now
        )
        return Change(claim, fields, [envelope(data, activity_id)], sequence=True), prior, status

    try:
        outcome = await batches.submit(claim, decide)
    except REFUSALS:
        await store.release(claim)
        raise
    committed = outcome.committed
    entry = {**outcome.change.fields, **committed.fields[volunteer_id]}
    if outcome.waitlist_position is not None and committed.count(CONFIRMED) < int(committed.doc["capacity"]):
        await fill(store, activity_id)  # a place is owed to the waitlist (a promotion left unfinished)
    return signup_view(entry, outcome.waitlist_position)


async def claim_head(store: Store, activity: Doc) -> Claim | Literal["none", "retry"]:
    """Claim the earliest waitlisted sign-up of ``activity`` (as read): the next one a free place goes to."""
    if count_of(activity, WAITLISTED) == 0:
        return "none"
    head = await store.waitlist_head(activity)
    if head is None:  # counted, but its document not visible yet: read again
        return "retry"
    volunteer_id = head["volunteer_id"]
    got = await store.try_claim(activity["_id"], volunteer_id)
    if not isinstance(got, Claim):
        # Held: by its own sign-up, committed and being applied (help it along), by a dead process (settled), or by
        # another change under way (wait for it).
        entry = (activity.get("pending") or {}).get(volunteer_id)
        token = (got.get("claim") or {}).get("token")
        if entry and not entry.get("void") and entry["token"] == token:
            await store.apply_entry(activity["_id"], volunteer_id, entry)
        else:
            await store.settle_if_stale(activity["_id"], volunteer_id, got)
        return "retry"
    if got.status is not WAITLISTED or got.doc.get("sequence") != head["sequence"]:
        await store.release(got)  # changed since it was read
        return "retry"
    return got


def promotion(head: Claim, activity_id: str, now: datetime) -> Change:
    data = SignUpConfirmed(activity_id=activity_id, volunteer_id=head.volunteer_id, confirmed_at=now, reason="promoted")
    return Change(head, {"status": CONFIRMED.value, "confirmed_at": now}, [envelope(data, activity_id)])


async def fill(store: Store, activity_id: str) -> list[str]:
    """Promote waitlisted sign-ups into the free places, earliest first; returns who moved up.

    One conditional write per promotion (a place still free when it applies), so replicas filling at once never
    promote more than there are places, and the head of the waitlist is always the one promoted.
    """
    promoted: list[str] = []
    failures = 0
    while failures < ATTEMPTS:
        activity = await store.get(ACTIVITIES, activity_id, DECISION)
        if (
            activity is None
            or activity["status"] not in RUNNING
            or count_of(activity, CONFIRMED) >= int(activity["capacity"])
        ):
            return promoted
        head = await claim_head(store, activity)
        if head == "none":
            return promoted
        if head == "retry":
            failures += 1
            await backoff(failures)
            continue
        change = promotion(head, activity_id, clock.now())
        try:
            committed = await store.commit(
                activity_id,
                [change],
                guard={
                    VERSION: activity.get(VERSION),
                    "counts.pending_approval": count_of(activity, SignUpStatus.PENDING_APPROVAL),
                },
                expr=PLACE_LEFT,
                inc=bump((WAITLISTED.value, CONFIRMED)),
            )
        except Contended:
            await store.release(head)
            raise
        if committed is None:
            await store.release(head)
            failures += 1
            await backoff(failures)
            continue
        await store.finish(committed, [change])
        promoted.append(head.volunteer_id)
    return promoted


@router.delete("/activities/{activity_id}/signups/{volunteer_id}", tags=["报名"], summary="取消报名（候补依次递补）")
async def cancel_sign_up(
    store: StoreDep, activity_id: ActivityId, volunteer_id: VolunteerId, identity: IdentityDep
) -> dict[str, Any]:
    _, by = acting_volunteer(identity, volunteer_id)
    reach = await reach_of(store, identity)
    claim, activity, _ = await claimed_for(store, activity_id, volunteer_id)
    cancelled_status = SignUpStatus.CANCELLED
    promoted: list[str] = []

    async def decide(doc: Doc) -> tuple[list[Change], dict[str, Any]]:
        if by == "admin":
            require_admin_of(reach, doc["unit_id"])
        require_running(doc, "取消报名")
        if claim.status is None:
            raise signup_not_found()
        cancelled, now = cancel_signup(to_signup(claim.doc)), clock.now()
        data = SignUpCancelled(activity_id=activity_id, volunteer_id=volunteer_id, cancelled_at=now, by=by)
        fields = {"status": cancelled.status.value, "cancelled_at": now}
        changes = [Change(claim, fields, [envelope(data, activity_id)])]
        moves: list[tuple[str | None, SignUpStatus]] = [(claim.doc["status"], cancelled_status)]
        guard: dict[str, Any] = {VERSION: doc.get(VERSION)}
        promoted.clear()
        if claim.status is CONFIRMED:
            # The place goes to the head of the waitlist in the same write: nobody else can take it meanwhile.
            head: Claim | str = "retry"
            for attempt in range(ATTEMPTS):
                head = await claim_head(store, doc)
                if head != "retry":
                    break
                doc = await reread(store, activity_id, attempt) or doc
                guard[VERSION] = doc.get(VERSION)
            if isinstance(head, Claim):
                changes.append(promotion(head, activity_id, now))
                moves.append((WAITLISTED.value, CONFIRMED))
                guard["counts.pending_approval"] = count_of(doc, SignUpStatus.PENDING_APPROVAL)
                promoted.append(head.volunteer_id)
            elif head == "none":
                guard["counts.waitlisted"] = 0  # nobody waited: the place is free for the next sign-up
            else:
                raise Contended(ACTIVITIES, activity_id, ATTEMPTS)
        commit = {"guard": guard, "inc": bump(*moves), "sets": {"updated_at": now}}
        return changes, commit

    committed, changes = await commit_or_refuse(store, claim, activity, decide)
    await store.finish(committed, changes)
    if committed.count(WAITLISTED) and committed.count(CONFIRMED) < int(committed.doc["capacity"]):
        promoted += await fill(store, activity_id)
    (view,) = await masked_outside(store, reach, [signup_view({**claim.doc, "status": cancelled_status.value})])
    return {**view, "promoted": promoted}


async def review(store: Store, activity_id: str, volunteer_id: str, identity: Identity, approve: bool) -> Doc:
    reach = await reach_of(store, identity)
    claim, activity, _ = await claimed_for(store, activity_id, volunteer_id)
    fields: dict[str, Any] = {}

    def decide(doc: Doc) -> tuple[list[Change], dict[str, Any]]:
        require_admin_of(reach, doc["unit_id"])
        require_running(doc, "审核报名")
        if claim.status is None:
            raise signup_not_found()
        signup, now = to_signup(claim.doc), clock.now()
        events: list[Envelope[Any]] = []
        expr = None
        if approve:
            decided = approve_signup(
                signup,
                capacity=int(doc["capacity"]),
                confirmed_count=count_of(doc, CONFIRMED),
                waitlisted_count=count_of(doc, WAITLISTED),
            )
            expr = premise(decided.status)
            if decided.status is CONFIRMED:
                data: Event = SignUpConfirmed(
                    activity_id=activity_id, volunteer_id=volunteer_id, confirmed_at=now, reason="approved"
                )
                events.append(envelope(data, activity_id))
        else:
            decided = reject_signup(signup)
            data = SignUpCancelled(activity_id=activity_id, volunteer_id=volunteer_id, cancelled_at=now, by="admin")
            events.append(envelope(data, activity_id))
        fields.clear()
        fields.update({"status": decided.status.value, "reviewed_at": now, "reviewed_by": identity.subject})
        commit = {
            "guard": {VERSION: doc.get(VERSION)},
            "expr": expr,
            "inc": bump((claim.doc["status"], decided.status)),
        }
        return [Change(claim, fields, events)], commit

    committed, changes = await commit_or_refuse(store, claim, activity, decide)
    await store.finish(committed, changes)
    return {**claim.doc, **fields}


@router.post("/activities/{activity_id}/signups/{volunteer_id}/approve", tags=["报名"], summary="审核通过报名")
async def approve(
    store: StoreDep, activity_id: ActivityId, volunteer_id: VolunteerId, identity: Identity = ADMINS
) -> dict[str, Any]:
    view = signup_view(await review(store, activity_id, volunteer_id, identity, approve=True))
    return (await masked_outside(store, await reach_of(store, identity), [view]))[0]


@router.post("/activities/{activity_id}/signups/{volunteer_id}/reject", tags=["报名"], summary="审核不通过")
async def reject(
    store: StoreDep, activity_id: ActivityId, volunteer_id: VolunteerId, identity: Identity = ADMINS
) -> dict[str, Any]:
    view = signup_view(await review(store, activity_id, volunteer_id, identity, approve=False))
    return (await masked_outside(store, await reach_of(store, identity), [view]))[0]


@router.get("/activities/{activity_id}/signups", tags=["报名"], summary="报名名单（按报名顺序）")
async def list_sign_ups(
    store: StoreDep,
    activity_id: ActivityId,
    status: SignUpStatus | None = None,
    identity: Identity = ADMINS,
) -> dict[str, Any]:
    doc = await store.get(ACTIVITIES, activity_id, DECISION)
    if doc is None:
        raise not_found_activity()
    reach = await reach_of(store, identity)
    require_admin_of(reach, doc["unit_id"], read=True)
    roster = await store.roster(doc)
    waiting = {s.volunteer_id: i for i, s in enumerate(waitlist_order(to_signup(d) for d in roster), start=1)}
    items = await masked_outside(
        store,
        reach,
        (signup_view(d, waiting.get(d["volunteer_id"])) for d in roster if status in (None, d["status"])),
    )
    return {"items": items, "total": len(items), "counts": {**no_counts(), **(doc.get("counts") or {})}}


async def repair(store: Store) -> int:
    """One pass of the repair sweep (one replica at a time, leased): settle the claims of dead processes and give
    free places owed to a waitlist; returns how many it settled or promoted."""
    if not await store.repair_lease.acquire():
        return 0
    done = 0
    for stale in await store.stale_claims():
        await store.settle(stale["activity_id"], stale["volunteer_id"], stale["claim"]["token"])
        done += 1
    owed = store.db[ACTIVITIES].find(
        {"status": {"$in": RUNNING}, "counts.waitlisted": {"$gt": 0}, "$expr": PLACE_LEFT}, {"_id": 1}
    )
    for doc in [d async for d in owed]:
        done += len(await fill(store, doc["_id"]))
    return done


async def repair_loop(store: Store, interval_s: float) -> None:
    """The repair sweep every ``interval_s`` while the service runs."""
    while True:
        try:
            await repair(store)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("activities repair sweep failed", exc_info=True)
        await asyncio.sleep(interval_s)


# ---------------------------------------------------------------- attendance and hours


class AttendanceBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    volunteer_id: str | None = Field(None, pattern=r"^[^.$\s]{1,64}$", description="管理员代签时填写")
    code: str | None = Field(None, max_length=100, description="志愿者扫码签到时的签到码")
    at: AwareDatetime | None = Field(None, description="管理员补记的签到/签退时刻（不晚于当前时间），缺省为当前时间")


async def attend(
    store: Store, activity_id: str, identity: Identity, body: AttendanceBody, secret: str, kind: Literal["in", "out"]
) -> dict[str, Any]:
    volunteer_id, by = acting_volunteer(identity, body.volunteer_id)
    now = clock.now()
    if by == "volunteer" and not body.code:
        raise Problem(422, "checkin_code_required", "请扫描活动的签到码", errors=[{"field": "code"}])
    if by == "volunteer" and body.at is not None:
        raise Problem(403, "at_for_admins", "只有管理员可以补记签到签退时刻")
    at = body.at or now
    if at > now + CLOCK_SKEW:
        raise Problem(422, "time_in_future", "签到签退时刻不能晚于当前时间", errors=[{"field": "at"}])
    reach = await acting_reach(store, identity, volunteer_id, by)
    claim, doc, _ = await claimed_for(store, activity_id, volunteer_id)
    decided: dict[str, Any] = {}

    def decide(doc: Doc) -> tuple[list[Change], dict[str, Any]]:
        activity = to_activity(doc)
        if by == "admin":
            require_admin_of(reach, doc["unit_id"])
            opens, closes = checkin_window(activity.starts_at, activity.ends_at)
            if not opens <= at <= closes:
                raise OutsideCheckInWindow(CHECKIN_GRACE)
        else:
            verify_checkin(
                body.code or "",
                activity_id=activity_id,
                secret=secret,
                now=now,
                starts_at=activity.starts_at,
                ends_at=activity.ends_at,
            )
        require_running(doc, "签到签退")
        if claim.status is not CONFIRMED:
            raise Problem(409, "not_confirmed", "该志愿者没有本活动的有效报名（报名成功后才能签到签退）")
        attendance = attendance_of(claim.doc, activity_id, volunteer_id)
        attendance = record_check_in(attendance, at) if kind == "in" else record_check_out(attendance, at)
        hours = (
            None if attendance.check_out is None else attendance.effective_hours(activity.starts_at, activity.ends_at)
        )
        data = AttendanceRecorded(
            activity_id=activity_id,
            volunteer_id=volunteer_id,
            check_in_at=attendance.check_in,
            check_out_at=attendance.check_out,
            hours=None if hours is None else float(hours),
        )
        decided.update(activity=activity, attendance=attendance)
        change = Change(claim, {"attendance": attendance_doc(attendance)}, [envelope(data, activity_id)])
        return [change], {"guard": {VERSION: doc.get(VERSION)}}

    committed, changes = await commit_or_refuse(store, claim, doc, decide)
    await store.finish(committed, changes)
    return attendance_view(decided["activity"], decided["attendance"])


def attendance_view(activity: Activity, attendance: Any) -> dict[str, Any]:
    computed = attendance.computed_hours(activity.starts_at, activity.ends_at)
    effective = attendance.effective_hours(activity.starts_at, activity.ends_at)
    return {
        "activity_id": activity.id,
        "volunteer_id": attendance.volunteer_id,
        "check_in": attendance.check_in,
        "check_out": attendance.check_out,
        "computed_hours": str(computed),
        "hours": str(effective),
        "corrections": [
            {"hours": str(c.hours), "reason": c.reason, "by": c.by, "at": c.at} for c in attendance.corrections
        ],
    }


@router.post("/activities/{activity_id}/checkin", tags=["签到"], summary="签到（管理员代签，或志愿者扫码）")
async def check_in(
    store: StoreDep, activity_id: ActivityId, body: AttendanceBody, identity: IdentityDep, secret: SecretDep
) -> dict[str, Any]:
    return await attend(store, activity_id, identity, body, secret, "in")


@router.post("/activities/{activity_id}/checkout", tags=["签到"], summary="签退（管理员代签，或志愿者扫码）")
async def check_out(
    store: StoreDep, activity_id: ActivityId, body: AttendanceBody, identity: IdentityDep, secret: SecretDep
) -> dict[str, Any]:
    return await attend(store, activity_id, identity, body, secret, "out")


@router.get("/activities/{activity_id}/checkin-code", tags=["签到"], summary="活动签到码（二维码内容）")
async def get_checkin_code(
    store: StoreDep, activity_id: ActivityId, secret: SecretDep, identity: Identity = ADMINS
) -> dict[str, Any]:
    doc = await store.get(ACTIVITIES, activity_id, LISTING_EXCLUDE)
    if doc is None:
        raise not_found_activity()
    require_admin_of(await reach_of(store, identity), doc["unit_id"], read=True)
    opens, closes = checkin_window(doc["starts_at"], doc["ends_at"])
    return {
        "activity_id": activity_id,
        "code": checkin_code(activity_id, secret),
        "valid_from": opens,
        "valid_until": closes,
    }


class CorrectionBody(BaseModel):
    hours: Decimal = Field(description="更正后的服务时长（小时）")
    reason: str = Field("", max_length=500, description="补录原因（必填）")


@router.post(
    "/activities/{activity_id}/attendance/{volunteer_id}/correction",
    tags=["签到"],
    summary="补录/更正服务时长（须填写原因，保留全部记录）",
)
async def correct(
    store: StoreDep,
    activity_id: ActivityId,
    volunteer_id: VolunteerId,
    body: CorrectionBody,
    identity: Identity = ADMINS,
) -> dict[str, Any]:
    reach = await acting_reach(store, identity, volunteer_id, "admin")
    claim, doc, _ = await claimed_for(store, activity_id, volunteer_id)
    decided: dict[str, Any] = {}

    def decide(doc: Doc) -> tuple[list[Change], dict[str, Any]]:
        require_admin_of(reach, doc["unit_id"])
        activity = to_activity(doc)
        if activity.status not in (ActivityStatus.ONGOING, ActivityStatus.COMPLETED):
            raise Problem(409, "activity_not_open", f"活动状态为“{activity.status.label}”，不能补录服务时长")
        entry = claim.doc
        if claim.status is None or (not entry.get("attendance") and claim.status is not CONFIRMED):
            raise Problem(409, "not_confirmed", "该志愿者没有本活动的有效报名或签到记录，不能补录")
        now = clock.now()
        correction = make_correction(
            body.hours,
            reason=body.reason,
            by=identity.subject[:64],
            at=now,
            starts_at=activity.starts_at,
            ends_at=activity.ends_at,
        )
        before = attendance_of(entry, activity_id, volunteer_id)
        attendance = correct_hours(before, correction)
        decided.update(activity=activity, attendance=attendance)
        data = AttendanceRecorded(
            activity_id=activity_id,
            volunteer_id=volunteer_id,
            check_in_at=attendance.check_in,
            check_out_at=attendance.check_out,
            hours=float(correction.hours),
            correction_reason=correction.reason,
        )
        fields = {"attendance": attendance_doc(attendance)}
        guard: dict[str, Any] = {VERSION: doc.get(VERSION)}
        if activity.status is not ActivityStatus.COMPLETED:  # completion will carry the corrected hours
            return [Change(claim, fields, [envelope(data, activity_id)])], {"guard": guard}
        # Completed: ActivityCompleted carried the old figure, so reporting is told the change, and the activity's
        # totals move in the same write (conditional on the totals it read).
        previous = before.effective_hours(activity.starts_at, activity.ends_at)
        corrected = ServiceHoursCorrected(
            activity_id=activity_id,
            unit_id=activity.unit_id,
            volunteer_id=volunteer_id,
            starts_at=activity.starts_at,
            previous_hours=float(previous),
            hours=float(correction.hours),
            reason=correction.reason,
            corrected_at=now,
        )
        total = Decimal(str(doc.get("total_hours") or "0")) - previous + correction.hours
        guard["total_hours"] = doc.get("total_hours")
        commit: dict[str, Any] = {"guard": guard, "sets": {"total_hours": str(total), "updated_at": now}}
        if not entry.get("attendance"):  # a new participant (corrected without ever checking in)
            commit["inc"] = {"participants": 1}
        events = [envelope(data, activity_id), envelope(corrected, activity_id)]
        return [Change(claim, fields, events)], commit

    committed, changes = await commit_or_refuse(store, claim, doc, decide)
    await store.finish(committed, changes)
    return attendance_view(decided["activity"], decided["attendance"])


@router.get("/activities/{activity_id}/attendance", tags=["签到"], summary="签到记录与服务时长")
async def list_attendance(store: StoreDep, activity_id: ActivityId, identity: Identity = ADMINS) -> dict[str, Any]:
    doc = await store.get(ACTIVITIES, activity_id, DECISION)
    if doc is None:
        raise not_found_activity()
    require_admin_of(await reach_of(store, identity), doc["unit_id"], read=True)
    activity = to_activity(doc)
    items = [
        attendance_view(activity, attendance_of(d, activity_id, d["volunteer_id"]))
        for d in await store.roster(doc)
        if d.get("attendance")
    ]
    total = sum((Decimal(i["hours"]) for i in items), Decimal("0"))
    return {"items": items, "total_hours": str(total)}


# ---------------------------------------------------------------- demand library (企业创新难题需求库)


class DemandBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    unit_id: str
    enterprise: str
    title: str
    description: str


class DemandStatusBody(BaseModel):
    status: DemandStatus


def demand_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    demand = to_demand(doc)
    return {
        **demand.model_dump(mode="json"),
        "status_label": demand.status.label,
        "recorded_at": doc.get("recorded_at"),
        "updated_at": doc.get("updated_at"),
    }


def demand_event(demand: Demand, recorded_at: datetime) -> Envelope[Any]:
    data = DemandRecorded(
        demand_id=demand.id,
        unit_id=demand.unit_id,
        enterprise=demand.enterprise,
        title=demand.title,
        status=demand.status.value,
        recorded_at=recorded_at,
    )
    return envelope(data, demand.id)


@router.post("/demands", status_code=201, tags=["需求库"], summary="登记企业创新难题需求")
async def create_demand(store: StoreDep, body: DemandBody, identity: Identity = ADMINS) -> dict[str, Any]:
    require_admin_of(await reach_of(store, identity), body.unit_id)
    try:
        demand = Demand(id=str(uuid.uuid4()), **body.model_dump())
    except ValidationError as exc:
        raise ActivityValidationError(violations_from_validation_error(exc)) from exc
    now = clock.now()
    doc: Doc = {"_id": demand.id, **bson(demand.model_dump(exclude={"id"})), "recorded_at": now, "updated_at": now}
    await store.insert(DEMANDS, doc, [demand_event(demand, now)])
    return demand_view(doc)


@router.get("/demands", tags=["需求库"], summary="需求列表")
async def list_demands(
    store: StoreDep,
    identity: IdentityDep,
    unit_id: str | None = None,
    status: DemandStatus | None = None,
    offset: Annotated[int, Query(ge=0, le=MAX_PAGE_OFFSET, description="跳过的条数")] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    filter_: dict[str, Any] = {}
    visible = await demand_units(store, await reach_of(store, identity))
    if visible is not None:
        filter_["unit_id"] = {"$in": sorted(visible)}
    if unit_id is not None:
        filter_["unit_id"] = unit_id if visible is None or unit_id in visible else "#none"
    if status is not None:
        filter_["status"] = status.value
    total, docs = await store.find(
        DEMANDS, filter_, sort="recorded_at", offset=offset, limit=limit, projection={"_outbox": 0, "_outbox_n": 0}
    )
    return {"items": [demand_view(d) for d in docs], "total": total, "offset": offset, "limit": limit}


@router.get("/demands/{demand_id}", tags=["需求库"], summary="需求详情")
async def get_demand(store: StoreDep, demand_id: str, identity: IdentityDep) -> dict[str, Any]:
    doc = await store.get(DEMANDS, demand_id)
    visible = await demand_units(store, await reach_of(store, identity))
    if doc is None or (visible is not None and doc["unit_id"] not in visible):
        raise Problem(404, "demand_not_found", "未找到该需求")
    return demand_view(doc)


@router.patch("/demands/{demand_id}", tags=["需求库"], summary="更新需求状态（待对接/已对接/已解决）")
async def change_demand(
    store: StoreDep, demand_id: str, body: DemandStatusBody, identity: Identity = ADMINS
) -> dict[str, Any]:
    reach = await reach_of(store, identity)

    def decide(doc: Doc | None) -> Write[None]:
        if doc is None:
            raise Problem(404, "demand_not_found", "未找到该需求")
        require_admin_of(reach, doc["unit_id"])
        changed, now = change_demand_status(to_demand(doc), body.status), clock.now()
        return Write({"$set": {"status": changed.status.value, "updated_at": now}}, [demand_event(changed, now)])

    await Aggregates(store.outbox, DEMANDS).change(demand_id, decide)
    doc = await store.get(DEMANDS, demand_id)
    assert doc is not None
    return demand_view(doc)
