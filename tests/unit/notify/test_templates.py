"""Message templates: documented variables, forgiving substitution."""

from __future__ import annotations

from canary.notify import VARIABLES, render
from canary.notify.template import unknown_variables, variables
from tests.unit.notify.helpers import make_alert


def test_every_documented_variable_has_a_value() -> None:
    assert set(variables(make_alert())) == set(VARIABLES)


def test_the_first_failing_check_fills_metric_value_and_bound() -> None:
    text = render("$metric was $value, bound $bound (min $min, max $max)", make_alert())
    assert text == "request-success-rate was 95.2, bound >= 99 (min 99, max )"


def test_evidence_lists_every_failing_check() -> None:
    assert render("$evidence", make_alert()) == "request-success-rate 95.2 (bound >= 99): Failed"


def test_the_phase_change_and_weight() -> None:
    text = render("${previous_phase} -> ${phase} at ${weight}%", make_alert(weight=30))
    assert text == "Progressing -> Failed at 30%"


def test_without_a_template_the_default_message_is_used() -> None:
    alert = make_alert()
    assert render(None, alert) == alert.message == render("", alert)


def test_unknown_names_and_stray_dollars_are_left_as_written() -> None:
    """A typo shows in the message instead of losing the alert."""
    assert render("$canary costs $5 and $nosuch", make_alert()) == "podinfo costs $5 and $nosuch"
    assert render("$$canary", make_alert()) == "$canary"


def test_unknown_variables_are_reported_for_validation() -> None:
    assert unknown_variables("$canary $nosuch ${weight} $other") == ["nosuch", "other"]


def test_a_rollback_names_the_weight_it_was_rolled_back_at() -> None:
    text = render("back to ${weight}% from ${rolled_back_at}%", make_alert(rolled_back_at=30))
    assert text == "back to 0% from 30%"
    assert render("[$rolled_back_at]", make_alert()) == "[]"


def test_unknown_variables_are_named_once_in_order_of_use() -> None:
    assert unknown_variables("$wieght ${canary} $wieght $$x") == ["wieght"]
