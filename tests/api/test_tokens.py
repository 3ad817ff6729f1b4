"""API tokens on their page and from the shell: shown once, revoked by their user or an
administrator, never readable again."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from api.models import ApiToken
from api.tokens import token_user
from tests.conftest import user_with_role

pytestmark = pytest.mark.django_db


def test_a_token_made_on_the_page_is_shown_once_and_revoked_there(role_client):
    client = role_client("viewer", "vera")
    made = client.post(reverse("api-tokens"), {"name": "deploy pipeline", "days": "30"})
    page = made.content.decode()
    token = ApiToken.objects.get(name="deploy pipeline")
    shown = page.split('id="new-token">')[1].split("<")[0]
    assert shown.startswith(f"rrs_{token.prefix}_") and token_user(f"Bearer {shown}").username == "vera"
    again = client.get(reverse("api-tokens")).content.decode()
    assert shown not in again and f"rrs_{token.prefix}_…" in again
    client.post(reverse("api-token-revoke", args=[token.pk]))
    assert token_user(f"Bearer {shown}") is None
    assert "revoked" in client.get(reverse("api-tokens")).content.decode()


def test_only_an_administrator_sees_and_revokes_other_peoples_tokens(role_client):
    user_with_role("olga", "operator")
    admin = role_client("admin", "ada")
    admin.post(reverse("api-tokens"), {"name": "olga's pipeline", "user": "olga"})
    token = ApiToken.objects.get(name="olga's pipeline")
    assert token.user.username == "olga" and token.created_by == "ada"
    other = role_client("drill approver", "abe")
    assert "olga's pipeline" not in other.get(reverse("api-tokens")).content.decode()
    assert other.post(reverse("api-token-revoke", args=[token.pk])).status_code == 404
    refused = other.post(reverse("api-tokens"), {"name": "x", "user": "olga"})
    assert not ApiToken.objects.filter(name="x").exclude(user__username="abe").exists()
    assert refused.status_code == 200
    assert admin.post(reverse("api-token-revoke", args=[token.pk])).status_code == 302


def test_the_page_refuses_a_bad_name_and_anonymous_visitors(client, role_client):
    assert client.get(reverse("api-tokens")).status_code == 302
    page = role_client("viewer").post(reverse("api-tokens"), {"name": "", "days": "9999"}).content.decode()
    assert "This field is required" in page and ApiToken.objects.count() == 0


def test_the_command_makes_lists_and_revokes_tokens():
    user_with_role("prometheus", "viewer")
    out = io.StringIO()
    call_command("api_token", "create", "--user", "prometheus", "--name", "scraper", stdout=out)
    token = out.getvalue().strip()
    assert token_user(f"Bearer {token}").username == "prometheus"
    listing = io.StringIO()
    call_command("api_token", "list", stdout=listing)
    assert "scraper" in listing.getvalue() and token not in listing.getvalue()
    call_command("api_token", "revoke", token.split("_")[1], stdout=io.StringIO())
    assert token_user(f"Bearer {token}") is None
    with pytest.raises(CommandError, match="no active user"):
        call_command("api_token", "create", "--user", "nobody", "--name", "x", stdout=io.StringIO())
    with pytest.raises(CommandError, match="1 to 731 days"):
        call_command("api_token", "create", "--user", "prometheus", "--name", "x", "--days", "0")
