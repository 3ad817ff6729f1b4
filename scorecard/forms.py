from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm
from django.core.validators import MaxLengthValidator, RegexValidator
from django.forms.fields import InvalidJSONInput

from scorecard import catalog, roles, targets
from scorecard.models import Check, Cluster, Row, split_tags
from scorecard.selectors import STATUS_FILTERS
from scorecard.validators import MAX_JSON_BYTES, SASL_PASSWORD_MAX, load_json


class BoundedJSONField(forms.JSONField):
    """JSON typed into a text area: its size and nesting are checked before it is parsed (and
    again when the page shows it back), so a huge or 100,000-deep document is a clear error."""

    def to_python(self, value):
        if self.disabled or value in self.empty_values or not isinstance(value, str):
            return super().to_python(value)
        try:
            converted = load_json(value)
        except ValueError as exc:
            raise forms.ValidationError(f"Enter valid JSON: {exc}.", code="invalid") from None
        return forms.fields.JSONString(converted) if isinstance(converted, str) else converted

    def bound_data(self, data, initial):
        if self.disabled or data is None or not isinstance(data, str):
            return super().bound_data(data, initial)
        try:
            return load_json(data)
        except ValueError:
            return InvalidJSONInput(data[:MAX_JSON_BYTES])

    def has_changed(self, initial, data):
        try:
            return super().has_changed(initial, data)
        except forms.ValidationError:
            return True


class ClusterForm(forms.ModelForm):
    """Registration of a cluster; the secret is write-only and never rendered back."""

    sasl_password = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        label="SASL password",
        max_length=SASL_PASSWORD_MAX,
    )

    class Meta:
        model = Cluster
        fields = [
            "name",
            "environment",
            "tags",
            "bootstrap_servers",
            "security_protocol",
            "sasl_mechanism",
            "sasl_username",
            "ssl_ca_pem",
            "expected_brokers",
            "worker_queue",
            "standby",
            "drills_allowed",
            "actuator",
            "actuator_commands",
            "team",
        ]
        labels = {
            "ssl_ca_pem": "CA certificate (PEM)",
            "sasl_mechanism": "SASL mechanism",
            "sasl_username": "SASL username",
        }
        help_texts = {
            "bootstrap_servers": "host:port, comma separated, e.g. kafka-1.internal:9092,kafka-2.internal:9092",
            "worker_queue": "The Celery queue whose workers can reach this cluster.",
            "environment": "e.g. production, staging, candidate: the overview filters on it.",
            "team": "Only this team's members (and administrators) see the cluster; none: every role does.",
            "tags": "Comma separated, e.g. payments, eu-west, candidate-redpanda.",
            "expected_brokers": "Cluster health warns when fewer brokers answer.",
            "standby": "The cluster this one fails over or migrates to; adds the standby parity check.",
            "drills_allowed": "Allow disruptive drills on this cluster.",
            "actuator": "What performs a drill's faults and recovery.",
            "actuator_commands": (
                '{"broker_down": ["systemctl", "stop", "kafka@{broker}"], "broker_up": [...], '
                '"timeout_seconds": 60}: run without a shell; placeholders {broker}, {host}, {port}, {rack}.'
            ),
        }
        widgets = {
            "ssl_ca_pem": forms.Textarea(attrs={"rows": 3}),
            "actuator_commands": forms.Textarea(attrs={"rows": 4}),
        }
        field_classes = {"actuator_commands": BoundedJSONField}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        others = Cluster.objects.all()
        if self.instance.pk:
            others = others.exclude(pk=self.instance.pk)
            self.fields["sasl_password"].help_text = "Leave empty to keep the stored password."
            if described := self.instance.ca_description:
                self.fields["ssl_ca_pem"].help_text = "Stored: " + "; ".join(described)
        self.fields["standby"].queryset = others

    def _post_clean(self):
        # Write-only: an empty field on edit keeps what is stored, for as long as the cluster is
        # reached at the same endpoint (Cluster.SECRET_BOUND_TO).
        if typed := self.cleaned_data.get("sasl_password"):
            self.instance.sasl_password = typed
        super()._post_clean()

    def clean_bootstrap_servers(self):
        return ",".join(entry.strip() for entry in self.cleaned_data["bootstrap_servers"].split(","))

    def clean_tags(self):
        return ", ".join(split_tags(self.cleaned_data["tags"]))


