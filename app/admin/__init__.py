"""The moderation screens under /admin/: admins only, every change a POST with CSRF
(access.py: who may enter and for how long; views.py: the screens; forms.py: their forms)."""

from app.admin import views  # noqa: F401  (the routes register on the blueprint)
from app.admin.access import (  # noqa: F401
    AUTH_AT,
    PUBLIC_ENDPOINTS,
    SEEN_AT,
    bp,
    init_app,
    session_deadline,
)
