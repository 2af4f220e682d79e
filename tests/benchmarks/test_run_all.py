"""benchmarks/run_all.py: each benchmark runs in its own process (results, peak RSS, failures kept),
and only the generated block of docs/benchmarks.md is rewritten."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from tests.conftest import REPO_ROOT, load_recipe_module

run_all = load_recipe_module(REPO_ROOT / "benchmarks" / "run_all.py", "run_all_under_test")


def _script(tmp_path, body: str):
    path = tmp_path / "bench_fake.py"
    path.write_text(textwrap.dedent(body))
    return path


def test_a_benchmark_process_reports_its_results_and_its_own_peak_memory(tmp_path):
    script = _script(tmp_path, """
        import json, sys
        block = bytearray(300 * 1024 * 1024)  # touch 300 MB
        for i in range(0, len(block), 4096):
            block[i] = 1
        json.dump({"ratio_fast_vs_slow": 3.5, "fast": 7.0}, open(sys.argv[sys.argv.index("--json") + 1], "w"))
    """)
    # run_all as its own small process, as on the command line: Linux carries a parent's peak RSS
    # into a (v)forked child's ru_maxrss, and a pytest process that has loaded models is large.
    code = ("import json, pathlib, runpy, sys; m = runpy.run_path(sys.argv[1]); "
            "print(json.dumps(m['run_benchmark']('fake', pathlib.Path(sys.argv[2]), [], timeout=60)))")
    proc = subprocess.run([sys.executable, "-c", code, str(REPO_ROOT / "benchmarks" / "run_all.py"), str(script)],
                          capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads(proc.stdout.strip().splitlines()[-1])
    assert record["exit"] == 0 and record["result"] == {"ratio_fast_vs_slow": 3.5, "fast": 7.0}
    assert 0.3 <= record["peak_rss_gb"] < 2.0
    figure, ratio, _ = run_all.headline("fake", record, ceiling_gflops=10.0)
    assert "ratio_fast_vs_slow 3.5" in ratio and "fast 7.0" in figure


def test_a_failing_benchmark_is_recorded_with_its_last_lines(tmp_path):
    script = _script(tmp_path, "print('loading'); raise SystemExit('error: no artifact at artifacts/x')\n")
    record = run_all.run_benchmark("fake", script, [], timeout=60)
    assert record["exit"] != 0 and "result" not in record
    assert "no artifact at artifacts/x" in run_all.headline("fake", record, 10.0)[0]


def test_only_the_generated_block_is_rewritten(tmp_path):
    docs = tmp_path / "benchmarks.md"
    docs.write_text("# Benchmarks\n\nIntro.\n\n## History\nold numbers\n")
    run_all.write_docs(f"{run_all.BEGIN}\nfirst\n{run_all.END}", docs)
    run_all.write_docs(f"{run_all.BEGIN}\nsecond\n{run_all.END}", docs)
    text = docs.read_text()
    assert text.index("Intro.") < text.index("second") < text.index("## History")
    assert "first" not in text and text.count(run_all.BEGIN) == 1 and text.endswith("## History\nold numbers\n")


def test_every_listed_benchmark_is_a_bench_script_that_exists():
    for name, (script, _, _) in run_all.BENCHMARKS.items():
        assert (REPO_ROOT / "benchmarks" / script).is_file(), name
        assert script.startswith("bench_"), script  # run_all's own glob finds only bench_*.py


def test_the_sampling_row_reads_the_benchmarks_json():
    result = {"model": "gemma-3-270m", "prompts": 8, "batch_size": 8, "max_new_tokens": 96, "vocabulary": 262144,
              "kept_vocabulary": 30198, "warpers_tokens_per_s": 5.9, "candidates_tokens_per_s": 6.5,
              "restricted_tokens_per_s": 7.4, "greedy_full_tokens_per_s": 9.4, "greedy_restricted_tokens_per_s": 15.0,
              "ratio_candidates_vs_warpers": 1.12, "ratio_restricted_vs_warpers": 1.25,
              "ratio_greedy_restricted_vs_full": 1.58, "identical_greedy_restricted_vs_full": "8/8",
              "identical_sampled_candidates_vs_warpers": "8/8"}
    figure, ratio, target = run_all.headline("sampling", {"result": result}, ceiling_gflops=10.0)
    assert "30,198 of 262,144" in figure and "1.25x" in ratio and "not met" in target
