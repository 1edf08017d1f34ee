"""``canary convert``: Flagger manifests into canary's (pure: text in, text and notes out).

Flagger's ``flagger.app/v1beta1`` Canary, MetricTemplate and AlertProvider share their
field names with canary's ``canary.dev/v1beta1``, so most of a conversion is a change of
``apiVersion``. What differs:

- fields canary does not have (another mesh's ``spec.provider``, ``ingressRef``,
  ``upstreamRef``, App Mesh's ``meshName``, ...) are left
  out, each reported as a :class:`Note` naming the document, the field path and the line;
- a few values are translated, and reported: the deprecated ``spec.canaryAnalysis`` becomes
  ``spec.analysis``, ``autoscaling/v2beta*`` becomes ``autoscaling/v2``, the AlertProvider
  type ``gchat`` becomes ``googlechat``, and an AlertProvider's inline ``address`` moves
  into a Secret (canary reads addresses from Secrets only);
- documents canary cannot carry at all (a MetricTemplate of another metrics provider, a
  Canary of a DaemonSet) are left out, with a note;
- what is carried but points at a service Flagger installs and canary does not (its load
  tester, its Prometheus) is noted with what to change (:mod:`.companions`).

HorizontalPodAutoscalers of the removed ``autoscaling/v2beta*`` versions become
``autoscaling/v2`` (:mod:`.autoscaling`), since a manifest converted for canary should
also apply. A rewritten document keeps its comments at their fields (:mod:`.comments`).

Malformed input is refused (:attr:`Result.errors`): YAML that does not parse, a document
that is not a mapping, a ``flagger.app`` apiVersion or kind that is not one of the three, a
duplicate key, and any field of the wrong type or form, found by validating every
converted object with canary's models (strictly, as the API server's schema would). Each
error names the source, the line and the field. A Canary's ``templateVariables`` value is
refused too where the query of its MetricTemplate would refuse it, when the input holds
that MetricTemplate (:mod:`.variables`); without it, values are checked only by the schema.

Documents of any other kind pass through as written (comments included), so a whole
application manifest can be piped through. Output documents keep the input's order.

The work is shared out: :mod:`.reading` reads YAML with the line of every field,
:mod:`.documents` dispatches each document, :mod:`.objects` converts one Flagger object
with the Flagger-specific :mod:`.fixups` and the generic :mod:`.carrying` onto canary's
models, and :mod:`.dumping` writes the result.
"""

from __future__ import annotations

from collections.abc import Iterable

from canary.convert import variables
from canary.convert.documents import convert_document
from canary.convert.reading import documents
from canary.convert.result import Note, Result

__all__ = ["Note", "Result", "convert_text", "convert_texts"]


def convert_text(text: str, source: str = "<stdin>") -> Result:
    """Convert every document of a YAML stream; see the module's docstring."""
    return convert_texts([(text, source)])


def convert_texts(inputs: Iterable[tuple[str, str]]) -> Result:
    """Convert YAML streams, given as (text, source), as one input: a Canary's template
    variables are checked against a MetricTemplate of any of them."""
    result = Result()
    for text, source in inputs:
        for chunk in documents(text, source, result):
            result.extend(convert_document(chunk, source))
    for use, name, message in variables.problems(result.uses, result.templates):
        path, line = use.where(name)
        result.errors.append(Note(use.source, line, use.document, path, message))
    return result