class RowForm(forms.ModelForm):
    """A row's owner, test, rollback condition (for people, and the guardrails drills enforce)
    and targets (a number per metric, with per-scenario overrides)."""

    target_overrides = forms.CharField(
        required=False,
        max_length=5000,
        label="Targets per scenario",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One per line, scenario.metric = number, e.g. broker_loss.write_rto_s = 10",
    )

    class Meta:
        model = Row
        fields = [
            "owner",
            "owner_contact",
            "owner_user",
            "test_description",
            "rollback_condition",
            "rollback_max_duration_seconds",
            "rollback_max_error_rate",
            "rollback_error_window_seconds",
            "rollback_max_consumer_lag",
            "rollback_min_healthy_brokers",
            "target",
        ]
        labels = {
            "owner": "Owner (team)",
            "owner_user": "Owner's login (signs the row off)",
            "rollback_condition": "Rollback condition (for people)",
            "rollback_max_duration_seconds": "Guardrail: max drill duration (s)",
            "rollback_max_error_rate": "Guardrail: max produce error rate (0-1)",
            "rollback_error_window_seconds": "Guardrail: error-rate window (s)",
            "rollback_max_consumer_lag": "Guardrail: max consumer lag (records)",
            "rollback_min_healthy_brokers": "Guardrail: min healthy brokers",
            "target": "Target (for people)",
        }
        widgets = {
            "test_description": forms.Textarea(attrs={"rows": 3}),
            "rollback_condition": forms.Textarea(attrs={"rows": 3}),
        }
        help_texts = {
            "rollback_condition": (
                "When a drill on this row must stop and undo itself. A row without one is at best WARN. "
                "The guardrails below are what a drill enforces: the strictest of the rows it affects."
            ),
            "owner_user": "Set by administrators.",
        }

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        if not roles.can(user, "manage_clusters"):
            del self.fields["owner_user"]
        else:
            self.fields["owner_user"].queryset = get_user_model().objects.filter(is_active=True).order_by("username")
        current = self.instance.targets or {}
        for name in targets.row_metrics(self.instance.key):
            metric = targets.METRICS[name]
            default = f" (default {metric.default:g})" if metric.default is not None else ""
            self.fields[f"target_{name}"] = forms.FloatField(
                required=False,
                min_value=0,
                max_value=targets.LIMIT,
                label=f"Target: {metric.label} ({metric.unit})",
                help_text=f"{name}; empty = product default{default}",
                initial=current.get("default", {}).get(name),
            )
        metric_fields = [f"target_{name}" for name in targets.row_metrics(self.instance.key)]
        self.order_fields([*self.Meta.fields, *metric_fields, "target_overrides"])
        self.fields["target_overrides"].initial = "\n".join(
            f"{scope}.{name} = {value:g}"
            for scope, values in current.items()
            if scope != "default"
            for name, value in values.items()
        )

    def clean_target_overrides(self):
        overrides: dict[str, dict[str, float]] = {}
        for number, line in enumerate(self.cleaned_data["target_overrides"].splitlines(), 1):
            if not line.strip():
                continue
            key, sep, value = line.partition("=")
            scope, dot, name = key.strip().partition(".")
            try:
                if not (sep and dot):
                    raise ValueError("expected scenario.metric = number")
                if scope == "default":
                    raise ValueError("default targets go in the fields above")
                try:
                    number_value = float(value)
                except ValueError:
                    raise ValueError(f"{value.strip()!r} is not a number") from None
                targets.validate_targets(self.instance.key, {scope: {name: number_value}})
            except ValueError as exc:
                raise forms.ValidationError(f"line {number}: {exc}") from None
            overrides.setdefault(scope, {})[name] = number_value
        return overrides

    def clean(self):
        data = super().clean()
        defaults = {
            name: data[f"target_{name}"]
            for name in targets.row_metrics(self.instance.key)
            if data.get(f"target_{name}") is not None
        }
        self.targets = {**({"default": defaults} if defaults else {}), **(data.get("target_overrides") or {})}
        if not self.errors and not may_loosen(self.user):
            for field, message in targets.loosenings(self.instance, self.changes()).items():
                self.add_error(field if field in self.fields else None, message)
        return data

    def changes(self) -> dict:
        """The row fields to save."""
        fields = {name: self.cleaned_data[name] for name in self.Meta.fields if name in self.fields}
        return {**fields, "targets": targets.validate_targets(self.instance.key, self.targets)}


