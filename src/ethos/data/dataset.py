"""The Dataset value object: what every later stage (training, audit, governance) receives.

It carries model inputs (texts or text pairs), integer labels with their names, audit group columns,
row ids, the split, columns kept only for auditing, the fingerprint, and the notes and warnings
that must travel into the manifest. It prints a summary a human can read in a terminal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ethos.data.split import PARTS


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """Rows ready for a model, with their groups and provenance. Arrays are aligned by position."""

    name: str
    source: str
    ids: np.ndarray
    texts: list[str]
    labels: np.ndarray
    label_names: tuple[str, ...]
    groups: pd.DataFrame
    split: np.ndarray
    fingerprint: str
    text_pairs: list[str] | None = None
    extra: pd.DataFrame = field(default_factory=pd.DataFrame)
    records: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Raw values of the record fields and sensitive columns (tables only), so the audit can
    re-render a row's text with one field changed (counterfactual flips)."""
    text_fields: tuple[str, ...] = ()
    text_includes_sensitive: bool = False
    source_sha256: str | None = None
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.ids)

    def part(self, name: str) -> Dataset:
        """The rows of one split part (train, validation or test), same fingerprint."""
        if name not in PARTS:
            raise ValueError(f"unknown split part {name!r}; expected one of {PARTS}")
        mask = self.split == name
        keep = np.flatnonzero(mask)
        return Dataset(
            name=f"{self.name}[{name}]",
            source=self.source,
            ids=self.ids[keep],
            texts=[self.texts[i] for i in keep],
            labels=self.labels[keep],
            label_names=self.label_names,
            groups=self.groups.iloc[keep].reset_index(drop=True),
            split=self.split[keep],
            fingerprint=self.fingerprint,
            text_pairs=None if self.text_pairs is None else [self.text_pairs[i] for i in keep],
            extra=self.extra.iloc[keep].reset_index(drop=True) if len(self.extra) else self.extra,
            records=self.records.iloc[keep].reset_index(drop=True)
            if len(self.records)
            else self.records,
            text_fields=self.text_fields,
            text_includes_sensitive=self.text_includes_sensitive,
            source_sha256=self.source_sha256,
            notes=self.notes,
            warnings=self.warnings,
        )

    def label_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(self.label_names))
        return {name: int(c) for name, c in zip(self.label_names, counts, strict=True)}

    def to_frame(self) -> pd.DataFrame:
        """One row per example: id, split, text(s), label, groups and kept columns."""
        frame = pd.DataFrame({"id": self.ids, "split": self.split, "text": self.texts})
        if self.text_pairs is not None:
            frame["text_pair"] = self.text_pairs
        frame["label"] = [self.label_names[i] for i in self.labels]
        return pd.concat([frame, self.groups, self.extra], axis=1)

    def summary(self) -> dict[str, Any]:
        """The facts the manifest records about the data."""
        return {
            "name": self.name,
            "source": self.source,
            "source_sha256": self.source_sha256,
            "rows": len(self),
            "fingerprint": self.fingerprint,
            "label_names": list(self.label_names),
            "label_counts": self.label_counts(),
            "split_counts": {p: int((self.split == p).sum()) for p in PARTS},
            "groups": {
                c: {str(k): int(v) for k, v in self.groups[c].value_counts().items()}
                for c in self.groups.columns
            },
            "text_fields": list(self.text_fields),
            "text_includes_sensitive": self.text_includes_sensitive,
            "notes": list(self.notes),
            "warnings": list(self.warnings),
        }

    def __repr__(self) -> str:
        n = len(self)
        lines = [f"<Dataset {self.name!r}: {n} rows, fingerprint {self.fingerprint[:12]}>"]
        balance = ", ".join(
            f"{k} {v} ({v / n:.1%})" if n else f"{k} 0" for k, v in self.label_counts().items()
        )
        lines.append(f"  labels: {balance}")
        splits = ", ".join(f"{p} {int((self.split == p).sum())}" for p in PARTS)
        lines.append(f"  split:  {splits}")
        kind = "text pairs" if self.text_pairs is not None else "texts"
        fields = ", ".join(self.text_fields) or "-"
        sensitive = "included" if self.text_includes_sensitive else "excluded"
        lines.append(f"  model input: {kind} from {fields} (sensitive attributes {sensitive})")
        for column in self.groups.columns:
            counts = self.groups[column].value_counts()
            shown = ", ".join(f"{k} {v}" for k, v in counts.head(8).items())
            more = f", ... ({len(counts) - 8} more)" if len(counts) > 8 else ""
            lines.append(f"  group {column}: {shown}{more}")
        if len(self.extra.columns):
            lines.append(f"  kept for audit only: {', '.join(self.extra.columns)}")
        lines.extend(f"  note: {note}" for note in self.notes)
        lines.extend(f"  warning: {w}" for w in self.warnings)
        return "\n".join(lines)
