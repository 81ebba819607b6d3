"""Routing policy: which variant, which copy (or which pipeline of copies) serves a request.

Least outstanding requests first, ties broken at random (SageMaker's LEAST_OUTSTANDING_REQUESTS);
``RANDOM`` when the variant's ``RoutingConfig`` asks for it; variants weighted by their current
weight.
"""
from __future__ import annotations

import random

from ..runtime.fleet import Copy, Fleet, VariantFleet


def least_outstanding(copies: list[Copy], routing: str = "LEAST_OUTSTANDING_REQUESTS") -> Copy | None:
    """A serving copy among ``copies``, or None when none serves."""
    if len(copies) == 1:  # the common case, without a list built per request
        return copies[0] if copies[0].state == "serving" else None
    serving = [c for c in copies if c.state == "serving"]
    if not serving:
        return None
    if len(serving) == 1:
        return serving[0]
    if routing == "RANDOM":
        return random.choice(serving)
    least = min(c.outstanding for c in serving)
    return random.choice([c for c in serving if c.outstanding == least])


def pick_copy(variant: VariantFleet, hostname: str | None = None, exclude=()) -> Copy | None:
    copies = variant.copies
    if hostname is not None or exclude:
        copies = [c for c in copies if (hostname is None or c.hostname == hostname) and c not in exclude]
    return least_outstanding(copies)


def pick_pipeline(variant: VariantFleet) -> list[Copy] | None:
    """Serial mode: the containers of one instance, in order; every one of them serving."""
    groups: dict[int, list[Copy]] = {}
    for copy in variant.copies:
        groups.setdefault(copy.group, []).append(copy)
    order = [t.container_name for t in variant.templates]
    complete = [sorted(g, key=lambda c: order.index(c.hostname)) for g in groups.values()
                if len(g) == len(order) and all(c.state == "serving" for c in g)]
    if not complete:
        return None
    least = min(sum(c.outstanding for c in g) for g in complete)
    return random.choice([g for g in complete if sum(c.outstanding for c in g) == least])


def pick_variant(fleet: Fleet) -> VariantFleet | None:
    """A variant with copies (a serverless one may have none yet), chosen in proportion to its weight (weight 0 only
    when nothing else has copies)."""
    variants = fleet.variants
    if len(variants) == 1:
        for only in variants.values():
            return only if only.copies or only.serverless else None
    candidates = [v for v in fleet.variants.values() if v.weight > 0 and (v.copies or v.serverless)]
    if not candidates:
        candidates = [v for v in fleet.variants.values() if v.copies or v.serverless]
    if not candidates:
        return None
    if len(candidates) == 1:
        return candidates[0]
    return random.choices(candidates, weights=[v.weight or 1.0 for v in candidates])[0]
