"""IAM's policy simulator (SimulatePrincipalPolicy, SimulateCustomPolicy) over smemu's evaluator: each
action on each resource, decided as a real request would be, with the statement that decided it and the
condition keys the simulation was not given (IAM API reference, "SimulatePrincipalPolicy")."""
from __future__ import annotations

from .evaluator import ALLOW, EXPLICIT_DENY, IMPLICIT_DENY, Request, evaluate, missing_context_keys

DECISIONS = {ALLOW: "allowed", EXPLICIT_DENY: "explicitDeny", IMPLICIT_DENY: "implicitDeny"}


def context_of(entries: list[dict]) -> dict:
    """ContextEntries → condition keys (a ``…List`` type keeps every value; others the first)."""
    context = {}
    for entry in entries or []:
        values = entry.get("ContextKeyValues") or []
        if entry.get("ContextKeyType", "string").endswith("List"):
            context[entry["ContextKeyName"]] = list(values)
        elif values:
            context[entry["ContextKeyName"]] = values[0]
    return context


def simulate(caller: str, policies: list[tuple[str, dict, str]], actions: list[str], resources: list[str] | None,
             context: dict) -> list[dict]:
    """``policies``: (name, document, SourcePolicyType) — user, group, role, aws-managed, user-managed or
    none (a policy given in the call)."""
    kinds = {name: kind for name, _, kind in policies}
    documents = [(name, document) for name, document, _ in policies]
    results = []
    for action in actions:
        for resource in resources or ["*"]:
            request = Request(caller, action, resource, context)
            decision = evaluate(documents, request)
            matched = [{"SourcePolicyId": decision.policy, "SourcePolicyType": kinds[decision.policy]}] \
                if decision.policy else []
            results.append({"EvalActionName": action, "EvalResourceName": resource,
                            "EvalDecision": DECISIONS[decision.kind], "MatchedStatements": matched,
                            "MissingContextValues": missing_context_keys(documents, request)})
    return results
