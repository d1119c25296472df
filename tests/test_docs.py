"""What the README says about the command line and the example is what they do (issue 15)."""
import pathlib
import re

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
FLAT = " ".join(README.split())


def test_the_ten_lines_comment_names_the_dtype_of_x():
    code = re.search(r"## Ten lines\n\n```python\n(.*?)```", README, re.S).group(1)
    line = next(line for line in code.splitlines() if line.startswith("x = "))
    namespace = {}
    exec(compile(line, "README.md", "exec"), {"np": np, "minialex": __import__("minialex")}, namespace)
    comment = line.split("#", 1)[1]
    assert re.findall(r"float\d+", comment) == [str(namespace["x"].dtype)], comment


def test_the_readme_states_predicts_input_and_the_ten_crop_caveat():
    assert "a white digit on a black background" in FLAT and "--invert no" in FLAT
    assert re.search(r"--ten-crop.{0,200}not digits", FLAT)


def test_the_readme_says_config_json_is_a_record_and_what_a_resume_may_change():
    assert "`config.json` is only a record of the run's settings" in FLAT
    for flag in ("--lr", "--schedule", "--max-batches"):
        assert re.search(rf"`{flag}`.{{0,300}}may be changed on `--resume`", FLAT), flag
    assert "no longer bit-exact" in FLAT
