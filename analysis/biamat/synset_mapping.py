"""Table 14's ImageNet-to-CIFAR-10 class mapping, derived the paper's way (appendix F: "matching classes by ImageNet
synsets as CINIC-10 does") from two public files this project does not ship:

- CINIC-10's ``synsets-to-cifar-10-classes.txt`` (github.com/BayesWatch/cinic-10): each CIFAR-10 class name on a line
  of its own, then the WordNet synsets under it, one per line, indented with dashes by depth, e.g.
  ``--------n02691156: airplane, aeroplane, plane``;
- your ImageNet32 download's class list, which orders its labels: ``map_clsloc.txt``'s lines ``WNID LABEL [NAME]``
  (labels 1..1000), or one WNID per line in label order (label = line number, from 0).

The result is the CSV ``table14 --mapping`` reads: ``aux_class,primary_class`` for every ImageNet class found under a
CIFAR-10 class (the label as the trials count it: ``map_clsloc``'s minus 1), with the synset in a third column. The
other classes are the paper's "Others".
"""

from __future__ import annotations

import csv
import io
import re

SYNSET_LINE = re.compile(r"^-+(n\d{8}):")
WNID = re.compile(r"^n\d{8}$")


def cinic_classes(text: str) -> tuple[dict[str, str], list[str]]:
    """Each synset of CINIC-10's file -> its CIFAR-10 class, and the synsets it lists under two classes (left out:
    neither class can claim them)."""
    classes: dict[str, str] = {}
    twice: set[str] = set()
    current = None
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        if match := SYNSET_LINE.match(line):
            if current is None:
                raise ValueError(f"line {number}: a synset before any class name: is this CINIC-10's "
                                 "synsets-to-cifar-10-classes.txt?")
            wnid = match[1]
            if classes.get(wnid, current) != current:
                twice.add(wnid)
            classes.setdefault(wnid, current)
        elif line.startswith("-"):
            raise ValueError(f"line {number}: {line[:60]!r} is neither a class name nor '---nXXXXXXXX: words'")
        else:
            current = line
    if not classes:
        raise ValueError("no synset lines ('---nXXXXXXXX: words'): is this CINIC-10's synsets-to-cifar-10-classes.txt?")
    return {w: c for w, c in classes.items() if w not in twice}, sorted(twice)


def class_labels(text: str) -> dict[str, int]:
    """Your ImageNet32 class list -> WNID to the label the trials count (0-based)."""
    labels: dict[str, int] = {}
    for number, line in enumerate((line for line in text.splitlines() if line.strip()), start=0):
        fields = line.split()
        if not WNID.match(fields[0]):
            raise ValueError(f"class list line {number + 1}: {line[:60]!r} does not start with a WNID (nXXXXXXXX)")
        label = int(fields[1]) - 1 if len(fields) > 1 and fields[1].isdigit() else number  # map_clsloc: 1-based
        if fields[0] in labels or label in labels.values():
            raise ValueError(f"class list line {number + 1}: {fields[0]} or label {label} appears twice")
        labels[fields[0]] = label
    return labels


def mapping_csv(cinic_text: str, class_list_text: str) -> tuple[str, str]:
    """The ``aux_class,primary_class,synset`` CSV, and a line saying how many classes each CIFAR-10 class got."""
    classes, twice = cinic_classes(cinic_text)
    labels = class_labels(class_list_text)
    rows = sorted((label, classes[wnid], wnid) for wnid, label in labels.items() if wnid in classes)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["aux_class", "primary_class", "synset"])
    writer.writerows(rows)
    counts = dict.fromkeys(dict.fromkeys(classes.values()), 0)  # in the file's class order
    for _, target, _ in rows:
        counts[target] += 1
    summary = (f"{len(rows)} of {len(labels)} classes matched: "
               + ", ".join(f"{target} {n}" for target, n in counts.items())
               + (f"; left out, listed under two classes: {', '.join(twice)}" if twice else ""))
    return out.getvalue(), summary
