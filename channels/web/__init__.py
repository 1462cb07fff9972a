"""The public complaint form at ``GET /``: plain HTML that works without JavaScript.

Anyone may use it, so it is guarded the way public forms are: a CSRF token bound to a
browser cookie, a honeypot field, a per-address rate limit in Redis, and limits on
uploads checked by content, not by name. A submission is stored with ``accept`` (files
first, in the blob store) and the person sees their reference only once that returned.
"""
