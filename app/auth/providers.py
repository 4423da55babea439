"""The four sign-in providers of the WordPress.com comment form."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, url_for


@dataclass(frozen=True)
class ProviderInfo:
    name: str  # URL name: /login/<name>
    label: str  # what a reader calls it
    icon_alt: str  # the seed page's alt text

    @property
    def config_prefix(self) -> str:
        return self.name.upper()

    @property
    def enabled(self) -> bool:
        config = current_app.config
        prefix = self.config_prefix
        return bool(config.get(f"{prefix}_CLIENT_ID") and config.get(f"{prefix}_CLIENT_SECRET"))

    @property
    def login_url(self) -> str:
        return url_for("auth.login", provider=self.name)


PROVIDERS: tuple[ProviderInfo, ...] = (
    ProviderInfo("wordpress", "WordPress.com", "WordPress.com Logo"),
    ProviderInfo("google", "Google", "Google photo"),
    ProviderInfo("twitter", "X (Twitter)", "Twitter picture"),
    ProviderInfo("facebook", "Facebook", "Facebook photo"),
)
PROVIDERS_BY_NAME = {p.name: p for p in PROVIDERS}
