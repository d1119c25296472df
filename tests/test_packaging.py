"""setup.cfg lists every package, so `pip install .` ships all of minialex (kernels/ included)."""
import configparser
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_setup_cfg_lists_every_package():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    listed = set(cfg["options"]["packages"].split())
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "minialex").rglob("__init__.py")}
    assert found | {"minialex.kernels"} == listed
    assert (ROOT / "kernels" / "__init__.py").is_file()
    assert "minialex.kernels = kernels" in cfg["options"]["package_dir"]
