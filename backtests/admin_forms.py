"""The admin's "Add run" form: the API's own validation, so that a run added by hand is
one the API would have made (its input hash, its task, no duplicate)."""

import json

from django import forms

from backtests.catalog.validation import ValidationError, parse_run_request
from backtests.engine import strategies
from backtests.models import Dataset, Run

# The API's field names, where the form's differ.
FORM_FIELD = {"dataset_id": "dataset"}


class RunAddForm(forms.ModelForm):
    """The inputs of a new run, checked by `parse_run_request` as a POST body would be."""

    class Meta:
        model = Run
        fields = ["dataset", "strategy_id", "params", "seed", "slippage_fees", "speed"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["strategy_id"] = forms.ChoiceField(
            choices=[(name, name) for name in strategies.REGISTRY], label="Strategy"
        )
        self.fields["speed"].required = False
        self.fields["speed"].initial = None
        self.fields["speed"].help_text = "empty: the whole dataset in about a minute"
        self.fields["slippage_fees"].initial = {"k_spread": 0.02, "fees_bps": 1}
        self.run_request = None

    def clean(self) -> dict:
        """Validate the inputs as the API does; each problem on its own field."""
        data = super().clean()
        if self.errors:
            return data
        dataset = data["dataset"]
        if dataset.status != Dataset.Status.READY:
            self.add_error("dataset", f"dataset {dataset.pk} is {dataset.status}: runs need READY")
            return data
        body = {
            "dataset_id": dataset.pk,
            "strategy_id": data["strategy_id"],
            "params": data["params"],
            "seed": data["seed"],
            "slippage_fees": data["slippage_fees"],
        }
        if data.get("speed") is not None:
            body["speed"] = data["speed"]
        try:
            self.run_request = parse_run_request(json.dumps(body).encode())
        except ValidationError as refused:
            for name, problem in refused.details.items():
                field = FORM_FIELD.get(name.split(".")[0], name.split(".")[0])
                self.add_error(field if field in self.fields else None, f"{name}: {problem}")
        return data
