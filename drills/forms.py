"""The parameters form of a check, built from the probe's declared parameter spec."""

from django import forms
from django.core.validators import RegexValidator

from drills import kafka
from drills import params as probe_params
from drills.probes.groups import missing_groups

GROUP_CHECK_TIMEOUT = 5.0


def _field(param: probe_params.Param) -> forms.Field:
    common = {"label": param.title, "help_text": param.help}
    if param.kind == "int":
        return forms.IntegerField(
            required=not param.optional, min_value=param.minimum, max_value=param.maximum, **common
        )
    if param.kind == "float":
        return forms.FloatField(required=True, min_value=param.minimum, max_value=param.maximum, **common)
    if param.kind == "bool":
        return forms.BooleanField(required=False, **common)
    if param.kind == "str":
        return forms.CharField(
            validators=[RegexValidator(f"^{probe_params.NAME_PATTERN}$", "Use letters, digits, '.', '_' or '-'.")],
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


class ParamsForm(forms.Form):
    """Edits one check's parameters. Errors land on the field they concern."""

    def __init__(self, *args, check, connection: kafka.ConnectionSettings | None = None, **kwargs):
        self.check = check
        self.connection = connection
        self.spec = probe_params.SPECS[check.kind]
        current = {**probe_params.defaults(check.kind), **check.params}
        initial = {
            p.name: ", ".join(current.get(p.name, [])) if p.kind == "names" else current.get(p.name) for p in self.spec
        }
        super().__init__(*args, initial=initial, **kwargs)
        for param in self.spec:
            self.fields[param.name] = _field(param)

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
            values[param.name] = value
        try:
            self.parsed = vars(probe_params.parse(self.check.kind, values))
        except probe_params.ParamError as exc:
            for name, message in exc.errors.items():
                self.add_error(name if name in self.fields else None, message)
            return data
        groups = self.parsed.get("groups") or []
        if groups and self.connection is not None:
            self._check_groups_exist(groups)
        return data

    def _check_groups_exist(self, groups: list[str]) -> None:
        """A group that has never committed offsets does not exist to Kafka: refuse it now."""
        try:
            missing = missing_groups(
                self.connection, groups, topics=self.parsed.get("topics") or [], timeout=GROUP_CHECK_TIMEOUT
            )
        except kafka.KafkaCallError as exc:
            self.add_error("groups", f"Could not check that the groups exist: {exc.reason}")
            return
        if missing:
            self.add_error("groups", f"No committed offsets on the cluster for: {', '.join(missing)}.")

    def params(self) -> dict:
        return {name: value for name, value in self.parsed.items() if value is not None}


DRILL_FORM_PARAMS = (
    "fault_seconds", "baseline_seconds", "settle_seconds", "broker", "zone", "move_leaders", "interval_ms",
    "latency_slo_ms", "stability_window_seconds", "max_duration_seconds", "max_error_rate", "error_window_seconds",
    "max_consumer_lag", "min_healthy_brokers", "write_rto_target_seconds", "reelection_target_seconds",
    "canary_group", "canary_topic",
)  # fmt: skip


class DrillForm(forms.Form):
    """Start a drill: the scenario, its parameters and guardrails, and a typed confirmation."""

    scenario = forms.ChoiceField()
    confirm = forms.CharField(
        label="Type the cluster's name to confirm", help_text="This drill disrupts the cluster for real."
    )

    def __init__(self, *args, cluster, **kwargs):
        from drills.models import Scenario
        from drills.scenarios import SUPPORTED

        super().__init__(*args, **kwargs)
        self.cluster = cluster
        self.fields["scenario"].choices = [(s, Scenario(s).label) for s in SUPPORTED]
        spec = {p.name: p for p in probe_params.SPECS["drill"]}
        for name in DRILL_FORM_PARAMS:
            param = spec[name]
            field = _field(param)
            field.required = not param.optional and param.kind != "bool"
            if param.kind != "bool":
                field.initial = param.default
            self.fields[name] = field
        self.order_fields(["scenario", *DRILL_FORM_PARAMS, "confirm"])

    def clean_confirm(self):
        if self.cleaned_data["confirm"].strip() != self.cluster.name:
            raise forms.ValidationError(f"Type {self.cluster.name} exactly to confirm the drill.")
        return self.cleaned_data["confirm"]

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        values = {name: data.get(name) for name in DRILL_FORM_PARAMS}
        values = {k: v for k, v in values.items() if v not in (None, "")}
        try:
            self.params = vars(probe_params.parse("drill", values))
        except probe_params.ParamError as exc:
            for name, message in exc.errors.items():
                self.add_error(name if name in self.fields else None, message)
        return data
