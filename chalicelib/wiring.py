"""Entry points for the non-HTTP handlers (SNS feedback, scheduled sweeper, local CLI)."""

from __future__ import annotations

from typing import Any

from chalicelib import clock
from chalicelib.obs import log


def feedback_from_sns(event: dict[str, Any]) -> dict[str, int]:
    """Handle one SNS Lambda event of SES notifications. Never raises."""
    from chalicelib.checkout import services
    from chalicelib.feedback import FeedbackConfig, handle_sns_event

    try:
        svc = services()
        s = svc.settings
        config = FeedbackConfig(
            topic_arn=s.ses_feedback_topic_arn,
            transient_limit=s.transient_bounce_limit,
            transient_window_seconds=s.transient_bounce_window_days * 86400,
            temporary_suppression_seconds=s.temporary_suppression_days * 86400,
        )
        return handle_sns_event(
            event, svc.suppression, config, svc.store.mark_delivered, clock.now().timestamp()
        )
    except Exception as e:  # noqa: BLE001 - a raising handler makes Lambda retry forever
        log("feedback_failed", "error", error=type(e).__name__, detail=str(e)[:200])
        return {"error": 1}


def run_sweeper() -> dict[str, int]:
    from chalicelib.checkout import services
    from chalicelib.outbox import sweep

    return sweep(services())
