"""The README's example runs as written, and the README's commands are the ones CI runs."""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_readme_example_runs(capsys):
    text = (ROOT / "README.md").read_text()
    code = re.search(r"## Ten lines\n\n```python\n(.*?)```", text, re.S).group(1)
    assert len(code.strip().splitlines()) <= 10
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "(2, 8, 6, 6) (2, 3, 13, 13) (8, 3, 3, 3)" in out
    assert "passed" in out


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    m = re.search(r'pip install "(\.\[test\])" && (python -m pytest)', readme)
    assert m, "README lost its test command"
    assert f'pip install "{m.group(1)}"' in ci and m.group(2) in ci
