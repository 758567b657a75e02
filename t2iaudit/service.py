"""The debias HTTP service: a thin FastAPI shell over :class:`t2iaudit.debias.engine.DebiasEngine`.

Endpoints: ``POST /v1/debias/plan``, ``POST /v1/debias/plan:batch``, ``GET /v1/profiles``,
``GET /healthz``; OpenAPI at ``/openapi.json``. When ``T2IAUDIT_API_KEY`` is set, the ``/v1``
endpoints need ``Authorization: Bearer <key>`` (compared in constant time; never echoed).
Limits (prompt length, n, batch size, body size) answer 4xx; a malformed JSON body answers 400;
any other failure answers a generic 500 without a trace. See docs/debias.md.
"""

# No ``from __future__ import annotations``: FastAPI reads the endpoint annotations (Request,
# the bearer credentials), which are imported inside create_app to keep imports lazy.
import hmac
import logging
import os
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from t2iaudit.debias.schema import BatchRequest, BatchResponse, PlanRequest, PlanResponse

if TYPE_CHECKING:
    from fastapi import FastAPI

    from t2iaudit.debias.engine import DebiasEngine

API_KEY_ENV = "T2IAUDIT_API_KEY"
MAX_BODY_BYTES = 1_000_000
log = logging.getLogger("t2iaudit.service")


class Error(BaseModel):
    """An error answer."""

    detail: str


class ProfileSummary(BaseModel):
    """One profile the planner can use (``profile: NAME``)."""

    model_config = ConfigDict(frozen=True)
    name: str
    format_version: int
    model: dict[str, Any]
    judge: dict[str, Any]
    attributes: dict[str, dict[str, list[str]]]
    """Attribute -> its judged ``labels`` and measured ``requested`` classes."""
    source: dict[str, Any]


class ProfileList(BaseModel):
    profiles: list[ProfileSummary]


class Health(BaseModel):
    status: str
    version: str
    embedder: str | None


class ServiceSettings(BaseModel):
    """How the service runs (from the environment by default)."""

    model_config = ConfigDict(frozen=True)
    api_key: str | None = Field(default=None, repr=False)
    """Bearer key required on /v1 endpoints; None leaves them open."""
    embedder: str = "minilm"
    """``minilm`` (packaged all-MiniLM-L6-v2) or ``none`` (no similarity check)."""
    max_body_bytes: int = MAX_BODY_BYTES

    @classmethod
    def from_env(cls) -> "ServiceSettings":
        return cls(
            api_key=os.environ.get(API_KEY_ENV) or None, embedder=os.environ.get("T2IAUDIT_DEBIAS_EMBEDDER", "minilm")
        )


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Error, "description": "Malformed JSON body"},
    401: {"model": Error, "description": "Missing or wrong API key"},
    413: {"model": Error, "description": "Body too large"},
    500: {"model": Error, "description": "Internal error (details are logged, never returned)"},
}


def create_app(engine: "DebiasEngine | None" = None, settings: "ServiceSettings | None" = None) -> "FastAPI":
    """The FastAPI app. ``engine`` is built at start-up (loading the embedder) unless given."""
    from fastapi import Depends, FastAPI, Request
    from fastapi.exceptions import HTTPException, RequestValidationError
    from fastapi.responses import JSONResponse, Response
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

    from t2iaudit import __version__
    from t2iaudit.errors import InputError

    settings = settings or ServiceSettings.from_env()

    @asynccontextmanager
    async def lifespan(app: "FastAPI"):
        if engine is None:
            from anyio import to_thread

            from t2iaudit.debias.engine import EngineSettings, build_engine

            app.state.engine = await to_thread.run_sync(
                lambda: build_engine(EngineSettings(), embedder=settings.embedder)
            )
        else:
            app.state.engine = engine
        yield

    app = FastAPI(title="t2iaudit debias service", version=__version__, lifespan=lifespan)
    bearer = HTTPBearer(auto_error=False, description=f"Required when {API_KEY_ENV} is set on the server")

    def require_key(creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if settings.api_key is None:
            return
        given = (creds.credentials if creds else "").encode()
        if not hmac.compare_digest(given, settings.api_key.encode()):
            raise HTTPException(401, "missing or wrong API key", headers={"WWW-Authenticate": "Bearer"})

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        size = request.headers.get("content-length")
        if size is not None and (not size.isdigit() or int(size) > settings.max_body_bytes):
            return JSONResponse({"detail": f"body larger than {settings.max_body_bytes} bytes"}, status_code=413)
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return JSONResponse({"detail": "malformed JSON body"}, status_code=400)
        clean = [{k: e[k] for k in ("type", "loc", "msg") if k in e} for e in errors]
        return JSONResponse({"detail": clean}, status_code=422)

    @app.exception_handler(InputError)
    async def bad_input(request: Request, exc: InputError) -> JSONResponse:
        loc = ["body", *(exc.field or "").replace("[", ".").replace("]", "").split(".")]
        return JSONResponse(
            {"detail": [{"type": "value_error", "loc": [p for p in loc if p], "msg": exc.message}]}, status_code=422
        )

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return JSONResponse({"detail": "internal server error"}, status_code=500)

    def json_response(model: BaseModel) -> Response:
        return Response(content=model.model_dump_json(), media_type="application/json")

    @app.get("/healthz", response_model=Health)
    def healthz(request: Request) -> Health:
        embedder = getattr(request.app.state, "engine", None) and request.app.state.engine.embedder
        return Health(status="ok", version=__version__, embedder=embedder.name if embedder else None)

    @app.get("/v1/profiles", response_model=ProfileList, responses=ERRORS, dependencies=[Depends(require_key)])
    def profiles(request: Request) -> ProfileList:
        from t2iaudit.debias.profiles import list_profiles

        found = list_profiles(request.app.state.engine.profile_dirs)
        return ProfileList(
            profiles=[
                ProfileSummary(
                    name=p.name,
                    format_version=p.format_version,
                    model=p.model,
                    judge=p.judge,
                    source=p.source,
                    attributes={a: {"labels": ap.labels, "requested": ap.requested} for a, ap in p.attributes.items()},
                )
                for p in found
            ]
        )

    @app.post("/v1/debias/plan", response_model=PlanResponse, responses=ERRORS, dependencies=[Depends(require_key)])
    def plan(body: PlanRequest, request: Request) -> Response:
        return json_response(request.app.state.engine.plan(body))

    @app.post(
        "/v1/debias/plan:batch", response_model=BatchResponse, responses=ERRORS, dependencies=[Depends(require_key)]
    )
    def plan_batch(body: BatchRequest, request: Request) -> Response:
        return json_response(request.app.state.engine.plan_batch(body))

    return app


def serve(host: str = "127.0.0.1", port: int = 8000, settings: "ServiceSettings | None" = None) -> None:
    """Run the service with uvicorn (blocking)."""
    import uvicorn

    uvicorn.run(create_app(settings=settings), host=host, port=port, log_level="info")
