"""What the form says when it has not taken a submission: what happened, what to do next.

Each notice starts by saying the complaint has not been sent, so nobody leaves thinking it
was; each ends with something the person can do, including phoning instead.
"""

from __future__ import annotations

NOT_SENT = "Your complaint has not been sent yet."


def rate_limited(retry_after: int, phone: str) -> list[str]:
    minutes = max(1, round(retry_after / 60))
    return [
        "We have had a lot of forms from your internet connection. " + NOT_SENT,
        f"Please wait {minutes} minute{'s' if minutes != 1 else ''} and send it again, "
        f"or phone us on {phone}.",
    ]


def expired() -> list[str]:
    return [
        NOT_SENT + " The form was open for a long time, or your browser did not send back "
        "our cookie.",
        "Check your answers and send the form again. If this keeps happening, allow cookies "
        "for this site.",
    ]


def not_accepted() -> list[str]:
    return [NOT_SENT + " Check your answers and send the form again."]


def unavailable(phone: str) -> list[str]:
    return [
        "Sorry, we could not send your complaint just now. " + NOT_SENT,
        f"Your answers are still below. Please try again in a few minutes, or phone us on {phone}.",
    ]


def too_large(max_files: int, max_size: str) -> tuple[str, list[str]]:
    return "Your files are too big to send", [
        f"You can send up to {max_files} files, each smaller than {max_size}. Go back, remove "
        "the largest files and try again.",
    ]


def unreadable() -> tuple[str, list[str]]:
    return "Your form could not be read", [
        "Something went wrong while your form was being sent. Please try again.",
    ]


def form_down() -> tuple[str, list[str]]:
    return "Sorry, the form is not working at the moment", ["Please try again in a few minutes."]
