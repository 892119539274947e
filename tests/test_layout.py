"""The layout's rules, checked on the source: who may import whom, and how big a file may grow."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imported(path: Path) -> set[str]:
    """Top-level package names a module imports, anywhere in it (function-level imports too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def sources(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def test_only_the_assembly_puts_the_wearable_and_the_stages_together():
    for path in sources("glasses"):
        assert "pipelines" not in imported(path), f"{path.relative_to(ROOT)} imports the stages"
    for path in sources("pipelines"):
        if "app" not in path.relative_to(ROOT / "pipelines").parts:
            assert "glasses" not in imported(path), f"{path.relative_to(ROOT)} imports the wearable"
    for path in sources("core"):
        assert not imported(path) & {"glasses", "pipelines", "benchmarks"}, f"{path.relative_to(ROOT)} is not neutral"
    for folder in ("glasses", "pipelines", "core"):
        for path in sources(folder):
            assert not imported(path) & {"tests", "benchmarks"}, f"{path.relative_to(ROOT)} imports tests or benchmarks"


def test_no_file_grows_past_about_400_lines_and_no_class_past_about_250():
    for folder in ("glasses", "pipelines", "core", "benchmarks", "tests"):
        for path in sources(folder):
            text = path.read_text()
            assert text.count("\n") <= 420, f"{path.relative_to(ROOT)}: {text.count(chr(10))} lines"
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, ast.ClassDef):
                    size = node.end_lineno - node.lineno + 1
                    assert size <= 260, f"{path.relative_to(ROOT)}: class {node.name} has {size} lines"
