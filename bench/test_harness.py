"""The benchmarks' plumbing: the CPU line every section names, and how sections are written into docs/BENCHMARKS.md."""

import pytest

from bench import harness


@pytest.mark.parametrize(
    ("flags", "expected_line", "expected_class"),
    [
        ("fpu sse avx2 fma", "Some CPU, AVX2, no AVX-512", "AVX2"),
        ("fpu avx2 avx512f avx512_bf16", "Some CPU, AVX512-BF16, AVX-512, AVX2", "AVX512-BF16"),
        ("fpu sse2", "Some CPU", "other"),
    ],
)
def test_benchmark_sections_name_the_cpus_vector_instructions(tmp_path, flags, expected_line, expected_class):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: {flags}\n")
    assert harness.cpu_line(str(cpuinfo)) == expected_line
    assert harness.cpu_class(str(cpuinfo)) == expected_class


def test_a_per_cpu_benchmark_section_leaves_other_cpus_tables_alone(tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "BENCHMARKS_MD", tmp_path / "BENCHMARKS.md")
    for cpu, figure in (("AVX512-BF16", "71 s"), ("AVX2", "114 s"), ("AVX2", "112 s")):
        monkeypatch.setattr(harness, "cpu_class", lambda cpu=cpu: cpu)
        harness.write_section("Quick recipe", figure, "python -m bench.fast_cnn", per_cpu=True)
    text = (tmp_path / "BENCHMARKS.md").read_text()
    assert "## Quick recipe, on AVX512-BF16 CPUs" in text and "71 s" in text
    assert "## Quick recipe, on AVX2 CPUs" in text and "112 s" in text
    assert "114 s" not in text  # the same CPU class: its section was replaced, not repeated


def test_a_section_is_its_heading_command_machine_date_and_table(tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "BENCHMARKS_MD", tmp_path / "BENCHMARKS.md")
    monkeypatch.setattr(harness, "machine_line", lambda: "Some CPU, AVX2, no AVX-512; 2 CPU cores; no GPU")
    table = "| way | s |\n|---|---|\n| naive | 2.0 |\n| lab | 1.0 |"
    harness.write_section("Latency", table, "python -m bench.latency")
    lines = (tmp_path / "BENCHMARKS.md").read_text().splitlines()
    start = lines.index("<!-- bench:Latency -->")
    assert lines[start + 1 : start + 7] == [
        "## Latency",
        "",
        "- Command: `python -m bench.latency`",
        "- Machine: Some CPU, AVX2, no AVX-512; 2 CPU cores; no GPU",
        f"- Date: {harness.datetime.date.today().isoformat()}",
        "",
    ]
    assert lines[start + 7 :] == [*table.splitlines(), "<!-- /bench:Latency -->"]


def test_a_section_is_replaced_where_it_stands_and_the_rest_of_the_file_is_kept(tmp_path, monkeypatch):
    document = tmp_path / "BENCHMARKS.md"
    monkeypatch.setattr(harness, "BENCHMARKS_MD", document)
    monkeypatch.setattr(harness, "machine_line", lambda: "Some CPU; 2 CPU cores; no GPU")
    harness.write_section("First", "old table", "python -m bench.first")
    harness.write_section("Second", "second table", "python -m bench.second")
    document.write_text(document.read_text().replace("# Benchmarks", "# Benchmarks\n\nA hand-written introduction."))
    harness.write_section("First", "new table", "python -m bench.first --more")
    text = document.read_text()
    assert "A hand-written introduction." in text and "second table" in text
    assert "old table" not in text and text.count("<!-- bench:First -->") == 1
    assert text.index("new table") < text.index("<!-- bench:Second -->")  # in place, not moved to the end
    assert "- Command: `python -m bench.first --more`" in text