def may_loosen(user) -> bool:
    """Relaxing a row's guardrails or targets is an approver's (or an admin's) decision."""
    return roles.can(user, "approve_drills") or roles.can(user, "manage_clusters")


class SignOffForm(forms.Form):
    comment = forms.CharField(
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="What you reviewed and accept. Lapses when the row's status changes or after the validity period.",
    )


class ScheduleForm(forms.ModelForm):
    class Meta:
        model = Check
        fields = ["interval_seconds", "max_age_seconds"]
        labels = {"interval_seconds": "Run every (seconds)", "max_age_seconds": "Maximum evidence age (seconds)"}
        help_texts = {"max_age_seconds": "Older evidence turns the check STALE without any probe running."}


class NotApplicableForm(forms.Form):
    """Ask for NOT APPLICABLE; an approver other than the asker makes it so."""

    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))


def param_field(param: catalog.Param) -> forms.Field:
    """The form field of one declared parameter; the catalogue's parse() has the last word."""
    common = {"label": param.title, "help_text": param.help}
    # Left empty, a parameter with a default takes it (the catalogue's parse fills it in).
    required = not param.optional and param.default is None
    if param.kind == "int":
        return forms.IntegerField(required=required, min_value=param.minimum, max_value=param.maximum, **common)
    if param.kind == "float":
        return forms.FloatField(required=required, min_value=param.minimum, max_value=param.maximum, **common)
    if param.kind == "bool":
        return forms.BooleanField(required=False, **common)
    if param.kind == "str":
        return forms.CharField(
            required=required,
            max_length=249,
            validators=[RegexValidator(f"^{catalog.NAME_PATTERN}$", "Use letters, digits, '.', '_' or '-'.")],
            **common,
        )
    if param.kind == "names":
        # Room for max_items names of the longest length, comma separated.
        return forms.CharField(required=False, max_length=param.max_items * 251, **common)
    return forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        choices=[(c, c.replace("_", " ")) for c in param.choices],
        **common,
    )


def add_param_errors(form: forms.Form, error: catalog.ParamError) -> None:
    for name, message in error.errors.items():
        form.add_error(name if name in form.fields else None, message)


class ParamsForm(forms.Form):
    """Edits one check's parameters, built from the probe's declared spec. Validation is the
    catalogue's and needs no cluster: whether named groups exist is the probe's finding."""

    def __init__(self, *args, check: Check, **kwargs):
        self.check = check
        self.spec = [p for p in catalog.SPECS[check.kind] if p.name not in catalog.FROM_ROW_TARGETS]
        current = {**catalog.defaults(check.kind), **check.params}
        initial = {
            p.name: ", ".join(current.get(p.name, [])) if p.kind == "names" else current.get(p.name) for p in self.spec
        }
        super().__init__(*args, initial=initial, **kwargs)
        for param in self.spec:
            self.fields[param.name] = param_field(param)

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        values = {}
        for param in self.spec:
            value = data.get(param.name)
            if param.kind == "names":
                value = [item.strip() for item in (value or "").split(",") if item.strip()]
            elif param.kind == "choices":
                value = list(value or [])
            elif value is None and param.default is not None:
                continue  # left empty: the default
            values[param.name] = value
        try:
            self.parsed = vars(catalog.parse(self.check.kind, values))
        except catalog.ParamError as exc:
            add_param_errors(self, exc)
        return data

    def params(self) -> dict:
        return {
            name: value
            for name, value in self.parsed.items()
            if value is not None and name not in catalog.FROM_ROW_TARGETS
        }


