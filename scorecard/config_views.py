"""Pages of the scorecard as code: download the YAML, import YAML (diff first, then confirm)."""

import re

from django import forms
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import content_disposition_header

from scorecard.config_code import MAX_BYTES, ConfigError, ConfigStale, config_apply, config_export, config_plan
from scorecard.models import Cluster
from scorecard.views import _scorecard, role_required


class ConfigImportForm(forms.Form):
    """YAML pasted or uploaded; the confirmation posts the same text back with the digest of
    the diff it confirms."""

    text = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 16, "spellcheck": "false", "class": "code"}),
        label="YAML",
        max_length=MAX_BYTES,
        strip=False,
    )
    file = forms.FileField(required=False, label="or upload a file")
    digest = forms.CharField(required=False, widget=forms.HiddenInput, max_length=64)

    def clean(self):
        data = super().clean()
        upload, text = data.get("file"), data.get("text") or ""
        if upload is not None:
            if upload.size > MAX_BYTES:
                raise forms.ValidationError(f"The file is larger than {MAX_BYTES:,} bytes.")
            try:
                text = upload.read().decode()
            except UnicodeDecodeError:
                raise forms.ValidationError("The file is not UTF-8 text.") from None
        if not text.strip():
            raise forms.ValidationError("Paste the YAML or choose a file.")
        # Browsers send line breaks as CRLF (and an old file may have CR alone): the confirmation
        # must digest the text the diff did.
        data["text"] = re.sub(r"\r\n?", "\n", text)
        return data


@role_required("read")
def config_download(request, cluster_id: int):
    scorecard = _scorecard(request, cluster_id)
    response = HttpResponse(config_export(scorecard=scorecard), content_type="text/yaml; charset=utf-8")
    filename = re.sub(r"[^A-Za-z0-9._-]+", "-", scorecard.cluster.name) + ".yaml"
    response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=filename)
    return response


@role_required("edit_checks")
def config_import(request, cluster_id: int):
    """Into this cluster: each change is then allowed by the role rules of its own page."""
    return _import_page(request, _scorecard(request, cluster_id).cluster)


@role_required("manage_clusters")
def config_import_new(request):
    """A cluster the YAML names, registered if new (administrators only)."""
    return _import_page(request, None)


def _import_page(request, cluster: Cluster | None):
    form = ConfigImportForm(request.POST or None, request.FILES or None)
    context = {"form": form, "cluster": cluster}
    if request.method == "POST" and form.is_valid():
        text, digest = form.cleaned_data["text"], form.cleaned_data["digest"]
        context.update(text=text, form=ConfigImportForm(initial={"text": text}))
        try:
            if digest:
                try:
                    plan = config_apply(text=text, user=request.user, cluster=cluster, expected_digest=digest)
                except ConfigStale as exc:
                    messages.error(request, str(exc))  # the new diff follows
                else:
                    messages.success(request, f"Imported {len(plan.changes)} changes into {plan.cluster_name}.")
                    return redirect("scorecard-detail", cluster_id=plan.cluster_id)
            context["plan"] = config_plan(text=text, user=request.user, cluster=cluster)
        except ConfigError as exc:
            context["errors"] = exc.errors
    return render(request, "scorecard/config_import.html", context)
