from django import forms
from django.contrib.auth import get_user_model

from api.tokens import MAX_DAYS


class TokenForm(forms.Form):
    """A new API token: a name saying what uses it, an optional expiry, and (administrators) whose."""

    name = forms.CharField(max_length=100, help_text="What will use it, e.g. 'deploy pipeline' or 'prometheus'.")
    days = forms.IntegerField(
        required=False, min_value=1, max_value=MAX_DAYS, label="Expires after (days)", help_text="Empty: until revoked."
    )
    user = forms.ModelChoiceField(
        queryset=get_user_model().objects.none(), required=False, to_field_name="username",
        help_text="Administrators make tokens for others (e.g. a pipeline's own user); empty: yourself.",
    )  # fmt: skip

    def __init__(self, *args, admin: bool, **kwargs):
        super().__init__(*args, **kwargs)
        if admin:
            self.fields["user"].queryset = get_user_model().objects.filter(is_active=True).order_by("username")
        else:
            del self.fields["user"]