class AuditFilterForm(forms.Form):
    cluster = forms.CharField(required=False, max_length=100, help_text="Cluster name (kept after deletion).")
    actor = forms.CharField(required=False, max_length=150, label="Who")
    action = forms.CharField(required=False, max_length=40, help_text="e.g. drill.start, row.update")
    since = forms.DateTimeField(required=False, help_text="YYYY-MM-DD or YYYY-MM-DD HH:MM (UTC)")
    until = forms.DateTimeField(required=False)

    def filter(self, events):
        data = self.cleaned_data
        if data["cluster"]:
            events = events.filter(cluster_name=data["cluster"])
        if data["actor"]:
            events = events.filter(actor=data["actor"])
        if data["action"]:
            events = events.filter(action__startswith=data["action"])
        if data["since"]:
            events = events.filter(at__gte=data["since"])
        if data["until"]:
            events = events.filter(at__lte=data["until"])
        return events


class OverviewFilterForm(forms.Form):
    environment = forms.ChoiceField(required=False)
    tag = forms.ChoiceField(required=False)
    status = forms.ChoiceField(required=False)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        clusters = Cluster.objects.filter(roles.visible(user)).values_list("environment", "tags")
        environments = sorted({env for env, _ in clusters if env})
        tags = sorted({tag for _, tags in clusters for tag in split_tags(tags)})
        self.fields["environment"].choices = [("", "all environments"), *[(e, e) for e in environments]]
        self.fields["tag"].choices = [("", "all tags"), *[(t, t) for t in tags]]
        self.fields["status"].choices = [("", "any status"), *STATUS_FILTERS.items()]


class ClusterChoices(forms.ModelMultipleChoiceField):
    """Cluster ids as typed in a URL: anything but a plausible id is refused before the database
    sees it (a 25-digit id overflows an integer column)."""

    def _check_values(self, value):
        if any(not str(v).isdecimal() or len(str(v)) > 18 for v in value):
            raise forms.ValidationError("Choose clusters from the list.", code="invalid_choice")
        return super()._check_values(value)


class CompareForm(forms.Form):
    """Two to four clusters to put side by side."""

    clusters = ClusterChoices(
        queryset=Cluster.objects.none(),  # set per user: the clusters they may see
        widget=forms.CheckboxSelectMultiple,
        help_text="Choose two to four: the current cluster and the candidate platforms.",
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["clusters"].queryset = Cluster.objects.filter(roles.visible(user)).order_by("name")

    def clean_clusters(self):
        chosen = self.cleaned_data["clusters"]
        if not 2 <= len(chosen) <= 4:
            raise forms.ValidationError(f"Choose two to four clusters ({len(chosen)} chosen).")
        return chosen


MAX_EXPORT_DAYS = 731


class ExportForm(forms.Form):
    """The period of an audit PDF (UTC)."""

    since = forms.DateTimeField(help_text="YYYY-MM-DD or YYYY-MM-DD HH:MM, UTC")
    until = forms.DateTimeField(help_text="YYYY-MM-DD or YYYY-MM-DD HH:MM, UTC")

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until"):
            if data["since"] >= data["until"]:
                raise forms.ValidationError("The period must start before it ends.")
            if (data["until"] - data["since"]).days > MAX_EXPORT_DAYS:
                raise forms.ValidationError(f"A period of at most {MAX_EXPORT_DAYS} days.")
        return data


class UsernameCapped:
    """A login form with its username's length enforced: Django's sets max_length after the
    field is made, so no validator checks it, and django-axes then records the failed attempt
    in a 255-character column (a database error for a longer name)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["username"]
        field.validators.append(MaxLengthValidator(field.max_length))

    def clean(self):
        if self.errors.get("username") or "username" not in self.cleaned_data:
            # Refused before authenticating: nothing is looked up or recorded for such a name.
            return self.cleaned_data
        return super().clean()


class LoginForm(UsernameCapped, AuthenticationForm):
    """The product's login page."""


class AdminLoginForm(UsernameCapped, AdminAuthenticationForm):
    """The admin site's login page."""
