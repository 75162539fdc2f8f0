"""The Django project: web pages and API over the domain core (never reimplementing it)."""
