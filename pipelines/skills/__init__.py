"""Skills: small answerers for the glasses' everyday jobs (shopping, reading, timers, photos,
translation), each behind the router's `Skill` interface (pipelines/router.py)."""
