from django import forms
from django.core.validators import RegexValidator

from scorecard import catalog
from scorecard.models import Check, Cluster, Row


class ClusterForm(forms.ModelForm):
    """Registration of a cluster; the secret is write-only and never rendered back."""

    sasl_password = forms.CharField(
        required=False, widget=forms.PasswordInput(render_value=False), label="SASL password", max_length=500
    )

    class Meta:
        model = Cluster
        fields = [
            "name",
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
        ]
        labels = {
            "ssl_ca_pem": "CA certificate (PEM)",
            "sasl_mechanism": "SASL mechanism",
            "sasl_username": "SASL username",
        }
        help_texts = {
            "bootstrap_servers": "host:port, comma separated, e.g. kafka-1.internal:9092,kafka-2.internal:9092",
            "worker_queue": "The Celery queue whose workers can reach this cluster.",
            "expected_brokers": "Cluster health warns when fewer brokers answer.",
            "standby": "The cluster this one fails over or migrates to; adds the standby parity check.",
            "drills_allowed": "Allow disruptive drills on this cluster.",
            "actuator": "What performs a drill's faults and recovery.",
            "actuator_commands": (
                'Administrators only. {"broker_down": ["systemctl", "stop", "kafka@{broker}"], "broker_up": [...], '
                '"timeout_seconds": 60}: run without a shell; placeholders {broker}, {host}, {port}, {rack}.'
            ),
        }
        widgets = {
            "ssl_ca_pem": forms.Textarea(attrs={"rows": 3}),
            "actuator_commands": forms.Textarea(attrs={"rows": 4}),
        }

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        # Command templates run programs on the workers: only administrators may set them.
        if user is None or not user.is_staff:
            del self.fields["actuator_commands"]
        others = Cluster.objects.all()
        if self.instance.pk:
            others = others.exclude(pk=self.instance.pk)
            self.fields["sasl_password"].help_text = "Leave empty to keep the stored password."
        self.fields["standby"].queryset = others

    def _post_clean(self):
        # Write-only: an empty field on edit keeps what is stored, for as long as the cluster is
        # reached at the same endpoint (Cluster.SECRET_BOUND_TO).
        if typed := self.cleaned_data.get("sasl_password"):
            self.instance.sasl_password = typed
        super()._post_clean()

    def clean_bootstrap_servers(self):
        return ",".join(entry.strip() for entry in self.cleaned_data["bootstrap_servers"].split(","))


class RowForm(forms.ModelForm):
    class Meta:
        model = Row
        fields = ["owner", "owner_contact", "test_description", "rollback_condition", "target"]
        widgets = {
            "test_description": forms.Textarea(attrs={"rows": 3}),
            "rollback_condition": forms.Textarea(attrs={"rows": 3}),
        }
        help_texts = {
            "rollback_condition": (
                "When a drill on this row must stop and undo itself. A row without one is at best WARN."
            ),
        }


class ScheduleForm(forms.ModelForm):
    class Meta:
        model = Check
        fields = ["interval_seconds", "max_age_seconds"]
        labels = {"interval_seconds": "Run every (seconds)", "max_age_seconds": "Maximum evidence age (seconds)"}
        help_texts = {"max_age_seconds": "Older evidence turns the check STALE without any probe running."}


class NotApplicableForm(forms.ModelForm):
    class Meta:
        model = Check
        fields = ["not_applicable", "not_applicable_reason"]
        labels = {"not_applicable": "Not applicable on this cluster", "not_applicable_reason": "Reason"}
        widgets = {"not_applicable_reason": forms.Textarea(attrs={"rows": 2})}


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
            validators=[RegexValidator(f"^{catalog.NAME_PATTERN}$", "Use letters, digits, '.', '_' or '-'.")],
            **common,
        )
    if param.kind == "names":
        return forms.CharField(required=False, **common)
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
        self.spec = catalog.SPECS[check.kind]
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
        return {name: value for name, value in self.parsed.items() if value is not None}
