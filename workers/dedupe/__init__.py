"""Deduplication: follow-ups, repeats and campaigns, found through an index shared in Redis.

One idea per module: ``signature`` (text to MinHash and LSH bands), ``customers`` (who a
message is from), ``references`` (reference numbers and acknowledgement ids in a message),
``index`` and ``scripts`` (the shared index in Redis), ``followup`` (linking to an existing case),
``decide`` (repeat or new case, and which campaign) and ``outcome`` (what the step writes on
the record). The pipeline step itself is ``workers.steps.dedupe``.
"""
