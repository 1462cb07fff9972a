"""The JSON API, ``POST /v1/intake``: complaints taken by staff, partners and the social team.

Callers hold a bearer key from ``INTAKE_API_KEYS`` that names the channels they may
submit. The body is checked at the edge and, once stored by ``accept``, normalised by the
worker like every other channel's input.
"""
