"""What a conversion gives: the converted documents and what is said about them."""

from __future__ import annotations

from dataclasses import dataclass, field

from canary.convert import variables


@dataclass(frozen=True)
class Note:
    """One thing to tell the user about one field of one document."""

    source: str
    line: int | None
    document: str
    path: str
    message: str
    #: Something the input said is lost (False: carried over, in another form or with
    #: something to change before it works as it did under Flagger).
    lost: bool = True

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        field_path = f": {self.path}" if self.path else ""
        return f"{where}: {self.document}{field_path}: {self.message}"


@dataclass
class Result:
    """The converted documents (YAML texts, in input order) and what was said about them."""

    documents: list[str] = field(default_factory=list)
    #: Something was not carried over as written (left out, moved or translated).
    notes: list[Note] = field(default_factory=list)
    #: The input is malformed: nothing should be written.
    errors: list[Note] = field(default_factory=list)
    #: How many Flagger objects were converted.
    converted: int = 0
    #: The converted Canaries' metrics that name a MetricTemplate, and the converted
    #: MetricTemplates (the last of a name wins, as when applied in order).
    uses: list[variables.TemplateUse] = field(default_factory=list)
    templates: dict[variables.TemplateKey, variables.Template] = field(default_factory=dict)

    def extend(self, other: Result) -> None:
        self.documents += other.documents
        self.notes += other.notes
        self.errors += other.errors
        self.converted += other.converted
        self.uses += other.uses
        self.templates.update(other.templates)

    def text(self) -> str:
        """All documents as one multi-document YAML stream."""
        return "---\n".join(doc if doc.endswith("\n") else doc + "\n" for doc in self.documents)
