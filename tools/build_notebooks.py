#!/usr/bin/env python3
"""Build the course notebooks (notebooks/*.ipynb) from their sources in tools/course/*.py.

The sources are plain Python files in the "percent" format, so a review reads like code:

    # %% [markdown]
    # # A title
    # Some *markdown*: each line starts with "# ".
    # %% [bootstrap]
    # %% tags=["parameters"]
    profile = "auto"
    # %%
    print("a code cell")

``# %% tags=["solution"]`` (an exercise's solution) and ``# %% tags=["record"]`` (the values the regression runs
compare) are shown collapsed, like the bootstrap cell. ``# %% [bootstrap]`` becomes the cloud bootstrap cell
(installs svd-lab when the kernel lacks it, from the
repository URL in pyproject.toml's [project.urls] Repository, or from $SVD_LAB_SOURCE); it must be the first code
cell. The notebooks are written without outputs or execution counts, with stable cell ids (so rebuilding an
unchanged source gives an identical file) and the "Python (svd-lab)" kernel.

Why not jupytext (the ecosystem's percent-format tool; the sources stay readable by it): its text formats do not
store cell ids, so building a notebook from a source alone gives fresh random ids on every run (jupytext issues
#735 and #1263; ids survive only with ``--update``/``--sync`` against an existing paired .ipynb). The course's
browser test and the zh-CN translations key on stable ids, and ``--check`` must be able to rebuild a notebook
byte for byte on a clean clone. What is left here beyond what jupytext would do is small: deterministic ids, the
bootstrap cell and the kernel spec.

The Simplified Chinese edition, ``notebooks/zh-CN/*.ipynb``, is built from the same sources: code cells
identical but for one line (the parameters cell's ``language = "zh-CN"``, which makes the library print hints,
doctor fixes and the profile line in Chinese), each markdown cell replaced by its translation from
``tools/course/zh-CN/<stem>.md``. That file holds one block per markdown cell, headed by the cell's id and a hash
of the English text it translates::

    <!-- 00-00 en:3f2a9c1b5d7e -->
    # 00 · 环境准备 ...

When an English cell changes, its hash no longer matches and the translation is *stale*; a cell without a block is
*missing*; a block for no markdown cell is an *orphan*. Any of the three stops the zh-CN build (the English one is
still written) and fails ``--check`` and the tests, naming the cells. ``--sync-translations`` does the mechanical part
of an update: blocks whose English text moved to another id (a cell inserted above them) are re-keyed, and each
missing cell gets a block headed ``en:MISSING`` holding the English text to translate; the file is then edited by
hand, replacing the English and putting the cell's current hash (printed by the build) in the header.

    python tools/build_notebooks.py                      # rewrite notebooks/*.ipynb and notebooks/zh-CN/*.ipynb
    python tools/build_notebooks.py --check              # exit 1 when a committed notebook differs from its source
    python tools/build_notebooks.py --sync-translations  # re-key moved blocks, add blocks for missing cells
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "tools" / "course"
NOTEBOOKS = ROOT / "notebooks"
ZH = "zh-CN"
TRANSLATIONS = SOURCES / ZH
ZH_NOTEBOOKS = NOTEBOOKS / ZH
BLOCK = re.compile(r"^<!-- (?P<id>\d\d-\d\d) en:(?P<hash>[0-9a-f]{12}|MISSING) -->$")
sys.path.insert(0, str(ROOT / "src"))
from svd_lab.kernel import DISPLAY_NAME, KERNEL_NAME

KERNELSPEC = {"name": KERNEL_NAME, "display_name": DISPLAY_NAME, "language": "python"}
SOURCE_ENV = "SVD_LAB_SOURCE"
#: cells shown collapsed: exercise solutions (revealed by a click) and the regression-record scaffolding
HIDDEN_TAGS = {"solution", "record"}
MARKER = re.compile(r"^# %%(?P<rest>.*)$")


def repository_url(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """The public home of the course: pyproject's [project.urls] Repository (the one place it is written)."""
    data = tomllib.loads(pyproject.read_text())
    try:
        return data["project"]["urls"]["Repository"].rstrip("/")
    except KeyError:
        raise SystemExit(f"{pyproject}: add [project.urls] Repository = \"https://github.com/ORG/REPO\"") from None


