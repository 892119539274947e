"""The skills' options on the command line: a bad catalog is one line with its line number, exit 2,
before any model loads; --skill only takes the skills that have a standing mode."""
import pytest

from tests.cli_helpers import one_line_error, run_demo


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "sample.mp4"
    assert run_demo("sample", path).returncode == 0
    return path


@pytest.mark.parametrize("content, says", [
    ("code,name\n5074852605749,Oat drink\n", "price"),  # a required column is missing
    ("code,name,price\n5074852605749,Oat drink,2.10\n5000831671627,Eggs,cheap\n", "line 3"),
    ("code,name,price\n5074852605749,Oat drink,2.10\n5074852605749,Oat drink again,2.20\n", "line 3"),
    ("", "empty"),
])
def test_a_bad_catalog_is_one_line_naming_where(clip, tmp_path, content, says):
    catalog = tmp_path / "shop.csv"
    catalog.write_text(content)
    line = one_line_error(run_demo("replay", clip, "--catalog", catalog, "--out", tmp_path / "out"))
    assert str(catalog) in line and says in line.lower(), line
    assert not (tmp_path / "out").exists()  # refused before anything was written
    assert catalog.read_text() == content  # the user's file is left as it was


def test_a_missing_catalog_says_what_the_option_wants(clip, tmp_path):
    line = one_line_error(run_demo("replay", clip, "--catalog", tmp_path / "none.csv"))
    assert "no such file" in line and "code,name,price" in line


def test_skill_takes_only_standing_skills(clip):
    proc = run_demo("replay", clip, "--skill", "timers")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr and "Traceback" not in proc.stderr
