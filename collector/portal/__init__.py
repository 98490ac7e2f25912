"""Member portal and operator API (FastAPI, server-rendered Jinja2 templates, issue 10)."""
