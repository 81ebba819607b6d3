"""smemu's own IAM views (``/_smemu/iam/*``, the account's root keys only under ``--iam``): the last
denials with why (``smemu iam explain``) and the least-privilege policy of what a principal asked for
(``smemu iam policy``)."""
from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse


def iam_views(guard) -> APIRouter:
    router = APIRouter()

    @router.get("/_smemu/iam/denials")
    def denials():
        return {"Enforced": guard.enforce, "Denials": list(guard.denials)}

    @router.get("/_smemu/iam/policy")
    def policy(principal: str):
        found = guard.activity.find(principal)
        if found is None:
            return JSONResponse({"message": f"smemu has seen no request from {principal} under --iam",
                                 "Principals": guard.activity.principals()}, status_code=404)
        return {"Principal": found, "Policy": guard.activity.policy(found)}

    return router
