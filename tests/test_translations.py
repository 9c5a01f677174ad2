"""The Simplified Chinese edition (notebooks/zh-CN/) against its English sources.

Translations live in tools/course/zh-CN/<stem>.md, one block per markdown cell, keyed by the cell's id and a hash
of the English text (tools/build_notebooks.py explains the format). These tests fail when an English cell changed
and its translation was not updated, when one is missing, and when a translation lost what must not be translated
(code, math, numbers in tables, external links) or the English of a term on its first use.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import build_notebooks as builder

SOURCES = sorted(builder.SOURCES.glob("[0-9][0-9]_*.py"))
STEMS = [s.stem for s in SOURCES]
_ROWS = [line.split("\t") for line in (builder.TRANSLATIONS / "glossary.tsv").read_text().splitlines()
         if line.strip() and not line.startswith("#")]
GLOSSARY = [(row[0], row[1]) for row in _ROWS]
#: zh-CN variant -> the glossary's term for the same concept (one term per concept)
VARIANTS = {v.strip(): row[0] for row in _ROWS if len(row) > 2 for v in row[2].split(",") if v.strip()}
#: every Chinese text a reader reads: the notebooks' translations, the README, the guides
ZH_TEXTS = sorted([*builder.TRANSLATIONS.glob("[0-9][0-9]_*.md"), ROOT / "README.zh-CN.md",
                   *(ROOT / "docs" / "zh-CN").glob("*.md")])
HAN = "\u3400-\u9fff\uf900-\ufaff"
FULL_WIDTH_PUNCTUATION = "\u3000-\u303f\uff01-\uff0f\uff1a-\uff20\u201c\u201d\u2018\u2019"

FENCE = re.compile(r"```.*?```", re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]+`")
MATH = re.compile(r"\$\$.+?\$\$|\$[^$\n]+\$", re.DOTALL)
URL = re.compile(r"\]\((https?://[^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6}) ", re.MULTILINE)


def _translation(stem: str) -> builder.Translation:
    return builder.read_translation(builder.TRANSLATIONS / f"{stem}.md")


@pytest.mark.parametrize("stem", STEMS)
def test_every_markdown_cell_has_a_current_translation(stem):
    problems = builder.translation_problems(builder.SOURCES / f"{stem}.py", _translation(stem))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("stem", STEMS)
def test_translations_keep_code_math_links_and_structure(stem):
    english = builder.markdown_cells(builder.SOURCES / f"{stem}.py")
    blocks = _translation(stem).blocks
    problems = []
    for cid, text in english.items():
        if cid not in blocks:
            continue  # reported by the test above
        zh = blocks[cid][1]
        checks = {
            "fenced code blocks": (FENCE.findall(text), FENCE.findall(zh)),
            "code spans": (sorted(set(CODE_SPAN.findall(FENCE.sub("", text)))),
                           sorted(set(CODE_SPAN.findall(FENCE.sub("", zh))))),
            "math": (sorted(set(MATH.findall(FENCE.sub("", text)))), sorted(set(MATH.findall(FENCE.sub("", zh))))),
            "external links": (sorted(set(URL.findall(text))), sorted(set(URL.findall(zh)))),
            "heading levels": (HEADING.findall(FENCE.sub("", text)), HEADING.findall(FENCE.sub("", zh))),
            "table rows": ([line.count("|") for line in text.splitlines() if line.startswith("|")],
                           [line.count("|") for line in zh.splitlines() if line.startswith("|")]),
        }
        for what, (en_items, zh_items) in checks.items():
            if en_items != zh_items:
                missing = [x for x in en_items if x not in zh_items][:3]
                extra = [x for x in zh_items if x not in en_items][:3]
                problems.append(f"{cid} {what}: English {missing or en_items[:3]} vs zh-CN {extra or zh_items[:3]}")
        if re.search(r"\]\(\.\./(?!\.\.|\d\d_[a-z_]+\.ipynb)", zh):  # ../NN_name.ipynb: the English notebook
            problems.append(f"{cid}: a relative link '../' that points one folder too high up: zh-CN notebooks "
                            f"live in notebooks/zh-CN/, use '../../'")
    assert not problems, "\n".join(problems)


def _first_use_problems(text: str) -> list[str]:
    """Glossary terms whose first use in ``text`` is not followed by ' (English'."""
    problems = []
    terms = sorted(GLOSSARY, key=lambda t: -len(t[0]))
    for zh, en in terms:
        # an occurrence inside a longer glossary term (编码器 in 自编码器) does not count as a use of this one
        masked = text
        for longer, _ in terms:
            if len(longer) > len(zh) and zh in longer:
                masked = masked.replace(longer, "\0" * len(longer))
        at = masked.find(zh)
        if at < 0:
            continue
        after = text[at + len(zh):at + len(zh) + len(en) + 3]
        if not re.match(r"\s?\(" + re.escape(en), after, re.IGNORECASE):
            problems.append(f"{zh}: first use not followed by ' ({en}': ...{text[max(at - 20, 0):at + 40]!r}...")
    return problems


@pytest.mark.parametrize("stem", STEMS)
def test_terms_carry_their_english_on_first_use(stem):
    english = builder.markdown_cells(builder.SOURCES / f"{stem}.py")
    blocks = _translation(stem).blocks
    text = "\n".join(blocks[cid][1] for cid in english if cid in blocks)
    problems = _first_use_problems(text)
    assert not problems, "\n".join(problems)


def test_first_use_check_bites():
    problems = _first_use_problems("扩散模型 (diffusion model) 会去噪。扩散模型很好。")
    assert len(problems) == 1 and problems[0].startswith("去噪")  # 去噪 lacks its English
    assert _first_use_problems("扩散模型 (Diffusion Model) 与自编码器 (autoencoder)") == []
    assert _first_use_problems("扩散模型很好，扩散模型 (diffusion model)")  # the English came too late


def _style_problems(text: str) -> list[str]:
    """Variants of glossary terms; a line break between two Chinese characters (Markdown renders it as a stray
    space); a half-width space beside a full-width quote; a gloss that repeats the term ("扩散 Transformer
    (Diffusion Transformer)"); 倍 for a decrease ("少了 48 倍": say "只有原来的 1/48")."""
    problems = []
    prose = FENCE.sub("", text)
    for variant, term in VARIANTS.items():
        if variant in CODE_SPAN.sub("", prose):
            problems.append(f"{variant!r}: use the glossary's {term!r}")
    for m in re.finditer(f"[{HAN}{FULL_WIDTH_PUNCTUATION}]\n[{HAN}{FULL_WIDTH_PUNCTUATION}]", prose):
        problems.append(f"a line break between Chinese characters: {prose[max(m.start() - 12, 0):m.end() + 12]!r}")
    for m in re.finditer("[ \u00a0][\u201c\u201d\u2018\u2019]|[\u201c\u201d\u2018\u2019][ \u00a0]", prose):
        problems.append(f"a half-width space beside a full-width quote: {prose[max(m.start() - 8, 0):m.end() + 8]!r}")
    for m in re.finditer(r"([A-Za-z][A-Za-z0-9-]{2,}) \(([^)\n]+)\)", prose):
        if re.search(rf"\b{re.escape(m.group(1))}\b", m.group(2), re.IGNORECASE):
            problems.append(f"a gloss that repeats the term: {m.group(0)!r}")
    for m in re.finditer(f"(少了|小了|缩小|减少|降低|下采样)[^{HAN}。，；]{{0,12}}倍", prose):
        problems.append(f"倍 for a decrease: {prose[max(m.start() - 8, 0):m.end() + 8]!r}")
    return problems


@pytest.mark.parametrize("path", ZH_TEXTS, ids=[p.name for p in ZH_TEXTS])
def test_one_term_per_concept_and_clean_chinese_typography(path):
    problems = _style_problems(path.read_text())
    assert not problems, f"{path.relative_to(ROOT)}:\n" + "\n".join(problems)


def test_style_check_bites():
    bad = ("用速度预测。\n扩散 Transformer (Diffusion Transformer) 把它\n缩小了。数值少了 48 倍。"
           "他说 “好” 。")
    found = _style_problems(bad)
    assert any("'v 预测'" in p for p in found)
    assert any("line break" in p for p in found) and any("repeats the term" in p for p in found)
    assert any("倍 for a decrease" in p for p in found) and any("full-width quote" in p for p in found)
    assert _style_problems("用 v 预测 (v-prediction)。只有原来的 1/48，“好”。放大 4 倍。`流水线` 在代码里不算。") == []


@pytest.mark.parametrize("stem", STEMS)
def test_zh_notebook_is_the_english_one_with_translated_markdown(stem):
    """Same cells in the same order with the same ids; code cells (and their metadata) identical; markdown from the
    translation file. So executing one zh-CN notebook fully checks the others' code too."""
    en = json.loads((builder.NOTEBOOKS / f"{stem}.ipynb").read_text())
    zh = json.loads((builder.ZH_NOTEBOOKS / f"{stem}.ipynb").read_text())
    assert [c["id"] for c in zh["cells"]] == [c["id"] for c in en["cells"]]
    blocks = _translation(stem).blocks
    for e, z in zip(en["cells"], zh["cells"], strict=True):
        assert z["cell_type"] == e["cell_type"] and z["metadata"] == e["metadata"]
        z_text, e_text = "".join(z["source"]), "".join(e["source"])  # nbformat stores sources as lists of lines
        if e["cell_type"] == "code" and "parameters" in e["metadata"].get("tags", []):
            # the one exempt line: the zh-CN edition's language (svd_lab.messages)
            assert 'language = "en"' in e_text and 'language = "zh-CN"' in z_text
            assert builder.zh_parameters(e_text) == z_text, f"{stem}: parameters differ beyond the language line"
        elif e["cell_type"] == "code":
            assert z_text == e_text, f"{stem} {e['id']}: code differs from the English notebook"
        else:
            assert z_text == blocks[e["id"]][1]
            assert z_text != e_text, f"{stem} {e['id']}: markdown is still the English text"
    assert zh["metadata"]["kernelspec"] == en["metadata"]["kernelspec"]
    assert zh["metadata"]["svd_lab"]["language"] == "zh-CN"


def test_staleness_check_bites(tmp_path):
    """Change an English cell in a copy of a source: its translation is reported stale. Delete a block: missing.
    Insert a cell above: --sync-translations re-keys the moved blocks and adds one en:MISSING block."""
    stem = STEMS[0]
    src = tmp_path / f"{stem}.py"
    shutil.copy(builder.SOURCES / f"{stem}.py", src)
    translation = _translation(stem)
    assert builder.translation_problems(src, translation) == []

    # 1. an English markdown cell edited
    text = src.read_text()
    first_markdown_line = next(line for line in text.splitlines()
                               if line.startswith("# ") and not line.startswith("# %%") and len(line) > 10)
    src.write_text(text.replace(first_markdown_line, first_markdown_line + " (edited)", 1))
    problems = builder.translation_problems(src, translation)
    assert len(problems) == 1 and "stale" in problems[0] and f"{stem[:2]}-00" in problems[0]

    # 2. a block removed from the translation
    src.write_text(text)
    cid = next(iter(translation.blocks))
    fewer = builder.Translation(translation.path, {k: v for k, v in translation.blocks.items() if k != cid})
    assert [p for p in builder.translation_problems(src, fewer) if "missing" in p] != []

    # 3. a markdown cell inserted after the bootstrap cell: later ids shift
    src.write_text(text.replace("# %% [bootstrap]\n", "# %% [bootstrap]\n# %% [markdown]\n# A new cell.\n", 1))
    shifted = builder.translation_problems(src, translation)
    assert len(shifted) > 3  # every later block now sits under the wrong id
    synced_path = tmp_path / f"{stem}.md"
    synced_path.write_text(builder.sync_translation(src, translation))
    synced = builder.read_translation(synced_path)
    problems = builder.translation_problems(src, synced)
    assert len(problems) == 1 and "stale" in problems[0]  # only the new cell, as an en:MISSING block
    assert list(synced.blocks.values()).count(("MISSING", "A new cell.")) == 1


def test_build_check_fails_on_a_stale_translation(tmp_path, monkeypatch, capsys):
    """The builder's --check (run by the lint test) refuses a stale translation and names the cell."""
    sources = tmp_path / "course"
    shutil.copytree(builder.SOURCES, sources)
    source = sources / f"{STEMS[0]}.py"
    source.write_text(source.read_text().replace("# ## Parameters", "# ## The parameters", 1))
    monkeypatch.setattr(builder, "SOURCES", sources)
    monkeypatch.setattr(builder, "TRANSLATIONS", sources / builder.ZH)
    assert builder.main(["--check"]) == 1
    err = capsys.readouterr().err
    assert "stale" in err and "not up to date" in err


EXECUTED_ZH = "04_gif_display"  # executed fully: the others' code cells are the English ones (checked above)


def test_one_zh_notebook_executes_and_records_what_the_english_one_records():
    """papermill runs notebooks/zh-CN/04_gif_display.ipynb top to bottom; its records (frame counts, file sizes,
    pixel means) match the English baseline within the baseline's tolerances, and it prints its profile line and
    exercise hints in Chinese."""
    from course_runs import OUTPUT, check_kernel
    from svd_lab.baselines import compare_records, load_baseline
    from svd_lab.notebook_runs import execute_notebook

    check_kernel()
    run = execute_notebook(builder.ZH_NOTEBOOKS / f"{EXECUTED_ZH}.ipynb", OUTPUT / builder.ZH, cell_timeout=300)
    assert run.status == "ok", f"{run.error}; executed notebook: {run.output}"
    baseline = load_baseline(f"{EXECUTED_ZH}.ipynb")
    rows = compare_records(f"{EXECUTED_ZH}.ipynb", run.records, baseline["records"])
    assert rows and all(r.verdict == "ok" for r in rows), "\n".join(f"{r.name}: {r.verdict} {r.detail}" for r in rows)
    markdown = [c for c in json.loads(run.output.read_text())["cells"] if c["cell_type"] == "markdown"]
    assert any(re.search(r"[\u4e00-\u9fff]", "".join(c["source"])) for c in markdown)  # it was the Chinese one
    # what the library prints speaks Chinese too (svd_lab.messages): the profile line and the exercise checks
    printed = "".join("".join(o.get("text", "")) for c in json.loads(run.output.read_text())["cells"]
                      if c["cell_type"] == "code" for o in c.get("outputs", []))
    assert "配置档 small：" in printed or "配置档 tiny：" in printed, printed[-2000:]
    assert "还不对" in printed and "提示：" in printed and "not yet" not in printed


def test_course_command_knows_the_zh_edition(capsys):
    from svd_lab.cli import main
    from svd_lab.commands.course import EDITIONS as CLI_EDITIONS
    from svd_lab.notebook_runs import EDITIONS, course_notebooks

    assert CLI_EDITIONS == EDITIONS
    paths = course_notebooks(edition="zh-CN")
    assert [p.parent for p in paths] == [builder.ZH_NOTEBOOKS] * len(STEMS)
    assert main(["course", "list", "--edition", "zh-CN"]) == 0
    assert "notebooks/zh-CN/00_setup.ipynb" in capsys.readouterr().out
