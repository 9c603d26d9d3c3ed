#!/usr/bin/env python3
"""Strict checker for a Prometheus text-format 0.0.4 or OpenMetrics 1.0 exposition.

    check_exposition.py text|openmetrics FILE

Checks what a scraper relies on: the line grammar (names, label escapes, numbers), metadata
before samples and at most once per family, families contiguous, sample names that belong to
their family's type, no duplicate series, histogram buckets (increasing `le`, non-decreasing
cumulative counts, `+Inf` equal to `_count`), and for OpenMetrics `# UNIT` matching the name,
counter families without `_total`, and `# EOF` as the last line. Exit 0 when clean, 1 otherwise
(each problem printed). Independent of promtool, which checks the text format only.
"""
import math
import re
import sys

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
NUMBER = re.compile(r"[+-]?(?:Inf|NaN|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)$")
TYPES = {"gauge", "counter", "histogram", "summary", "untyped", "unknown", "stateset", "info", "gaugehistogram"}


def parse_labels(text, pos, problems, where):
    """Parses `{k="v",...}` from text[pos] == '{'; returns (labels dict, position after '}')."""
    labels = {}
    pos += 1
    while True:
        if pos < len(text) and text[pos] == "}":
            return labels, pos + 1
        m = LABEL.match(text, pos)
        if not m:
            problems.append(f"{where}: bad label name at column {pos}")
            return labels, len(text)
        key = m.group(0)
        pos = m.end()
        if text[pos:pos + 2] != '="':
            problems.append(f"{where}: expected =\" after label {key}")
            return labels, len(text)
        pos += 2
        value = []
        while pos < len(text) and text[pos] != '"':
            if text[pos] == "\\":
                nxt = text[pos + 1:pos + 2]
                if nxt not in ("\\", '"', "n"):
                    problems.append(f"{where}: bad escape \\{nxt} in label {key}")
                value.append({"\\": "\\", '"': '"', "n": "\n"}.get(nxt, nxt))
                pos += 2
            elif text[pos] == "\n":
                problems.append(f"{where}: raw newline in label {key}")
                pos += 1
            else:
                value.append(text[pos])
                pos += 1
        if pos >= len(text):
            problems.append(f"{where}: unterminated value of label {key}")
            return labels, len(text)
        pos += 1
        if key in labels:
            problems.append(f"{where}: label {key} twice")
        labels[key] = "".join(value)
        if pos < len(text) and text[pos] == ",":
            pos += 1


def to_float(s):
    return float(s.replace("Inf", "inf"))


