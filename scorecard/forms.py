from django import forms

from scorecard.models import Cluster, Row


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
            "sasl_password",
            "ssl_ca_pem",
            "expected_brokers",
            "worker_queue",
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
        }
        widgets = {"ssl_ca_pem": forms.Textarea(attrs={"rows": 3})}

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