def bootstrap_source(repo_url: str) -> str:
    """The first code cell of every notebook: a no-op where svd_lab is installed, an install elsewhere.

    A remote repository is cloned (the notebooks need its assets/ images and the mini model's shipped weights in
    checkpoints/mini/, which a plain `pip install git+URL` would leave behind) and installed editable; a local
    path is installed editable as it is. The kernel then works in the checkout's notebooks/ folder, as locally.
    """
    return f'''# Cloud bootstrap (Colab, ModelArts, a fresh Binder): set up svd-lab if this kernel lacks it.
# Where svd_lab is already installed (make setup, the svd-lab kernel) this cell does nothing.
# GitHub slow or blocked? Set SVD_LAB_SOURCE to a mirror's git URL or a local checkout, and PIP_INDEX_URL to a
# pip mirror (e.g. https://repo.huaweicloud.com/repository/pypi/simple) before running it.
import importlib.util, os, subprocess, sys

if sys.version_info < (3, 10):  # checked first: many notebook images (ModelArts among them) run Python 3.7
    raise RuntimeError(
        "this kernel runs Python %d.%d, and svd-lab needs Python 3.10 or newer. Pick another image, not another "
        "mirror: on ModelArts an x86_64 GPU image whose name says py_3.10 or later (for example "
        "pytorch_2.1.0-cuda_12.1-py_3.10.6-ubuntu_22.04-x86_64), or your own Python 3.11 environment "
        "(docs/modelarts.md, section 2b); on Colab any current runtime. "
        "/ 此内核是 Python %d.%d，svd-lab 需要 Python 3.10 或更新版本。请换镜像（不是换镜像源）：ModelArts 上选名称含 "
        "py_3.10 或更高版本的 x86_64 GPU 镜像（例如 pytorch_2.1.0-cuda_12.1-py_3.10.6-ubuntu_22.04-x86_64），"
        "或自建 Python 3.11 环境（docs/zh-CN/modelarts.md 第 2b 节）；Colab 任一当前运行时均可。"
        % (sys.version_info[0], sys.version_info[1], sys.version_info[0], sys.version_info[1]))

if importlib.util.find_spec("svd_lab") is None:
    _source = os.environ.get("{SOURCE_ENV}", "{repo_url}")  # a git URL or a local checkout
    _index = os.environ.get("PIP_INDEX_URL")  # pip reads it itself; shown so you know which index is used
    print(f"svd_lab is not installed in this kernel: installing it from {{_source}}"
          f"{{' with packages from ' + _index if _index else ''}} (a minute or two) ...")

    def _run(command):
        try:
            subprocess.run(command, check=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            raise RuntimeError(
                f"bootstrap failed: {{' '.join(command[:4])}} ... ({{exc}}). If GitHub or PyPI is slow or blocked "
                "here, set {SOURCE_ENV} to a mirror of the repository (or a local checkout) and PIP_INDEX_URL to "
                "a reachable pip index, then run this cell again") from None

    if "://" in _source:  # clone: the course needs the repository's images and shipped model weights too
        _checkout = os.path.abspath("svd-lab")
        if not os.path.isdir(_checkout):
            _run(["git", "clone", "--quiet", "--depth", "1", _source, _checkout])
        _source = _checkout
    _run([sys.executable, "-m", "pip", "install", "--quiet", "-e", _source])
    sys.path.insert(0, os.path.join(_source, "src"))  # an editable install is seen by new kernels only
    importlib.invalidate_caches()
    os.chdir(os.path.join(_source, "notebooks"))  # relative paths as in a local checkout
    print(f"svd_lab installed from {{_source}}; working in {{os.getcwd()}}")'''


def parse_source(path: Path) -> list[dict]:
    """Cells of a percent-format source: [{"kind": "markdown"|"code"|"bootstrap", "source": str, "tags": [...]}]."""
    cells: list[dict] = []
    current: dict | None = None
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        m = MARKER.match(line)
        if m:
            rest = m.group("rest").strip()
            tags: list[str] = []
            kind = "code"
            if rest.startswith("[markdown]"):
                kind = "markdown"
            elif rest.startswith("[bootstrap]"):
                kind = "bootstrap"
            elif rest.startswith("tags="):
                tags = json.loads(rest[len("tags="):])
            elif rest:
                raise SystemExit(f"{path}:{lineno}: unknown cell marker {line!r}")
            current = {"kind": kind, "lines": [], "tags": tags, "line": lineno}
            cells.append(current)
            continue
        if current is None:
            if line.strip():
                raise SystemExit(f"{path}:{lineno}: text before the first '# %%' marker")
            continue
        if current["kind"] == "markdown":
            if line and not (line == "#" or line.startswith("# ")):
                raise SystemExit(f"{path}:{lineno}: markdown lines must start with '# '")
            line = line[2:]
        current["lines"].append(line)
    for cell in cells:
        cell["source"] = "\n".join(cell.pop("lines")).strip("\n")
        if cell["kind"] == "code":
            try:
                ast.parse(cell["source"])
            except SyntaxError as exc:
                raise SystemExit(f"{path}:{cell['line'] + (exc.lineno or 0)}: {exc.msg}") from None
        if cell["kind"] != "bootstrap" and not cell["source"]:
            raise SystemExit(f"{path}:{cell['line']}: empty cell")
    code = [c for c in cells if c["kind"] != "markdown"]
    if not code or code[0]["kind"] != "bootstrap":
        raise SystemExit(f"{path}: the first code cell must be '# %% [bootstrap]'")
    if sum("parameters" in c["tags"] for c in cells) != 1:
        raise SystemExit(f"{path}: exactly one cell must be tagged parameters")
    return cells


