"""Usage statistics, kept across restarts (docs/decisions.md, "Usage statistics survive restarts").

Counted per upstream request; stored in SQLite (`usage-statistics-file`, default
`usage-statistics.sqlite3` beside config.yaml). Totals cover every request; per-request
details are kept up to `usage-statistics-max-details` (default 100000), oldest first out
(see `store.py`). Export and import use upstream's JSON format and merge rules. Per
credential (by `auth_index`, else `source`) the store keeps running counts too, for
GET /api-key-usage and the auth-file listing: `usage_service(app).credential_usage()`.

For an embedding proxy or a plugin, one request is recorded with:

    from cliproxy_mgmt.usage import UsageRecord, record_usage
    record_usage(UsageRecord(model="gpt-4o", api_key="client-key-1",
                             input_tokens=12, output_tokens=30), app=app)

which calls the `record_usage` hook (hookspecs.py): the core's implementation counts the
record while `usage-statistics-enabled` is true; plugins may implement it to see them too.
"""

from .model import UsageRecord
from .service import UsageService, init_app, record_usage, usage_service
from .views import bp

__all__ = ["UsageRecord", "UsageService", "bp", "init_app", "record_usage", "usage_service"]
