"""Each provider's profile mapping, fed the JSON that provider sends (recorded in tests/data/)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from app.auth import providers
from app.auth.providers import PROVIDERS_BY_NAME, Profile, ProfileError

DATA = Path(__file__).resolve().parent / "data"


def recorded(name: str):
    return json.loads((DATA / name).read_text("utf-8"))


def wordpress_profile(raw) -> Profile:
    return PROVIDERS_BY_NAME["wordpress"].read_profile(raw)


def google_profile(raw) -> Profile:
    return PROVIDERS_BY_NAME["google"].read_profile(raw)


def twitter_profile(raw) -> Profile:
    return PROVIDERS_BY_NAME["twitter"].read_profile(raw)


def facebook_profile(raw) -> Profile:
    return PROVIDERS_BY_NAME["facebook"].read_profile(raw)


def test_wordpress_maps_me_with_a_verified_email():
    assert wordpress_profile(recorded("wordpress_me.json")) == Profile(
        provider="wordpress",
        subject="18342963",  # a number at WordPress.com, stored as text
        name="Kamran Yousaf",  # display_name, not the login
        email="kamran.yousaf@example.com",
        avatar="https://2.gravatar.com/avatar/8d6b2c6f0b1fb3c4a6f2f5ad4e0b5c1e?s=96&d=identicon",
        profile_url="https://gravatar.com/kamranyousaf",
    )


def test_wordpress_drops_an_unverified_email():
    profile = wordpress_profile(recorded("wordpress_me_unverified.json"))
    assert profile.subject == "201554120"
    assert profile.email is None
    assert profile.name == "newcomer2024"


def test_google_maps_claims_and_trusts_only_verified_email():
    claims = recorded("google_id_token_claims.json")
    profile = google_profile(claims)
    assert profile == Profile(
        provider="google", subject="110169484474386276334", name="Ayesha Khan",
        email="ayesha.khan@example.com",
        avatar="https://lh3.googleusercontent.com/a/ACg8ocK1hQ0W2Zb4u9mTq0fY3wE8rN6sV5xP7cJ2dL1aB0=s96-c",
        profile_url=None,
    )
    assert google_profile({**claims, "email_verified": False}).email is None
    assert google_profile({**claims, "email_verified": "true"}).email == "ayesha.khan@example.com"
    assert google_profile(recorded("google_userinfo.json")) == profile


def test_twitter_reads_inside_data_and_links_the_handle():
    assert twitter_profile(recorded("twitter_users_me.json")) == Profile(
        provider="twitter", subject="2244994945", name="Zara Malik", email=None,
        avatar="https://pbs.twimg.com/profile_images/1683325380441128960/yRsRRjGO_normal.jpg",
        profile_url="https://x.com/zaramalik",
    )


def test_facebook_maps_picture_and_never_trusts_an_unflagged_email():
    profile = facebook_profile(recorded("facebook_me.json"))
    assert profile.subject == "10158383950331234"
    assert profile.name == "Bilal Ahmed"
    assert profile.email is None  # the Graph API says nothing about verification
    assert profile.avatar.startswith("https://platform-lookaside.fbsbx.com/platform/profilepic/")
    assert profile.profile_url is None


def test_facebook_without_email_and_with_the_default_silhouette():
    profile = facebook_profile(recorded("facebook_me_no_email.json"))
    assert profile.subject == "122101337654321"
    assert profile.email is None
    assert profile.avatar is None  # the grey silhouette: fall back to the site's default


@pytest.mark.parametrize("name, raw", [
    ("wordpress", {"display_name": "No id"}),
    ("google", {"name": "No sub"}),
    ("twitter", {"errors": [{"message": "Unauthorized"}]}),
    ("twitter", {"data": {"name": "No id"}}),
    ("facebook", {"id": ""}),
    ("facebook", ["not", "an", "object"]),
    ("wordpress", {"ID": True}),
])
def test_a_profile_without_an_id_is_refused(name, raw):
    with pytest.raises(ProfileError):
        PROVIDERS_BY_NAME[name].read_profile(raw)


def test_names_fall_back_when_the_provider_sends_none():
    assert twitter_profile({"data": {"id": "1", "username": "someone"}}).name == "@someone"
    assert wordpress_profile({"ID": 5}).name == "WordPress.com user"


def test_the_icons_order_labels_and_alt_texts_are_the_seed_pages():
    assert [(p.name, p.label, p.icon, p.icon_alt) for p in providers.PROVIDERS] == [
        ("wordpress", "WordPress.com", "img/wordpress.svg", "WordPress.com Logo"),
        ("google", "Google", "img/google.svg", "Google photo"),
        ("twitter", "X (Twitter)", "img/twitter.svg", "Twitter picture"),
        ("facebook", "Facebook", "img/facebook.svg", "Facebook photo"),
    ]


def test_endpoint_placeholders_are_filled_from_the_providers_settings():
    settings = PROVIDERS_BY_NAME["facebook"].client_settings(
        {"FACEBOOK_GRAPH_VERSION": "v21.0", "OAUTH_TIMEOUT": 3})
    assert settings["authorize_url"] == "https://www.facebook.com/v21.0/dialog/oauth"
    assert settings["access_token_url"] == "https://graph.facebook.com/v21.0/oauth/access_token"
    assert settings["api_base_url"] == "https://graph.facebook.com/v21.0/"
    assert settings["client_kwargs"] == {"scope": "email public_profile", "default_timeout": 3.0,
                                         "token_endpoint_auth_method": "client_secret_post"}


def test_a_record_that_cannot_work_is_refused_when_written():
    with pytest.raises(ValueError, match="authorize_url"):
        providers.Provider(name="half", label="Half", icon="img/half.svg", icon_alt="Half",
                           scope="read", profile_claims=dict, profile_endpoint="me",
                           authorize_url="https://half.example/authorize")
    with pytest.raises(ValueError, match="profile_endpoint"):
        providers.Provider(name="mute", label="Mute", icon="img/mute.svg", icon_alt="Mute",
                           scope="read", profile_claims=dict,
                           authorize_url="https://mute.example/a",
                           access_token_url="https://mute.example/t")


def test_the_records_import_nothing_from_the_app():
    """Models and templates read the records, so the records may not read them back."""
    tree = ast.parse(Path(providers.__file__).read_text("utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert not {name for name in imported if name == "app" or name.startswith("app.")}
