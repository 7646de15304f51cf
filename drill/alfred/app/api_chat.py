"""POST /v1/chat/completions (the pipeline is in logic.py)."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from .http import Ctx, request_ctx
from .logic import chat_completion
from .services import services

router = APIRouter()


@router.post("/v1/chat/completions")
def completions(ctx: Ctx = Depends(request_ctx)) -> Any:
    return chat_completion(services(ctx.request), ctx)
