"""How long one move of the explorer's temperature slider takes: a full Streamlit rerun, and the math alone.

Run from the repository root: `python -m benchmarks.slider_rerun [--moves 9] [--repeats 300]`.
It drives views/explorer.py with Streamlit's AppTest (no browser: it measures the server-side rerun, not
drawing in the browser), once per tab because only the open tab's figures are built. Then it times the
distill_core calls one slider move makes, on the bundled mnist5k teacher. Uses $DISTILL_HOME like the app.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from distill_core import explore
from distill_core.data import load_dataset
from distill_core.teachers import load_teacher, teacher_logits

APP = str(Path(__file__).resolve().parents[1] / "app.py")
TABS = ("2 · The example at T", "3 · Entropy as T changes", "4 · The dataset at T", "5 · Loss anatomy")
WARM_UP = (2.0, 4.0)  # the first reruns pay for imports and caches


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def slider_moves(count: int) -> list[float]:
    """`count` temperatures that differ from one move to the next, cycling through the slider's values."""
    values = explore.SLIDER_TEMPERATURES
    return [values[(5 + 7 * move) % len(values)] for move in range(count)]


def time_reruns(tab: str, moves: int) -> list[float]:
    """Milliseconds of `at.run()` after each slider move, with `tab` open."""
    app = AppTest.from_file(APP, default_timeout=300)
    app.switch_page("views/explorer.py")
    app.session_state["explorer_tab"] = tab
    app.run()
    for temperature in WARM_UP:
        app.select_slider(key="temperature").set_value(temperature).run()
    timings = []
    for temperature in slider_moves(moves):
        slider = app.select_slider(key="temperature").set_value(temperature)
        start = time.perf_counter()
        slider.run()
        timings.append((time.perf_counter() - start) * 1e3)
        if app.exception:
            raise SystemExit(f"the page raised: {app.exception[0].value}")
    return timings


def time_math(repeats: int) -> list[float]:
    """Milliseconds for every distill_core call one slider move makes (all tabs), on cached logits."""
    splits = load_dataset("mnist5k")
    logits = teacher_logits(load_teacher("mnist5k-cnn"), splits, "test")  # (N, K), cached on disk
    example = explore.example_from_split(splits.test, logits, 0, explore.untrained_student(splits.info))
    timings = []
    for move in range(repeats):
        temperature = explore.SLIDER_TEMPERATURES[move % len(explore.SLIDER_TEMPERATURES)]
        start = time.perf_counter()
        now = explore.example_at_temperature(example.teacher_logits, temperature)
        matrix = explore.dark_knowledge(logits, splits.test.labels, temperature)
        explore.similar_pairs(matrix)
        explore.smoothing_at_same_entropy(now["soft_targets"], example.target_class)
        explore.loss_anatomy(example.student_logits, example.teacher_logits, temperature)
        timings.append((time.perf_counter() - start) * 1e3)
    return timings


def report(name: str, timings: list[float]) -> None:
    median, p90 = statistics.median(timings), percentile(timings, 0.9)
    print(f"  {name:<34} median {median:8.2f} ms   p90 {p90:8.2f} ms   (n = {len(timings)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=9, help="timed slider moves per tab (after a warm-up)")
    parser.add_argument("--repeats", type=int, default=300, help="repetitions of the pure-math timing")
    args = parser.parse_args()
    if args.moves < 7:
        parser.error("--moves must be at least 7 for a meaningful median and p90")

    print("Full Streamlit rerun after one temperature-slider move (AppTest, server side only):")
    for tab in TABS:
        report(f"tab {tab}", time_reruns(tab, args.moves))
    print("distill_core calls for one slider move (all tabs together, mnist5k test split):")
    report("explore.* on cached logits", time_math(args.repeats))


if __name__ == "__main__":
    main()
