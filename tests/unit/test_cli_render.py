"""The CLI's formatting, matched to what Ollama prints (scripts scrape these).

The CLI prints from the server's JSON, so each test builds the typed wire model and
renders its `.wire()` form: what a Pasture server sends for it.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from pasture.api.ollama import ListModel, Metrics, ModelDetails, ProcessModel, ShowResponse
from pasture.cli import progress, render

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_sizes_use_decimal_units_like_ollama() -> None:
    assert render.human_bytes(98_000_000) == "98 MB"
    assert render.human_bytes(4_700_000_000) == "4.7 GB"
    assert render.human_bytes(1_000_000_000) == "1 GB"
    assert render.human_bytes(123_456_789) == "123 MB"
    assert render.human_bytes(1_500) == "1.5 KB"
    assert render.human_bytes(512) == "512 B"


def test_relative_times() -> None:
    assert render.human_time(NOW - timedelta(minutes=2), now=NOW) == "2 minutes ago"
    assert render.human_time(NOW + timedelta(minutes=4, seconds=30), now=NOW) == (
        "4 minutes from now")
    assert render.human_time(NOW - timedelta(seconds=70), now=NOW) == "About a minute ago"
    assert render.human_time(NOW - timedelta(hours=30), now=NOW) == "30 hours ago"
    assert render.human_time(NOW - timedelta(days=20), now=NOW) == "2 weeks ago"
    assert render.human_time(NOW, now=NOW) == "Less than a second ago"
    assert render.human_time(NOW + timedelta(days=365 * 100), now=NOW) == "Forever"
    assert render.human_time(None) == "Never"


def test_ps_columns() -> None:
    assert render.until(NOW - timedelta(seconds=1), NOW) == "Stopping..."
    assert render.until(NOW + timedelta(minutes=4, seconds=59), NOW) == "4 minutes from now"
    assert render.until(datetime(2318, 1, 1, tzinfo=UTC), NOW) == "Forever"
    assert render.processor(100, 0) == "100% CPU"
    assert render.processor(100, 100) == "100% GPU"
    assert render.processor(100, 52) == "48%/52% CPU/GPU"
    assert render.short_digest("sha256:" + "0123456789ab" * 5) == "0123456789ab"


def test_list_and_ps_tables_align_columns_without_borders() -> None:
    details = ModelDetails(family="llama")
    models = [
        ListModel(name="smollm2:latest", model="smollm2:latest", size=98_000_000,
                  digest="a1b2c3d4e5f6" + "0" * 52, details=details,
                  modified_at=NOW - timedelta(minutes=2)),
        ListModel(name="x:1", model="x:1", size=4_700_000_000, digest="f" * 64,
                  details=details, modified_at=NOW - timedelta(days=3)),
    ]
    assert render.list_table([m.wire() for m in models], now=NOW) == (
        "NAME              ID              SIZE      MODIFIED\n"
        "smollm2:latest    a1b2c3d4e5f6    98 MB     2 minutes ago\n"
        "x:1               ffffffffffff    4.7 GB    3 days ago\n"
    )
    running = [ProcessModel(name="smollm2:latest", model="smollm2:latest", size=200_000_000,
                            digest="a" * 64, details=details, size_vram=0, context_length=4096,
                            expires_at=NOW + timedelta(minutes=4, seconds=30), engine="native",
                            running=1, waiting=3)]
    assert render.ps_table([m.wire() for m in running], now=NOW) == (
        "NAME              ID              SIZE      PROCESSOR    CONTEXT    UNTIL"
        "                 ENGINE    RUNNING    WAITING\n"
        "smollm2:latest    aaaaaaaaaaaa    200 MB    100% CPU     4096       4 minutes from now"
        "    native    1          3\n"
    )


def test_verbose_stats_block() -> None:
    metrics = Metrics(total_duration=1_200_000_000, load_duration=12_000_000,
                      prompt_eval_count=26, prompt_eval_duration=35_000_000, eval_count=50,
                      eval_duration=620_000_000)
    assert render.stats(metrics.wire()) == (
        "total duration:       1.2s\n"
        "load duration:        12ms\n"
        "prompt eval count:    26 token(s)\n"
        "prompt eval duration: 35ms\n"
        "prompt eval rate:     742.9 tokens/s\n"
        "eval count:           50 token(s)\n"
        "eval duration:        620ms\n"
        "eval rate:            80.6 tokens/s\n"
    )


def test_verbose_stats_end_with_the_time_to_first_token() -> None:
    metrics = {"eval_count": 5, "eval_duration": 100_000_000,
               "stats": {"tokens_per_second": 50.0, "time_to_first_token_seconds": 0.0453}}
    assert render.stats(metrics).endswith(
        "eval rate:            50.0 tokens/s\n"
        "time to first token:  45ms\n")


def test_durations() -> None:
    assert render.format_duration(850_000) == "850µs"
    assert render.format_duration(2_500_000) == "2.5ms"
    assert render.format_duration(35_000_000) == "35ms"
    assert render.format_duration(18_293_521_648) == "18.3s"
    assert render.format_duration(163_589_481_292) == "2m43.6s"


def test_word_wrapper_breaks_between_words_across_chunks() -> None:
    out = io.StringIO()
    wrapper = render.WordWrapper(out, width=12)
    for piece in ["The qu", "ick brown fox", " jumps over\nthe ", "lazy dog"]:
        wrapper.write(piece)
    wrapper.flush()
    assert out.getvalue() == "The quick\nbrown fox\njumps over\nthe lazy dog"


def test_show_info_sections() -> None:
    info = ShowResponse(
        details=ModelDetails(family="llama", parameter_size="134.52M", quantization_level="Q4_1"),
        model_info={"general.architecture": "llama", "llama.context_length": 8192,
                    "llama.embedding_length": 576},
        capabilities=["completion"],
        parameters='stop                           "<|im_start|>"\n'
                   'temperature                    0.2',
        system="Line one\nLine two\nLine three",
        license="MIT",
    )
    assert render.show_info(info.wire()) == (
        "  Model\n"
        "    architecture        llama\n"
        "    parameters          134.52M\n"
        "    context length      8192\n"
        "    embedding length    576\n"
        "    quantization        Q4_1\n"
        "\n"
        "  Capabilities\n"
        "    completion\n"
        "\n"
        "  Parameters\n"
        '    stop           "<|im_start|>"\n'
        "    temperature    0.2\n"
        "\n"
        "  System\n"
        "    Line one\n"
        "    Line two\n"
        "    ...\n"
        "\n"
        "  License\n"
        "    MIT\n"
        "\n"
    )


def test_progress_prints_each_status_once_when_not_on_a_terminal() -> None:
    from rich.console import Console

    out = io.StringIO()
    with progress.ProgressView(Console(file=out, force_terminal=False)) as view:
        view.update("pulling manifest")
        for done in (0, 500, 1000):
            view.update("pulling abcdef123456", "sha256:" + "ab" * 32, 1000, done)
        view.update("success")
    assert out.getvalue() == "pulling manifest\npulling abcdef123456\nsuccess\n"


def test_progress_draws_bars_on_a_terminal() -> None:
    from rich.console import Console

    out = io.StringIO()
    with progress.ProgressView(Console(file=out, force_terminal=True, width=100)) as view:
        view.update("pulling abcdef123456", "sha256:" + "ab" * 32, 2_000_000, 1_000_000)
        view.update("success")
    text = out.getvalue()
    assert "pulling abcdef123456" in text and "50%" in text and "success" in text


def test_show_verbose_lists_the_tensors_as_ollama_does() -> None:
    info = {"details": {"family": "llama"}, "capabilities": ["completion"],
            "model_info": {"general.architecture": "llama"},
            "tensors": [{"name": "token_embd.weight", "type": "Q8_0", "shape": [576, 49152]}]}
    assert "Tensors" not in render.show_info(info)
    shown = render.show_info(info, verbose=True)
    assert "  Tensors\n" in shown
    assert shown.split("  Tensors\n")[1].split() == ["token_embd.weight", "Q8_0", "[576", "49152]"]
