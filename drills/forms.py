"""The drill form: a scenario, its parameters and guardrails, and a typed confirmation."""

from django import forms

from scorecard import catalog
from scorecard.catalog import Scenario
from scorecard.forms import add_param_errors, param_field

DRILL_FORM_PARAMS = (
    "fault_seconds", "baseline_seconds", "settle_seconds", "broker", "zone", "move_leaders", "interval_ms",
    "latency_slo_ms", "stability_window_seconds", "max_duration_seconds", "max_error_rate", "error_window_seconds",
    "max_consumer_lag", "min_healthy_brokers", "write_rto_target_seconds", "reelection_target_seconds",
    "canary_group", "canary_topic", "max_offset_lag",
)  # fmt: skip


class DrillForm(forms.Form):
    """Start a drill: the scenario, its parameters and guardrails, and a typed confirmation."""

    scenario = forms.ChoiceField()  # choices: what the cluster's actuator can perform
    confirm = forms.CharField(
        label="Type the cluster's name to confirm", help_text="This drill disrupts the cluster for real."
    )

    def __init__(self, *args, cluster, scenarios: list[Scenario], **kwargs):
        super().__init__(*args, **kwargs)
        self.cluster = cluster
        # Only what the cluster's actuator can perform (drills.services.scenario_refusal).
        self.fields["scenario"].choices = [(s.value, s.label) for s in scenarios]
        spec = {p.name: p for p in catalog.SPECS["drill"]}
        for name in DRILL_FORM_PARAMS:
            param = spec[name]
            field = param_field(param)
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
            self.params = vars(catalog.parse("drill", values))
        except catalog.ParamError as exc:
            add_param_errors(self, exc)
        return data
