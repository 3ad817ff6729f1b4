from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from api import tokens
from api.forms import TokenForm
from api.models import ApiToken
from scorecard import roles


@login_required
def token_list(request):
    """Your API tokens (administrators: everyone's); a new one is shown once, here."""
    admin = roles.can(request.user, "manage_roles")
    form = TokenForm(request.POST or None, admin=admin)
    made = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            row, made = tokens.token_create(
                actor=request.user, owner=data.get("user") or request.user, name=data["name"], days=data["days"]
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            form = TokenForm(admin=admin)
            messages.success(request, f"Made the token {row}. Copy it now: it is not shown again.")
    listing = ApiToken.objects.select_related("user")
    if not admin:
        listing = listing.filter(user=request.user)
    context = {"form": form, "tokens": listing[:200], "made": made, "admin": admin}
    return render(request, "api/tokens.html", context)


@login_required
@require_POST
def token_revoke(request, token_id: int):
    token = get_object_or_404(ApiToken.objects.select_related("user"), pk=token_id)
    if not tokens.may_manage(request.user, token.user):
        raise Http404("no such token")
    tokens.token_revoke(actor=request.user, token=token)
    messages.success(request, f"Revoked {token}: it no longer opens the API or /metrics.")
    return redirect("api-tokens")
