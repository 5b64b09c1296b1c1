"""How well risk control did on a replayed simulated show: recall per abuse kind, and the share of
genuine buyers stopped per genuine group.

An attempt counts when it became an order (201/200) or was blocked by the rules (403
``risk_blocked``); attempts refused for other reasons (sold out, closed, over the limit) never
became orders and are left out. A counted attempt is **stopped** when it was blocked, or its order's
assessment says ``review`` (held once paid). Recall of an abuse kind = stopped / counted; for a
genuine group the same share is its false-positive rate. The labels come from the replay's outcomes
(the simulator's truth); the verdicts from the database, as the merchant would see them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .models import Decision, RiskAssessment
from .simulation import GENUINE


@dataclass
class Figures:
    counted: int = 0
    blocked: int = 0
    held: int = 0  # decision review
    unscored: int = 0  # an order with no assessment yet

    @property
    def stopped(self) -> int:
        return self.blocked + self.held

    @property
    def share(self) -> float:
        return self.stopped / self.counted if self.counted else 0.0


@dataclass
class Detection:
    groups: dict[tuple[str, str], Figures]  # (kind, group) -> figures

    def _sum(self, genuine: bool) -> Figures:
        out = Figures()
        for (kind, _group), f in self.groups.items():
            if (kind == GENUINE) == genuine:
                out.counted += f.counted
                out.blocked += f.blocked
                out.held += f.held
                out.unscored += f.unscored
        return out

    @property
    def abuse(self) -> Figures:
        return self._sum(genuine=False)

    @property
    def genuine(self) -> Figures:
        return self._sum(genuine=True)

    def format(self) -> str:
        rows = [f"{'kind':<16}{'group':<16}{'counted':>8}{'blocked':>8}{'held':>6}{'stopped':>9}"]
        for (kind, group), f in sorted(self.groups.items(), key=lambda kv: (kv[0][0] == GENUINE, kv[0])):
            rows.append(f"{kind:<16}{group:<16}{f.counted:>8}{f.blocked:>8}{f.held:>6}{f.share:>8.1%}")
        a, g = self.abuse, self.genuine
        rows.append(f"{'abuse (recall)':<32}{a.counted:>8}{a.blocked:>8}{a.held:>6}{a.share:>8.1%}")
        rows.append(f"{'genuine (stopped)':<32}{g.counted:>8}{g.blocked:>8}{g.held:>6}{g.share:>8.2%}")
        if a.unscored or g.unscored:
            rows.append(f"not scored yet: {a.unscored + g.unscored}")
        return "\n".join(rows)


def detection(outcomes: Iterable, decisions: Mapping[str, str]) -> Detection:
    """``outcomes``: the replay's ``AttemptOutcome`` list; ``decisions``: order public id -> the
    assessment's decision (``decisions_for``)."""
    groups: dict[tuple[str, str], Figures] = {}
    for o in outcomes:
        blocked = o.status == 403 and o.code == "risk_blocked"
        if not (o.accepted or blocked):
            continue
        f = groups.setdefault((o.kind, o.group), Figures())
        f.counted += 1
        if blocked:
            f.blocked += 1
            continue
        decision = decisions.get(o.order_id)
        if decision is None:
            f.unscored += 1
        elif decision == Decision.REVIEW:
            f.held += 1
    return Detection(groups)


def decisions_for(order_ids: Iterable[str]) -> dict[str, str]:
    ids = list(order_ids)
    out: dict[str, str] = {}
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        out.update(RiskAssessment.objects.filter(order__public_id__in=chunk).values_list("public_id", "decision"))
    return out
