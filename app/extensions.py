"""Every Flask extension, created unbound; create_app() binds them.

(Authlib's OAuth registry is per application, in app/auth/oauth.py: it caches clients built
from the first app's config, which would leak one app's endpoints into another.)
"""

from __future__ import annotations

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


# Objects stay readable after a commit: a reply built after storing a comment must not need the
# database again (it may have just gone away), and nothing re-reads a row it already holds.
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[])
