"""The course notebooks: committed clean, in sync with their sources, and executing top to bottom with papermill.

Each notebook is executed once per pytest run (tests/course_runs.py), with the svd-lab kernel, cwd notebooks/,
a per-cell timeout and progress bars off; test_regress.py compares the records of these same executions.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course_runs import NOTEBOOKS, REPO, executed, fail_if_failed, solutions_run
from svd_lab.notebook_runs import COURSE, execute_notebook

PARAMETERS_EVERY_NOTEBOOK_HAS = {"profile", "device", "output_dir", "language"}


def _notebook(name: str):
    return nbformat.read(NOTEBOOKS / name, as_version=4)


def test_course_list_matches_the_folder():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(COURSE)


@pytest.mark.parametrize("name", COURSE)
def test_committed_notebook_has_no_outputs(name):
    nb = _notebook(name)
    dirty = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, (f"{name}: cells {dirty} hold outputs or execution counts; rebuild: "
                       "python tools/build_notebooks.py")
    assert "papermill" not in nb.metadata and "widgets" not in nb.metadata, f"{name}: executed-run metadata committed"
    assert nb.metadata.kernelspec.name == "svd-lab"


def test_no_outputs_check_catches_an_executed_notebook(tmp_path):
    """The check above is not vacuous: an executed copy of a notebook is reported dirty."""
    nb = _notebook(COURSE[0])
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="hello\n")]
    nb.cells[1].execution_count = 1
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert dirty == [1]


def test_notebooks_are_built_from_their_sources():
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "build_notebooks.py"), "--check"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("name", COURSE)
def test_structure_bootstrap_first_and_one_parameters_cell(name):
    nb = _notebook(name)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "find_spec(\"svd_lab\")" in code[0].source, f"{name}: the first code cell must be the cloud bootstrap"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{name}: exactly one cell tagged parameters"
    names = {t.id for node in ast.parse(tagged[0].source).body if isinstance(node, ast.Assign) for t in node.targets}
    missing = PARAMETERS_EVERY_NOTEBOOK_HAS - names
    assert not missing, f"{name}: parameters cell lacks {sorted(missing)}"


def test_a_failing_cell_names_notebook_cell_and_error(tmp_path):
    """The harness reports which cell failed (index in the committed notebook) and the error."""
    nb = nbformat.v4.new_notebook()
    nb.metadata.kernelspec = {"name": "svd-lab", "display_name": "Python (svd-lab)", "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# broken"),
        nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("y = x + 1"),
        nbformat.v4.new_code_cell("raise ValueError(f'bad value {y}')"),
        nbformat.v4.new_code_cell("z = 3"),
    ]
    source = tmp_path / "broken.ipynb"
    nbformat.write(nb, source)
    run = execute_notebook(source, tmp_path / "out", {"x": 41}, cell_timeout=60)
    assert run.status == "failed"
    assert run.cell_index == 3
    assert run.error.startswith("cell 3 (`raise ValueError(f'bad value {y}')`): ValueError: bad value 42"), run.error
    executed_nb = nbformat.read(run.output, as_version=4)
    assert executed_nb.metadata.svd_lab.status == "failed"


@pytest.mark.notebooks
@pytest.mark.slow
@pytest.mark.parametrize("name", COURSE)
def test_notebook_executes(name):
    run = executed(name)
    fail_if_failed(run)
    assert run.records.get("profile"), f"{name} records no profile"
    executed_nb = nbformat.read(run.output, as_version=4)
    # the records land in the executed notebook's metadata, not in any cell output
    assert executed_nb.metadata.svd_lab.records == run.records
    assert json.loads((run.output.parent / f"{run.stem}.records.json").read_text())["records"] == run.records
    shown = json.dumps([c.get("outputs", []) for c in executed_nb.cells])
    assert "svd_lab.record" not in shown
    # progress bars were off: no tqdm bar, as text or as a widget's text/plain, in any output
    assert "it/s]" not in shown and "s/it]" not in shown, f"{name}: a progress bar reached the executed notebook"
    # the scaffolding is collapsed: bootstrap, papermill's injected parameters, the regression records
    for cell in executed_nb.cells:
        tags = set(cell.metadata.get("tags", []))
        if tags & {"injected-parameters", "record"} or "Cloud bootstrap" in cell.source:
            assert cell.metadata.get("jupyter", {}).get("source_hidden") is True, (name, cell.source[:60])


def _exercises(run) -> dict[str, bool]:
    return {k: v["value"] for k, v in run.records.items() if k.startswith("exercise.")}


WITH_EXERCISES = [n for n in COURSE if "exercises.check(" in (NOTEBOOKS / n).read_text()]


def test_the_course_has_exercises():
    assert WITH_EXERCISES, "no notebook has exercises"


@pytest.mark.notebooks
@pytest.mark.slow
@pytest.mark.parametrize("name", WITH_EXERCISES)
def test_exercises_say_not_yet_without_answers(name):
    """The default execution (no answers filled in): every check runs, says "not yet", nothing crashes."""
    run = executed(name)
    fail_if_failed(run)
    checks = _exercises(run)
    nb = _notebook(name)
    assert len(checks) == sum(c.source.count("exercises.check(") for c in nb.cells), checks
    assert not any(checks.values()), f"{name}: a check passed without an answer: {checks}"
    solutions = [c for c in nb.cells if "solution" in c.metadata.get("tags", [])]
    assert solutions and all(c.metadata.jupyter.source_hidden for c in solutions)


@pytest.mark.notebooks
@pytest.mark.slow
@pytest.mark.parametrize("name", WITH_EXERCISES)
def test_exercises_pass_with_the_solutions(name):
    run = solutions_run(name)
    fail_if_failed(run)
    checks = _exercises(run)
    assert checks and all(checks.values()), f"{name}: checks failing with the solutions filled in: {checks}"


# --------------------------------------------------------------------------------------------------------------
# The cloud bootstrap (first code cell): installs svd-lab where it is missing, does nothing where it is present.


def _bootstrap_source() -> str:
    nb = _notebook(COURSE[0])
    return next(c.source for c in nb.cells if c.cell_type == "code")


def _fresh_venv_without_svd_lab(tmp_path: Path) -> Path:
    """A new venv that sees this environment's packages but not svd_lab (seconds, no downloads).

    The heavy dependencies (torch, diffusers, ...) are reached through a .pth file naming a folder of symlinks to
    this environment's site-packages entries, minus svd_lab's own (its dist-info and editable-install hook).
    ``--system-site-packages`` would not do: it would see svd_lab too.
    """
    import sysconfig

    site = Path(sysconfig.get_paths()["purelib"])
    farm = tmp_path / "deps"
    farm.mkdir()
    for entry in site.iterdir():
        name = entry.name.lower()
        if name.startswith(("svd_lab", "svd-lab", "__editable__")) or name.endswith(".pth"):
            continue
        (farm / entry.name).symlink_to(entry)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    (Path(purelib) / "svd_lab_test_deps.pth").write_text(f"{farm}\n")
    return python


def _checkout_copy(tmp_path: Path) -> Path:
    """What a git clone holds for building the package (pip would otherwise write build/ into this checkout)."""
    import shutil

    copy = tmp_path / "checkout"
    copy.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (REPO / name).is_file():
            shutil.copy2(REPO / name, copy / name)
    shutil.copytree(REPO / "src", copy / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(NOTEBOOKS, copy / "notebooks")
    return copy


@pytest.mark.slow
def test_bootstrap_installs_svd_lab_in_a_fresh_venv(tmp_path):
    if not (REPO / "README.md").is_file():
        pytest.fail("README.md is missing: pyproject's readme must exist for the package to build", pytrace=False)
    python = _fresh_venv_without_svd_lab(tmp_path)
    probe = "import importlib.util; print(importlib.util.find_spec('svd_lab') is None)"
    assert subprocess.run([python, "-c", probe], capture_output=True, text=True, check=False).stdout.strip() == "True"
    env = {**os.environ, "SVD_LAB_SOURCE": str(_checkout_copy(tmp_path)),
           # offline and quick: dependencies are already visible, the build backend is setuptools from them
           "PIP_NO_INDEX": "1", "PIP_NO_BUILD_ISOLATION": "0", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PYTHONPATH", None)
    # the same process (a kernel that just ran the cell) can import svd_lab at once, without a restart
    same_kernel = _bootstrap_source() + "\nimport svd_lab\nprint('imported', svd_lab.__file__)"
    first = subprocess.run([python, "-c", same_kernel], capture_output=True, text=True, env=env, cwd=tmp_path,
                           check=False)
    assert first.returncode == 0, first.stderr
    assert "svd_lab is not installed in this kernel: installing it from" in first.stdout
    assert f"svd_lab installed from {tmp_path / 'checkout'}; working in {tmp_path / 'checkout' / 'notebooks'}" \
        in first.stdout
    assert f"imported {tmp_path / 'checkout' / 'src' / 'svd_lab' / '__init__.py'}" in first.stdout
    show = ("import svd_lab, svd_lab.kernel; print(svd_lab.__file__); "
            "print(svd_lab.kernel.kernel_spec()['display_name'])")
    where = subprocess.run([python, "-c", show],
                           capture_output=True, text=True, env=env, cwd=tmp_path, check=False)
    assert where.returncode == 0, where.stderr
    location, display_name = where.stdout.split("\n")[:2]
    assert location.startswith(str(tmp_path / "checkout" / "src")), location   # the copy, not this checkout
    assert display_name == "Python (svd-lab)"                       # package data came along
    # a second run is a no-op
    again = subprocess.run([python, "-c", _bootstrap_source()], capture_output=True, text=True, env=env, cwd=tmp_path,
                           check=False)
    assert again.returncode == 0 and again.stdout == "", again.stdout + again.stderr


@pytest.mark.slow
def test_bootstrap_failure_names_the_mirror_variables(tmp_path):
    """Where the source or the index cannot be reached, the cell says which variables to set (no bare traceback)."""
    python = _fresh_venv_without_svd_lab(tmp_path)
    env = {**os.environ, "SVD_LAB_SOURCE": str(tmp_path / "no-checkout-here"), "PIP_NO_INDEX": "1",
           "PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PYTHONPATH", None)
    run = subprocess.run([python, "-c", _bootstrap_source()], capture_output=True, text=True, env=env, cwd=tmp_path,
                         check=False)
    assert run.returncode != 0
    assert "with packages from http://127.0.0.1:9/simple" in run.stdout
    assert "RuntimeError: bootstrap failed" in run.stderr
    assert "SVD_LAB_SOURCE" in run.stderr and "PIP_INDEX_URL" in run.stderr


def test_bootstrap_on_an_old_python_names_the_image_to_choose():
    """Many ModelArts images run Python 3.7: the cell must parse there and say which image to pick, in both
    languages, before it tries (and fails) to install anything."""
    import ast

    source = _bootstrap_source()
    ast.parse(source, feature_version=(3, 7))
    old = "import sys\nsys.version_info = (3, 7, 10, 'final', 0)\n"   # what a Python 3.7 kernel reports
    run = subprocess.run([sys.executable, "-c", old + source], capture_output=True, text=True, check=False)
    assert run.returncode != 0 and run.stdout == ""
    assert "Python 3.7, and svd-lab needs Python 3.10 or newer" in run.stderr
    assert "py_3.10" in run.stderr and "需要 Python 3.10" in run.stderr
    assert "installing" not in run.stderr and "GitHub" not in run.stderr


def test_bootstrap_does_nothing_where_svd_lab_is_installed(tmp_path):
    env = {**os.environ, "SVD_LAB_SOURCE": str(tmp_path / "does-not-exist")}
    run = subprocess.run([sys.executable, "-c", _bootstrap_source()], capture_output=True, text=True, env=env,
                         check=False)
    assert run.returncode == 0 and run.stdout == "" and run.stderr == ""


def test_bootstrap_clones_the_repository_url_by_default():
    import tomllib

    url = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["urls"]["Repository"].rstrip("/")
    assert url.startswith("https://")
    source = _bootstrap_source()
    assert f'"{url}")' in source and '"git", "clone"' in source


# --------------------------------------------------------------------------------------------------------------
# One-click launch: badges built from pyproject's Repository URL; Binder's own setup files.


def _badges_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_badges", REPO / "tools" / "make_badges.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_badges_point_at_the_repository_for_every_notebook():
    import base64

    mb = _badges_module()
    table = mb.badge_table("https://github.com/acme/course.git", list(COURSE))
    rows = table.splitlines()[2:]
    assert len(rows) == len(COURSE)
    nb = COURSE[3]
    assert f"https://colab.research.google.com/github/acme/course/blob/main/notebooks/{nb}" in table
    assert f"https://mybinder.org/v2/gh/acme/course/main?labpath=notebooks/{nb}" in table
    b64 = mb.modelarts_url("acme/course", nb, "main").split("share-url-b64=")[1]
    assert base64.b64decode(b64).decode() == f"https://raw.githubusercontent.com/acme/course/main/notebooks/{nb}"
    with pytest.raises(SystemExit, match="github.com/ORG/REPO"):
        mb.github_slug("https://gitlab.com/acme/course")


def test_modelarts_badges_follow_the_one_setting(tmp_path):
    """A mirror URL and an image id in pyproject.toml change every ModelArts badge; a bad setting is refused."""
    import base64

    mb = _badges_module()
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[tool.svd-lab.modelarts]\nnotebooks-url = "https://gitee.com/acme/course/raw/main/"\n'
                         'image-id = "abc-123"\n')
    settings = mb.modelarts_settings(pyproject)
    table = mb.badge_table("https://github.com/acme/course", ["zh-CN/03_svd_sampling.ipynb"], "main", settings)
    link = re.search(r"\]\((https://authoring-modelarts[^)]+)\)", table).group(1)
    b64, image = re.match(r".*share-url-b64=([^&]+)&imageid=(.+)$", link).groups()
    assert base64.b64decode(b64).decode() == "https://gitee.com/acme/course/raw/main/notebooks/zh-CN/03_svd_sampling.ipynb"
    assert image == "abc-123"
    assert mb.modelarts_settings(REPO / "pyproject.toml") is not None       # the committed one parses
    pyproject.write_text('[tool.svd-lab.modelarts]\nnotebooks-url = "http://mirror/x"\n')
    with pytest.raises(SystemExit, match="https://"):
        mb.modelarts_settings(pyproject)
    pyproject.write_text('[tool.svd-lab.modelarts]\nnotebook-url = "https://mirror/x"\n')
    with pytest.raises(SystemExit, match="unknown"):
        mb.modelarts_settings(pyproject)


def test_badges_write_and_check_a_readme(tmp_path):
    mb = _badges_module()
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\n{mb.START}\nold\n{mb.END}\n\nrest\n")
    assert mb.main(["--check", str(readme)]) == 1
    assert mb.main(["--write", str(readme)]) == 0
    text = readme.read_text()
    assert mb.repository_url().removeprefix("https://github.com/") in text and text.endswith("\n\nrest\n")
    assert mb.main(["--check", str(readme)]) == 0


@pytest.mark.parametrize(("readme", "folder"), [("README.md", ""), ("README.zh-CN.md", "zh-CN")])
def test_readme_launch_badges_are_current(readme, folder):
    """Both READMEs carry a badge row per notebook of their edition (python tools/make_badges.py writes them)."""
    mb = _badges_module()
    argv = ["--check", str(REPO / readme)] + (["--folder", folder] if folder else [])
    assert mb.main(argv) == 0, f"run: python tools/make_badges.py {' '.join(argv[2:])} --write {readme}"
    text = (REPO / readme).read_text()
    for nb in COURSE:
        assert f"notebooks/{folder + '/' if folder else ''}{nb}" in text


def test_binder_installs_cpu_torch_the_package_and_the_kernel():
    post = (REPO / "binder" / "postBuild").read_text()
    assert os.access(REPO / "binder" / "postBuild", os.X_OK)
    assert "download.pytorch.org/whl/cpu" in post and "-e ." in post and "svd-lab kernel install" in post
    assert "python=" in (REPO / "binder" / "environment.yml").read_text()


def test_no_display_result_is_thrown_away():
    """svd_lab.display's functions return what to show; only a cell's last expression is shown by Jupyter, so a
    call anywhere else must be wrapped in IPython.display.display (found by the browser test, 01/03/04)."""
    import ast

    sys.path.insert(0, str(REPO / "tools"))
    from build_notebooks import SOURCES, parse_source

    lost = []
    for source in sorted(SOURCES.glob("[0-9][0-9]_*.py")):
        for cell in parse_source(source):
            if cell["kind"] != "code":
                continue
            body = ast.parse(cell["source"]).body
            for node in ast.walk(ast.Module(body=body[:-1], type_ignores=[])):
                if (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
                        and isinstance(node.value.func, ast.Attribute)
                        and isinstance(node.value.func.value, ast.Name) and node.value.func.value.id == "display"):
                    lost.append(f"{source.name}:{cell['line']} display.{node.value.func.attr}")
    assert not lost, lost
