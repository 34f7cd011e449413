"""How the CLI shows things: sizes, times, tables and stats, the way Ollama does.

Pure formatting lives here (no network, no rich: live progress is in
`progress`) so it is tested on its own, and scripts that scrape `ollama list` or
`ollama run --verbose` output keep working. Answers are read as the server's JSON (what
`pasture.client.light` returns), so printing them needs no wire types.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

Json = Mapping[str, Any]

# ----- sizes and times --------------------------------------------------------------------

_UNITS = ((10**12, "TB"), (10**9, "GB"), (10**6, "MB"), (10**3, "KB"))


def human_bytes(size: int) -> str:
    """Decimal units as Ollama prints them: `98 MB`, `4.7 GB`, `1 GB`, `512 B`."""
    for factor, unit in _UNITS:
        if size >= factor:
            value = size / factor
            if value >= 10 or value == math.trunc(value):
                return f"{int(value)} {unit}"
            return f"{value:.1f} {unit}"
    return f"{size} B"


def human_duration(seconds: float) -> str:
    """An approximate span: `Less than a second`, `About a minute`, `4 hours`, `2 weeks`."""
    whole = int(seconds)
    if whole < 1:
        return "Less than a second"
    if whole == 1:
        return "1 second"
    if whole < 60:
        return f"{whole} seconds"
    minutes = whole // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(seconds / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def instant(value: str | None) -> datetime | None:
    """A timestamp from the wire (RFC 3339, as Ollama writes it; extra digits dropped)."""
    return datetime.fromisoformat(value) if value else None


def human_time(moment: datetime | None, never: str = "Never", now: datetime | None = None) -> str:
    """`2 minutes ago`, `4 minutes from now`, or `Forever` for a date decades ahead."""
    if moment is None or moment.year <= 1:
        return never
    now = now or datetime.now(UTC)
    delta = (_aware(moment) - now).total_seconds()
    if delta > 20 * 365 * 24 * 3600:
        return "Forever"
    if delta > 0:
        return f"{human_duration(delta)} from now"
    return f"{human_duration(-delta)} ago"


def until(expires_at: datetime | None, now: datetime | None = None) -> str:
    """The `ps` UNTIL column: when a loaded model will be unloaded."""
    now = now or datetime.now(UTC)
    if expires_at is not None and expires_at.year > 1 and _aware(expires_at) < now:
        return "Stopping..."
    return human_time(expires_at, "Never", now)


def processor(size: int, size_vram: int) -> str:
    """The `ps` PROCESSOR column: `100% GPU`, `100% CPU` or `48%/52% CPU/GPU`."""
    if size_vram == 0:
        return "100% CPU"
    if size_vram == size:
        return "100% GPU"
    if size_vram > size or size == 0:
        return "Unknown"
    cpu = round((size - size_vram) / size * 100)
    return f"{cpu}%/{100 - cpu}% CPU/GPU"


def short_digest(digest: str) -> str:
    """The ID column: the first 12 hex digits of a digest."""
    return digest.removeprefix("sha256:")[:12]


def format_duration(nanoseconds: int) -> str:
    """A precise duration for `--verbose`: `850µs`, `35ms`, `1.2s`, `2m3.5s`."""
    seconds = nanoseconds / 1e9
    if seconds < 1e-3:
        return f"{nanoseconds / 1e3:.0f}µs"
    if seconds < 1:
        return f"{seconds * 1e3:.0f}ms" if seconds >= 0.01 else f"{seconds * 1e3:.1f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{int(minutes)}m{rest:.1f}s"
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}h{minutes}m{rest:.0f}s"


# ----- tables -----------------------------------------------------------------------------


def table(header: Sequence[str] | None, rows: Iterable[Sequence[str]], padding: int = 4) -> str:
    """Left-aligned columns separated by spaces, no borders (Ollama's tablewriter look)."""
    all_rows = [list(header)] if header else []
    all_rows += [list(row) for row in rows]
    if not all_rows:
        return ""
    widths = [max(len(row[i]) for row in all_rows if i < len(row)) for i in range(len(all_rows[0]))]
    lines = []
    for row in all_rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append((" " * padding).join(cells).rstrip())
    return "\n".join(lines) + "\n"


def list_table(models: Sequence[Json], now: datetime | None = None) -> str:
    rows = [
        [m["name"], short_digest(m["digest"]), human_bytes(m["size"]),
         human_time(instant(m["modified_at"]), now=now)]
        for m in models
    ]
    return table(["NAME", "ID", "SIZE", "MODIFIED"], rows)


def ps_table(models: Sequence[Json], now: datetime | None = None) -> str:
    """`pasture ps`; a NODE column when a cluster serves the models, a SPLIT column when
    RPC workers hold some of their layers."""
    clustered = any(m.get("node") for m in models)
    split = any(m.get("split") for m in models)
    return table(
        ["NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL", "ENGINE", "RUNNING", "WAITING",
         *(["NODE"] if clustered else []), *(["SPLIT"] if split else [])],
        [
            [
                m["name"],
                short_digest(m["digest"]),
                human_bytes(m["size"]),
                processor(m["size"], m["size_vram"]),
                str(m["context_length"]),
                until(instant(m["expires_at"]), now),
                m.get("engine") or "",
                "" if m.get("running") is None else str(m["running"]),
                "" if m.get("waiting") is None else str(m["waiting"]),
                *([m.get("node") or ""] if clustered else []),
                *([m.get("split") or ""] if split else []),
            ]
            for m in models
        ],
    )


def nodes_table(nodes: Sequence[Json]) -> str:
    """`pasture nodes`: each machine's memory (free of what it offers), GPUs, models and
    queue."""
    return table(
        ["NODE", "ADDRESS", "MEMORY", "GPUS", "MODELS", "RUNNING", "WAITING"],
        [
            [
                n["name"],
                n["address"],
                f"{human_bytes(n['memory_available'])} / {human_bytes(n['memory_total'])}",
                ", ".join(f"{g['name']} {human_bytes(g['memory_free'])} free"
                          for g in n.get("gpus") or []) or "-",
                ", ".join(m["name"] for m in n.get("models") or []) or "-",
                str(n.get("running", 0)),
                str(n.get("waiting", 0)),
            ]
            for n in nodes
        ],
    )


def _section(title: str, rows: list[list[str]]) -> str:
    body = table(None, [["", *row] for row in rows])
    return f"  {title}\n{body}\n"


def _head(text: str, count: int = 2) -> list[list[str]]:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    rows = [[line] for line in lines[:count]]
    return rows + [["..."]] if len(lines) > count else rows


def _metadata_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        shown = ", ".join(str(item) for item in value[:3])
        more = f" ...+{len(value) - 3} more" if len(value) > 3 else ""
        return f"[{shown}{more}]"
    return str(value)


def show_info(info: Json, verbose: bool = False) -> str:
    """`pasture show MODEL`: model facts, capabilities, parameters, system and license."""
    model_info = info.get("model_info") or {}
    details = info.get("details") or {}
    arch = str(model_info.get("general.architecture") or details.get("family") or "")
    model_rows = [["architecture", arch]] if arch else []
    params = details.get("parameter_size")
    if not params and isinstance(model_info.get("general.parameter_count"), int | float):
        params = human_number(int(model_info["general.parameter_count"]))
    if params:
        model_rows.append(["parameters", params])
    for key in ("context_length", "embedding_length"):
        value = model_info.get(f"{arch}.{key}")
        if value is not None:
            model_rows.append([key.replace("_", " "), str(value)])
    model_rows.append(["quantization", details.get("quantization_level") or ""])
    out = _section("Model", model_rows)
    if info.get("capabilities"):
        out += _section("Capabilities", [[c] for c in info["capabilities"]])
    if info.get("parameters"):
        rows = [line.split(None, 1) for line in info["parameters"].splitlines() if line.strip()]
        out += _section("Parameters", [[r[0], r[1].strip() if len(r) > 1 else ""] for r in rows])
    if verbose and model_info:
        out += _section(
            "Metadata", [[key, _metadata_value(model_info[key])] for key in sorted(model_info)]
        )
    if verbose and info.get("tensors"):
        out += _section("Tensors", [[t["name"], t["type"], f"[{' '.join(map(str, t['shape']))}]"]
                                    for t in info["tensors"]])
    if info.get("system"):
        out += _section("System", _head(info["system"]))
    if info.get("license"):
        out += _section("License", _head(info["license"]))
    return out


def human_number(count: int) -> str:
    """Parameter counts: `135M`, `7B`."""
    for factor, unit in ((10**9, "B"), (10**6, "M"), (10**3, "K")):
        if count > factor:
            return f"{round(count / factor)}{unit}"
    return str(count)


# ----- run statistics ---------------------------------------------------------------------


def _rate(count: int | None, nanoseconds: int | None) -> str:
    if not count or not nanoseconds:
        return "0.0 tokens/s"
    return f"{count / (nanoseconds / 1e9):.1f} tokens/s"


def stats(metrics: Json) -> str:
    """The `--verbose` block printed after an answer (same labels and layout as Ollama,
    then the time to the first token when the server measured it)."""
    lines = []

    def add(label: str, value: str) -> None:
        lines.append(f"{label + ':':<22}{value}")

    total, load = metrics.get("total_duration"), metrics.get("load_duration")
    prompt_count, prompt_time = metrics.get("prompt_eval_count"), metrics.get(
        "prompt_eval_duration")
    count, duration = metrics.get("eval_count"), metrics.get("eval_duration")
    if total is not None:
        add("total duration", format_duration(total))
    if load is not None:
        add("load duration", format_duration(load))
    if prompt_count is not None:
        add("prompt eval count", f"{prompt_count} token(s)")
    if prompt_time:
        add("prompt eval duration", format_duration(prompt_time))
        add("prompt eval rate", _rate(prompt_count, prompt_time))
    if count is not None:
        add("eval count", f"{count} token(s)")
    if duration:
        add("eval duration", format_duration(duration))
        add("eval rate", _rate(count, duration))
    first = (metrics.get("stats") or {}).get("time_to_first_token_seconds")
    if first is not None:  # beyond Ollama's block: Pasture's `stats`
        add("time to first token", format_duration(int(first * 1e9)))
    return "\n".join(lines) + "\n"


# ----- streamed text ----------------------------------------------------------------------


class WordWrapper:
    """Writes streamed text, breaking lines between words at the terminal's width.

    Tokens arrive in arbitrary pieces, so the current word is held back until a space or
    newline shows where it ends; `flush()` writes whatever is left.
    """

    def __init__(self, out: TextIO, width: int | None = None) -> None:
        import shutil  # here, not at the top: it loads bz2 and lzma, which `list` needs not

        self.out = out
        self.width = width or shutil.get_terminal_size().columns
        self.column = 0
        self.word = ""
        self.spaces = 0  # held until the next word shows whether they end the line

    def write(self, text: str) -> None:
        for ch in text:
            if ch == "\n":
                self._emit_word()
                self.out.write("\n")
                self.column = self.spaces = 0
            elif ch == " ":
                self._emit_word()
                self.spaces += 1
            else:
                self.word += ch
        self.out.flush()

    def _emit_word(self) -> None:
        if not self.word:
            return
        if self.column and self.column + self.spaces + len(self.word) > self.width:
            self.out.write("\n")
            self.column = self.spaces = 0
        self.out.write(" " * self.spaces + self.word)
        self.column += self.spaces + len(self.word)
        self.word, self.spaces = "", 0

    def flush(self) -> None:
        self._emit_word()
        self.out.flush()


class PlainWriter:
    """Writes streamed text as it comes (no word wrap, or output is not a terminal)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def flush(self) -> None:
        self.out.flush()


def text_writer(word_wrap: bool, out: TextIO | None = None) -> WordWrapper | PlainWriter:
    out = out or sys.stdout
    if word_wrap and out.isatty():
        return WordWrapper(out)
    return PlainWriter(out)