def main(fmt, path):
    om = fmt == "openmetrics"
    with open(path, "rb") as f:
        raw = f.read()
    problems = []
    try:
        data = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        print(f"not UTF-8: {e}")
        return 1
    if not data.endswith("\n"):
        problems.append("the exposition does not end with a newline")
    lines = data.split("\n")[:-1]
    if om:
        if not lines or lines[-1] != "# EOF":
            problems.append("OpenMetrics: the last line is not # EOF")
        else:
            lines = lines[:-1]
        if "# EOF" in lines:
            problems.append("OpenMetrics: # EOF before the end")

    families = {}  # name -> {"type", "help", "unit", "done"}
    current = None
    series = set()
    buckets = {}  # (family, labels without le) -> list of (le, count)
    counts = {}

    def family_of(sample):
        for fam in sorted(families, key=len, reverse=True):
            t = families[fam]["type"]
            if t == "histogram":
                for suf in ("_bucket", "_sum", "_count") + (("_created",) if om else ()):
                    if sample == fam + suf:
                        return fam, suf
            elif t == "counter" and om:
                for suf in ("_total", "_created"):
                    if sample == fam + suf:
                        return fam, suf
            elif sample == fam:
                return fam, ""
        return None, None

    for no, line in enumerate(lines, 1):
        where = f"line {no}"
        if line == "":
            problems.append(f"{where}: empty line")
            continue
        if line.startswith("#"):
            parts = line.split(" ", 3)
            kind = parts[1] if len(parts) > 1 else ""
            if kind not in ("HELP", "TYPE", "UNIT"):
                if om:
                    problems.append(f"{where}: OpenMetrics allows no free comments")
                continue
            if len(parts) < 3 or not NAME.fullmatch(parts[2]):
                problems.append(f"{where}: bad metric name in # {kind}")
                continue
            name = parts[2]
            rest = parts[3] if len(parts) > 3 else ""
            if kind == "UNIT" and not om:
                continue  # a plain comment in the text format
            fam = families.setdefault(name, {"type": None, "help": None, "unit": None, "done": False, "samples": 0})
            if fam["done"] or fam["samples"]:
                problems.append(f"{where}: metadata for {name} after its samples")
            if current not in (None, name):
                families[current]["done"] = True
            current = name
            if fam[kind.lower()] is not None:
                problems.append(f"{where}: second # {kind} for {name}")
            if kind == "TYPE":
                if rest not in TYPES:
                    problems.append(f"{where}: unknown type {rest}")
                if om and rest == "counter" and name.endswith("_total"):
                    problems.append(f"{where}: OpenMetrics counter family {name} ends in _total")
            if kind == "UNIT" and not name.endswith("_" + rest):
                problems.append(f"{where}: family {name} does not end with its unit {rest}")
            if kind == "HELP":
                for m in re.finditer(r"\\(.?)", rest):
                    if m.group(1) not in ("\\", "n") + (('"',) if om else ()):
                        problems.append(f"{where}: bad escape in HELP")
            fam[kind.lower()] = rest
            continue

        m = NAME.match(line)
        if not m:
            problems.append(f"{where}: bad sample name")
            continue
        sample = m.group(0)
        pos = m.end()
        labels = {}
        if pos < len(line) and line[pos] == "{":
            labels, pos = parse_labels(line, pos, problems, where)
        if line[pos:pos + 1] != " ":
            problems.append(f"{where}: expected a space before the value")
            continue
        fields = line[pos + 1:].split(" ")
        if not NUMBER.match(fields[0]) or len(fields) > 2:
            problems.append(f"{where}: bad value {line[pos + 1:]!r}")
            continue
        value = to_float(fields[0])
        fam, suffix = family_of(sample)
        if fam is None:
            if om:
                problems.append(f"{where}: sample {sample} belongs to no declared family")
                continue
            fam, suffix = sample, ""
            families[fam] = {"type": "untyped", "help": None, "unit": None, "done": False, "samples": 0}
        info = families[fam]
        if info["done"]:
            problems.append(f"{where}: family {fam} continues after another family began")
        if current not in (None, fam):
            families[current]["done"] = True
        current = fam
        info["samples"] += 1
        if info["help"] is None or info["type"] is None:
            problems.append(f"{where}: {fam} has samples without HELP and TYPE")
        if info["type"] == "counter" and not om and not sample.endswith("_total"):
            problems.append(f"{where}: counter {sample} does not end in _total")
        if info["type"] != "histogram" and "le" in labels:
            problems.append(f"{where}: le label outside a histogram")
        key = (sample, tuple(sorted(labels.items())))
        if key in series:
            problems.append(f"{where}: duplicate series {sample}{labels}")
        series.add(key)
        if info["type"] in ("counter", "histogram") and suffix != "_created" and value < 0:
            problems.append(f"{where}: negative {info['type']} value")
        if info["type"] == "histogram":
            base = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
            if suffix == "_bucket":
                if "le" not in labels or not NUMBER.match(labels["le"]):
                    problems.append(f"{where}: bucket without a numeric le")
                    continue
                if om and labels["le"] != "+Inf" and "." not in labels["le"] and "e" not in labels["le"]:
                    problems.append(f"{where}: OpenMetrics le {labels['le']} is not a canonical float")
                buckets.setdefault((fam, base), []).append((to_float(labels["le"]), value))
            elif suffix == "_count":
                counts[(fam, base)] = value

    for (fam, base), bs in buckets.items():
        les = [le for le, _ in bs]
        if les != sorted(les) or len(set(les)) != len(les):
            problems.append(f"{fam}{dict(base)}: le not strictly increasing")
        if not les or not math.isinf(les[-1]):
            problems.append(f"{fam}{dict(base)}: no +Inf bucket")
        vals = [v for _, v in bs]
        if vals != sorted(vals):
            problems.append(f"{fam}{dict(base)}: cumulative counts decrease")
        if counts.get((fam, base)) != (vals[-1] if vals else None):
            problems.append(f"{fam}{dict(base)}: +Inf bucket differs from _count")
    for fam, info in families.items():
        if info["samples"] == 0:
            problems.append(f"{fam}: metadata without samples")

    for p in problems:
        print(p)
    print(f"{path}: {len(families)} families, {len(series)} samples, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("text", "openmetrics"):
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
