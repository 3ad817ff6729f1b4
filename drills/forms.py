"""The drill form: a scenario, its parameters and guardrails, and a typed confirmation."""

from django import forms

from drills import services
from drills.models import WEEKDAY_NAMES
from scorecard import catalog, roles
from scorecard.catalog import Scenario
from scorecard.forms import add_param_errors, param_field
from scorecard.models import Cluster, Row
from scorecard.targets import GUARDRAILS, row_guardrails

DRILL_FORM_PARAMS = (
    "fault_seconds", "baseline_seconds", "settle_seconds", "broker", "zone", "move_leaders", "interval_ms",
    "latency_slo_ms", "stability_window_seconds", *GUARDRAILS, "canary_group", "canary_topic", "max_offset_lag",
)  # fmt: skip


# Parameters only some scenarios use; the form shows them for those alone and ignores them
# for the others. The rest apply to every drill.
ONLY_FOR = {
    "broker": (Scenario.BROKER_LOSS, Scenario.LEADER_CHANGE),
    "zone": (Scenario.ZONE_LOSS,),
    "move_leaders": (Scenario.BROKER_LOSS, Scenario.ZONE_LOSS),
    "canary_group": (Scenario.STANDBY_CUTOVER,),
    "canary_topic": (Scenario.STANDBY_CUTOVER,),
    "max_offset_lag": (Scenario.STANDBY_CUTOVER,),
}


class DrillForm(forms.Form):
    """Start a drill: the scenario, its parameters and guardrails, and a typed confirmation."""

    scenario = forms.ChoiceField()  # choices: what the cluster's actuator can perform
    confirm = forms.CharField(
        max_length=200,
        label="Type the cluster's name to confirm",
        help_text="This drill disrupts the cluster for real.",
    )

    def __init__(self, *args, cluster, scenarios: list[Scenario], row_limits: dict, **kwargs):
        """`row_limits`: the rows' guardrails, {name: (value, "Row title row")}: the defaults."""
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
            if name in row_limits:
                value, row = row_limits[name]
                field.initial = value
                field.help_text = (
                    f"From the {row}'s rollback condition: you may tighten it; only a drill approver may loosen it."
                )
            elif name in GUARDRAILS:
                field.help_text += " No row sets this guardrail."
            if name in ONLY_FOR:
                field.widget.attrs["data-scenarios"] = " ".join(ONLY_FOR[name])
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
        scenario = data.get("scenario")
        values = {name: data.get(name) for name in DRILL_FORM_PARAMS if scenario in ONLY_FOR.get(name, (scenario,))}
        values = {k: v for k, v in values.items() if v not in (None, "")}
        try:
            self.params = vars(catalog.parse("drill", values))
        except catalog.ParamError as exc:
            add_param_errors(self, exc)
        # What was typed for each guardrail (None: take the rows'); the service decides.
        self.guardrails = {name: values.get(name) for name in GUARDRAILS}
        return data

    def start(self, user):
        """Queue the drill as `user` asked it (page or API); DrillRefused or QueueUnavailable."""
        return services.drill_run_start(
            cluster=self.cluster,
            scenario=self.cleaned_data["scenario"],
            params=self.params,
            guardrails=self.guardrails,
            may_loosen=roles.can(user, "approve_drills"),
            requested_by=user.get_username(),
        )


class DrillScheduleForm(forms.Form):
    """An approver schedules a scenario inside allowed windows."""

    scenario = forms.ChoiceField()
    weekdays = forms.TypedMultipleChoiceField(
        coerce=int,
        choices=[(i + 1, name) for i, name in enumerate(WEEKDAY_NAMES)],
        widget=forms.CheckboxSelectMultiple,
        help_text="Days whose window may run the drill (one drill per window).",
    )
    window_start = forms.TimeField(help_text="HH:MM, in the time zone below.")
    window_end = forms.TimeField(help_text="HH:MM; before the start means the next day.")
    time_zone = forms.CharField(max_length=64, initial="UTC", help_text="IANA name, e.g. Europe/Paris.")
    fault_seconds = forms.FloatField(min_value=0.5, max_value=3600, initial=10.0)
    max_duration_seconds = forms.IntegerField(
        min_value=5, max_value=3600, required=False, help_text="Empty: the rows' guardrail (or 300 s)."
    )

    def __init__(self, *args, scenarios: list[Scenario], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["scenario"].choices = [(s.value, s.label) for s in scenarios]

    def params(self) -> dict:
        data = self.cleaned_data
        params = {"fault_seconds": data["fault_seconds"]}
        if data.get("max_duration_seconds") is not None:
            params["max_duration_seconds"] = data["max_duration_seconds"]
        return params


def scenarios_offered(cluster: Cluster) -> dict[Scenario, str]:
    """Every scenario with why the cluster cannot run it ("" = offered): only what its actuator
    can perform is offered; the rest is listed with the reason."""
    return {s: services.scenario_refusal(cluster, s) for s in Scenario}


def drill_start_form(cluster: Cluster, refusals: dict | None = None, data=None) -> DrillForm:
    """The start form (page and API), its guardrails defaulting to the rows' for the scenario asked."""
    refusals = scenarios_offered(cluster) if refusals is None else refusals
    scenario = (data or {}).get("scenario") or Scenario.BROKER_LOSS
    rows = Row.objects.filter(scorecard__cluster=cluster, key__in=services.drill_rows(scenario))
    offered = [s for s, reason in refusals.items() if not reason]
    return DrillForm(data, cluster=cluster, scenarios=offered, row_limits=row_guardrails(rows))