def cell_id(stem: str, index: int) -> str:
    """The id of cell ``index`` of notebook ``stem``: the same in every build and in both languages."""
    return f"{stem[:2]}-{index:02d}"


def english_hash(text: str) -> str:
    """What a translation block records of the English text it translates (12 hex digits of its sha256)."""
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass
class Translation:
    """The blocks of one translation file: cell id -> (hash of the English text, translated markdown)."""

    path: Path
    blocks: dict[str, tuple[str, str]] = field(default_factory=dict)


def read_translation(path: Path) -> Translation:
    """Parse ``tools/course/zh-CN/<stem>.md`` (text before the first block header is a comment for translators)."""
    found = Translation(path)
    if not path.is_file():
        return found
    current: list[str] | None = None
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        m = BLOCK.match(line)
        if m:
            if m.group("id") in found.blocks:
                raise SystemExit(f"{path}:{lineno}: a second block for cell {m.group('id')}")
            current = []
            found.blocks[m.group("id")] = (m.group("hash"), current)  # type: ignore[assignment]
        elif current is not None:
            current.append(line)
    found.blocks = {k: (h, "\n".join(lines).strip("\n")) for k, (h, lines) in found.blocks.items()}
    return found


def markdown_cells(path: Path) -> dict[str, str]:
    """The English markdown cells of a source: cell id -> text."""
    return {cell_id(path.stem, i): c["source"] for i, c in enumerate(parse_source(path)) if c["kind"] == "markdown"}


def translation_problems(source: Path, translation: Translation) -> list[str]:
    """Why ``translation`` cannot be used for ``source`` (empty when every markdown cell has a current translation)."""
    english = markdown_cells(source)
    problems = []
    for cid, text in english.items():
        if cid not in translation.blocks:
            problems.append(f"{cid}: missing (no block; --sync-translations adds one)")
            continue
        recorded, body = translation.blocks[cid]
        if recorded != english_hash(text):
            problems.append(f"{cid}: stale (the English text changed: translate it again and set "
                            f"en:{english_hash(text)}); it now begins {text[:60]!r}")
        elif not body.strip():
            problems.append(f"{cid}: empty translation")
    for cid in translation.blocks:
        if cid not in english:
            problems.append(f"{cid}: orphan (no markdown cell has this id: remove the block or re-key it)")
    return [f"{translation.path.relative_to(ROOT) if translation.path.is_relative_to(ROOT) else translation.path}: "
            f"{p}" for p in problems]


def sync_translation(source: Path, translation: Translation) -> str:
    """The translation file with moved blocks re-keyed and a block (English text, en:MISSING) per missing cell."""
    english = markdown_cells(source)
    by_hash = {h: (cid, body) for cid, (h, body) in translation.blocks.items()}
    head = translation.path.read_text().split("<!-- ", 1)[0] if translation.path.is_file() else ""
    out = [head.rstrip("\n") + "\n\n"] if head.strip() else []
    current_hashes = {english_hash(text) for text in english.values()}
    for cid, text in english.items():
        h = english_hash(text)
        block = translation.blocks.get(cid)
        if block is not None and block[0] == h:
            recorded, body = block  # current
        elif h in by_hash:
            recorded, body = h, by_hash[h][1]  # the same English text under another id: moved
        elif block is not None and block[0] not in current_hashes:
            recorded, body = block  # this cell's English was edited: stale, to be translated again by hand
        else:
            recorded, body = "MISSING", text  # a new cell (or one whose old block moved away)
        out.append(f"<!-- {cid} en:{recorded} -->\n{body}\n\n")
    return "".join(out).rstrip("\n") + "\n"


