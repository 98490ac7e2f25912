"""``POST /api/v1/gateways/enrol``: where a Pi redeems its code (served over HTTPS).

The portal includes :data:`router`; :func:`create_enrolment_app` serves it alone (tests, or a
server that keeps enrolment apart from the portal). The route finds its
:class:`~collector.enrolment.service.EnrolmentService` in ``app.state.enrolment``; without one
it answers 404 with what to configure.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from collector.enrolment.service import EnrolmentRefusedError, EnrolmentService
from zonnewijk_wire.enrolment import ENROL_PATH, EnrolmentRequest

#: Largest request body accepted [bytes]; a real request is about 200.
MAX_BODY_BYTES = 16 * 1024

router = APIRouter(tags=["gateways"])


def _error(status: int, reason: str, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail, "reason": reason}, status_code=status)


@router.post(
    ENROL_PATH,
    summary="redeem a one-time enrolment code for a gateway's credentials and configuration",
    response_model=None,
)
async def enrol(request: Request) -> Response:
    service: EnrolmentService | None = getattr(request.app.state, "enrolment", None)
    if service is None:  # not a fault of this server but a choice: not served here
        return _error(
            404,
            "not_configured",
            "enrolment is not set up on this server (ZONNEWIJK_GATEWAY_BROKER_HOST and the "
            "Mosquitto password and ACL files, docs/gateway-install.md)",
        )
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        service.refused["too_large"] += 1
        return _error(413, "too_large", f"request body above {MAX_BODY_BYTES} bytes")
    try:
        enrolment = EnrolmentRequest.model_validate_json(body)
    except ValidationError as exc:
        service.refused["malformed_request"] += 1
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(body)"
        return _error(400, "malformed_request", f"{where}: {first['msg']}")
    remote = request.client.host if request.client else None
    try:
        grant = await run_in_threadpool(service.redeem, enrolment, remote=remote)
    except EnrolmentRefusedError as exc:
        r = exc.refusal
        return _error(r.status, r.reason, r.message)
    return Response(
        grant.model_dump_json(),
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


def create_enrolment_app(service: EnrolmentService) -> FastAPI:
    """An app that serves the enrolment route only."""
    app = FastAPI(title="Zonnewijk gateway enrolment", docs_url=None, redoc_url=None)
    app.state.enrolment = service
    app.include_router(router)
    return app