#: the one line in which a zh-CN code cell differs from the English one: the parameters cell's language
LANGUAGE_LINE = re.compile(r'^language = "en"( *)', re.MULTILINE)


def zh_parameters(source: str) -> str:
    """The zh-CN edition's parameters cell: ``language = "zh-CN"`` (messages, hints and the doctor in Chinese,
    :mod:`svd_lab.messages`); every other line as in English. A parameters cell without the line is an error."""
    new, count = LANGUAGE_LINE.subn(lambda m: 'language = "zh-CN"' + " " * max(len(m.group(1)) - 3, 1), source)
    if count != 1:
        raise SystemExit('a parameters cell must set language = "en" exactly once (the zh-CN build sets "zh-CN")')
    return new


def build_notebook(path: Path, repo_url: str, translation: Translation | None = None) -> dict:
    """The notebook (as a JSON-ready dict, nbformat 4.5) for one source file; with ``translation``, its zh-CN
    edition (every markdown cell replaced by its translated block; the caller checked they are all current)."""
    stem = path.stem
    cells = []
    for i, cell in enumerate(parse_source(path)):
        source = bootstrap_source(repo_url) if cell["kind"] == "bootstrap" else cell["source"]
        if translation is not None and cell["kind"] == "markdown":
            source = translation.blocks[cell_id(stem, i)][1]
        if translation is not None and "parameters" in cell["tags"]:
            source = zh_parameters(source)
        meta: dict = {}
        if cell["tags"]:
            meta["tags"] = cell["tags"]
        if cell["kind"] == "bootstrap" or HIDDEN_TAGS & set(cell["tags"]):
            meta["jupyter"] = {"source_hidden": True}  # JupyterLab shows the cell collapsed; a click opens it
        entry = {"cell_type": "markdown" if cell["kind"] == "markdown" else "code", "id": cell_id(stem, i),
                 "metadata": meta, "source": source}
        if entry["cell_type"] == "code":
            entry["execution_count"] = None
            entry["outputs"] = []
        cells.append(entry)
    metadata: dict = {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}}
    if translation is not None:
        metadata["svd_lab"] = {"language": ZH, "english": f"../{stem}.ipynb"}
    return {
        "cells": cells,
        "metadata": metadata,
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def render(nb: dict) -> str:
    import nbformat

    node = nbformat.from_dict(nb)
    nbformat.validate(node)
    return nbformat.writes(node) + "\n"


def _write(target: Path, text: str, check: bool, stale: list[str]) -> None:
    """Write ``text`` to ``target`` (atomically) unless it is already there; with ``check``, note it instead."""
    current = target.read_text() if target.is_file() else None
    if current == text:
        return
    if check:
        stale.append(str(target.relative_to(NOTEBOOKS)))
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(target)
    print(f"wrote {target.relative_to(ROOT)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 on a difference")
    parser.add_argument("--sync-translations", action="store_true",
                        help="re-key moved zh-CN blocks and add en:MISSING blocks for untranslated cells; stop")
    args = parser.parse_args(argv)
    url = repository_url()
    sources = sorted(SOURCES.glob("[0-9][0-9]_*.py"))
    if not sources:
        raise SystemExit(f"no notebook sources in {SOURCES}")
    if args.sync_translations:
        for src in sources:
            translation = read_translation(TRANSLATIONS / f"{src.stem}.md")
            translation.path.parent.mkdir(parents=True, exist_ok=True)
            translation.path.write_text(sync_translation(src, translation))
            print(f"synced {translation.path.relative_to(ROOT)}")
        return 0
    stale: list[str] = []
    untranslated: list[str] = []
    for src in sources:
        _write(NOTEBOOKS / f"{src.stem}.ipynb", render(build_notebook(src, url)), args.check, stale)
        translation = read_translation(TRANSLATIONS / f"{src.stem}.md")
        problems = translation_problems(src, translation)
        if problems:
            untranslated += problems  # the English notebook is written all the same; this one waits
            continue
        _write(ZH_NOTEBOOKS / f"{src.stem}.ipynb", render(build_notebook(src, url, translation)), args.check, stale)
    if untranslated:
        print(f"the {ZH} edition is not up to date with the English sources (its notebooks were not rewritten):\n  "
              + "\n  ".join(untranslated), file=sys.stderr)
    if stale:
        print("out of date (run python tools/build_notebooks.py): " + ", ".join(stale), file=sys.stderr)
    return 1 if (stale or untranslated) else 0


if __name__ == "__main__":
    sys.exit(main())
