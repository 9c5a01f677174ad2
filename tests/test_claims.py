"""Every number in the course's text is either measured (tied to a regression record) or a cited constant.

The rule, for each markdown cell of each notebook source (``tools/course/NN_*.py``, English) and of its translation
(``tools/course/zh-CN/NN_*.md``, Simplified Chinese): every number a reader reads is

1. **tied** to a value the notebook records (:func:`svd_lab.record.record`), by an annotation right after it::

       the samples' spread is 0.43<!-- r:primer_euler_std --> where the data's is 0.71<!-- r:primer_data_std -->

   The annotation (an HTML comment: invisible in the rendered notebook) names a record of
   ``tests/baselines/NN_*.json``, optionally a path into it (``r:fps_motion[6]``, ``r:scores[0][2]``) and a factor
   (``r:share*100`` for a percentage, ``r:size_bytes/1e6`` for megabytes). The number as written must equal the
   record rounded to the number's own decimals, within the record's own tolerance; so when a re-recorded baseline
   moves a value, the text that quotes it fails here until it is updated; or
2. a **cited constant**: an entry of :data:`CONSTANTS` (the number, words that must stand next to it, its source);
   or
3. **exempt** by one of the precise rules of :func:`exempt` (section and list ordinals, notebook numbers, years,
   arXiv ids, versions, 0 and 1, small integers in formulas, numbers inside code).

docs/claims.md is the guide for authors.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import build_notebooks as builder

BASELINES = ROOT / "tests" / "baselines"


@dataclass(frozen=True)
class Constant:
    """A number the text may quote without a record: ``number`` as written, standing within a few characters of one
    of ``near`` (English or Chinese words, case-insensitive), in the notebooks ``notebooks`` (all when empty)."""

    number: str
    near: tuple[str, ...]
    source: str
    notebooks: tuple[str, ...] = ()


#: Cited constants. Keep it short: a number a notebook computes belongs in a record, not here.
CONSTANTS = (
    # --- SVD, its checkpoints and Stability's reference script (simple_video_sample.py; svd_lab.svd.versions)
    Constant("0.18215", (), "the latent scale of SD/SVD's VAE: vae/config.json scaling_factor (sgm: scale_factor)"),
    Constant("14", ("frame", "帧", "SVD (", "decoding_t", "参考"), "svd makes 14 frames (model card; versions.py)",
             ("03", "05")),
    Constant("25", ("frame", "帧", "SVD-XT"), "svd_xt makes 25 frames (model card; versions.py)", ("03",)),
    Constant("576x1024", (), "SVD's training and reference size (SVD paper sec. 4; simple_video_sample.py)"),
    Constant("1024x576", ("SVD_Xtend", "A100", "ran out", "显存不足", "out of memory"),
             "SVD_Xtend's reported size (pixeli99/SVD_Xtend issue #39)"),
    Constant("1.1", ("SVD-XT",), "the release name stable-video-diffusion-img2vid-xt-1-1"),
    Constant("127", ("motion", "运动", "bucket", "桶"), "the reference motion_bucket_id (simple_video_sample.py)"),
    Constant("6", ("fps",), "the reference fps_id and svd_xt_1_1's fixed 6 fps (simple_video_sample.py; model card)"),
    Constant("255", ("motion", "运动", "bucket", "桶", "0-"), "motion_bucket_id's range 0-255 (SVD paper sec. 3)"),
    Constant("0.002", ("sigma",), "EDM's sigma_min (sgm EDMDiscretization; Karras et al. 2022)"),
    Constant("700", ("sigma",), "SVD's sigma_max (sgm configs/inference/svd.yaml)"),
    Constant("7", ("rho",), "Karras' rho (EDM paper, Table 1)"),
    Constant("4.5", ("GB",), "the svd fp16 diffusers download (svd_lab.checkpoints.registry sizes)"),
    Constant("16", ("GB",), "VRAM of a T4/V100-16GB; 'about 16 GB' for real SVD at 576x1024 (README, docs)"),
    Constant("224x224", ("CLIP",), "OpenCLIP ViT-H-14's input size (open_clip config)"),
    Constant("224", ("CLIP", "缩到", "at 224"), "OpenCLIP ViT-H-14's input size (open_clip config)"),
    Constant("8x", ("smaller", "缩小"), "SD/SVD VAE's downsampling factor (vae/config.json: 4 blocks)"),
    Constant("8", ("downsamples", "f =", "f=", "缩小", "下采样", "倍"), "SD/SVD VAE's downsampling factor"),
    Constant("4", ("channel", "通道"), "SD/SVD VAE's latent channels (vae/config.json latent_channels)"),
    Constant("2.1", ("SD", "Stable Diffusion"), "the image model SVD starts from (SVD paper sec. 3)"),
    Constant("64", ("multiple", "倍数"), "sizes must be multiples of 64 (svd_lab.svd.images.check_size)"),
    Constant("4", ("bytes", "字节"), "a float32 is 4 bytes (IEEE 754 binary32)"),
    Constant("2", ("bytes", "字节", "float16"), "a float16 is 2 bytes (IEEE 754 binary16)"),
    # --- fine-tuning memory: SVD_Xtend's public reports and the cards' capacities (05's table)
    Constant("60", ("GB",), "SVD_Xtend issues #4 and #27: about 60-63 GB at 512x320, 14-16 frames, batch 1", ("05",)),
    Constant("63", ("GB",), "SVD_Xtend issues #4 and #27 (see 60)", ("05",)),
    Constant("16", ("frame", "帧"), "SVD_Xtend issues #4 and #27: 14-16 frames", ("05",)),
    Constant("512x320", ("frame", "帧"), "SVD_Xtend's README example size and issue #4", ("05",)),
    Constant("320x512", ("SVD_Xtend",), "SVD_Xtend's README example size (512x320, height x width here)", ("05",)),
    Constant("80", ("A100",), "NVIDIA A100 comes with 40 or 80 GB; SVD_Xtend issue #39 ran out on the 80 GB one"),
    Constant("40", ("A100",), "NVIDIA A100 40 GB (product specification)"),
    Constant("32", ("V100",), "NVIDIA V100 32 GB (product specification)"),
    Constant("24", ("GB",), "RTX 4090 and A10: 24 GB (NVIDIA product specifications)", ("05",)),
    Constant("4090", ("RTX",), "the card's name, GeForce RTX 4090"),
    # --- papers
    Constant("19.5", ("adaLN",), "DiT paper Fig. 5 / FACTS.md: adaLN-Zero FID 19.47"),
    Constant("25.2", ("adaLN",), "DiT paper: adaLN FID 25.21"),
    Constant("26.1", ("cross",), "DiT paper: cross-attention FID 26.14"),
    Constant("35.2", ("in-context", "上下文"), "DiT paper: in-context FID 35.24"),
    Constant("400K", (), "DiT paper: the block comparison at 400K steps"),
    Constant("9.62", ("FID",), "DiT paper Table 4: DiT-XL/2 FID-50K without guidance"),
    Constant("2.27", ("guidance", "引导"), "DiT paper Table 4: DiT-XL/2 FID-50K with cfg 1.5"),
    Constant("1.5", ("scale", "尺度"), "DiT paper: classifier-free guidance scale 1.5", ("01",)),
    Constant("7M", (), "DiT paper: DiT-XL/2 trained 7M steps"),
    Constant("256x256", ("ImageNet",), "DiT paper: ImageNet 256x256"),
    Constant("16x16", ("Words",), "the ViT paper's title (Dosovitskiy et al. 2021)"),
    Constant("0.02", ("std", "标准差"), "DiT's reference initialisation: normal std 0.02 (facebookresearch/DiT)"),
)


# ---------------------------------------------------------------------------------------------------------- parsing

FENCE = re.compile(r"```.*?```", re.DOTALL)
#: an indented code block: lines indented by 4 spaces after a blank line
INDENTED_CODE = re.compile(r"(?:(?<=\n\n)|^)(?: {4}|\t)[^\n]*(?:\n(?: {4}|\t)[^\n]*)*")
CODE_SPAN = re.compile(r"`([^`]+)`")   # may wrap onto the next line
BARE_NUMBER = re.compile(r"\s*[-+]?[\d.,x%]+\s*")
LINK_TARGET = re.compile(r"\]\([^)\s]*\)")
URL = re.compile(r"https?://[^\s`)<>]+")
MATH = re.compile(r"\$\$.+?\$\$|\$[^$\n]+\$", re.DOTALL)
TIE = re.compile(r"<!--\s*r:(?P<name>[A-Za-z0-9_.]+)(?P<path>(?:\[[^\]]+\])*)"
                 r"\s*(?:(?P<op>[*/])\s*(?P<factor>[0-9.e+-]+))?\s*-->")
COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
MODEL_NAME = re.compile(r"\b(?:DiT|ViT)-[A-Za-z]+/\d+")
#: a number: an optional sign (not after a letter or digit: "5-30" is a range), digits with thousands commas and
#: decimals, sizes ("64x64", "4x8x8"), a multiplier ("8x") or magnitude suffix ("7M", "400K", "1.52B"), a percent
NUMBER = re.compile(r"(?<![A-Za-z0-9_.,\\])(?:(?<=[\s(\[=~≈，、（：；])[-+−])?\d+(?:,\d{3})*(?:\.\d+)?"
                    r"(?:[x×]\d+(?:\.\d+)?)*(?:x(?![A-Za-z0-9])|[KMB](?![A-Za-z]))?%?")


@dataclass
class Number:
    notebook: str     # "03"
    edition: str      # "en" | "zh-CN"
    cell: str         # "03-13"
    text: str         # as written
    start: int        # offset in the cell
    line: str         # the line it stands in
    column: int       # where in the line
    tie: re.Match | None
    context: str = ""  # the cell's text around it (lines joined), for the words a constant must stand next to
    why: str = ""     # the rule or constant that covers it; "" while unexplained


def _blank(text: str, span: tuple[int, int]) -> str:
    a, b = span
    return text[:a] + re.sub(r"[^\n]", " ", text[a:b]) + text[b:]


def numbers(notebook: str, edition: str, cell: str, text: str) -> list[Number]:
    """The numbers of one markdown cell, each with its tie (when annotated) and, when exempt, why."""
    masked = text
    ties: dict[int, re.Match] = {}
    for m in TIE.finditer(text):
        ties[m.start()] = m
        masked = _blank(masked, m.span())
    for pattern in (FENCE, INDENTED_CODE, LINK_TARGET, URL, COMMENT, MODEL_NAME):
        for m in pattern.finditer(masked):
            masked = _blank(masked, m.span())
    for m in CODE_SPAN.finditer(masked):
        if not BARE_NUMBER.fullmatch(m.group(1)):   # code is code; a bare number in backticks is still a number
            masked = _blank(masked, m.span())
    math_spans = [m.span() for m in MATH.finditer(masked)]
    found = []
    for m in NUMBER.finditer(masked):
        line_start = masked.rfind("\n", 0, m.start()) + 1
        line_end = masked.find("\n", m.end())
        line = text[line_start: None if line_end < 0 else line_end]
        tie = ties.get(m.end())
        n = Number(notebook, edition, cell, m.group(), m.start(), line, m.start() - line_start, tie)
        n.context = masked[max(0, m.start() - CONTEXT): m.end() + CONTEXT].replace("\n", " ")
        in_math = any(a <= m.start() < b for a, b in math_spans)
        n.why = "in a formula" if (tie is not None and in_math) else exempt(n, masked, m, line_start, in_math)
        found.append(n)
    return found


#: how far (characters, either side, across line breaks) a cited constant's words may stand from it
CONTEXT = 28
HEADING_ORDINAL = re.compile(r"^#{1,6} +(?:(?:Exercise|练习) +)?$")
ORDINAL_BEFORE = re.compile(r"(?:\b(?:sections?|steps?|exercises?|cells?|table|algorithm|figure|fig\.|appendix|"
                            r"stage|part|item)|[§#]|第|练习|章节|小节|表|图|算法|附录)\s*$", re.IGNORECASE)
ORDINAL_RANGE = re.compile(r"(?:\bsections?|\bsteps?|第)\s*\d+(?:\.\d+)?\s*[-–]\s*$", re.IGNORECASE)
ORDINAL_AFTER = re.compile(r"^\s*(?:节|小节|章|月|日)")
YEAR = re.compile(r"(?:19[9]\d|20[0-3]\d)")


def exempt(n: Number, masked: str, m: re.Match, line_start: int, in_math: bool) -> str:
    """The rule that exempts a number from being tied or listed ("" when none does). The rules, in order:

    - ordinals: a heading's leading number ("## 2.3", "# 03 ·", "### Exercise 2"), an ordered-list marker ("1. "), a
      number after section/step/exercise/cell/table/algorithm/figure/appendix/stage/part/item, "§", "#" (issues) or
      "第", or after the Chinese 表/图/算法/附录 (table, figure, algorithm, appendix), or before 节/小节/章 (Chinese
      section numbers) or 月/日 (dates); the second number of a range of them ("sections 3-4"). ("16,000 步" is a
      count of steps, not an ordinal: only "第 2 步" is);
    - notebook numbers: two digits with a leading zero ("notebook 03", "00 setup");
    - identifiers: years 1990-2039, arXiv ids (2212.09748), versions with two dots (2.2.1);
    - 0 and 1 (and +-1): origins, identities and first items ("frame 0", "scale 1", "[0, 1]"), definitions, not
      measurements;
    - small integers (0, 1, 2) inside a formula ($...$): exponents, fractions and indices;
    - dimensions and widths: "1-D", "3-D", "3D", "8-bit".
    Numbers inside code (fenced blocks, `code spans` that hold more than a bare number), link targets, URLs, HTML
    comments and model names ("DiT-XL/2", "ViT-H/14") are not read at all.
    """
    s = n.text
    before = masked[line_start:m.start()]
    after = masked[m.end():m.end() + 4]
    if HEADING_ORDINAL.match(before):
        return "heading ordinal"
    if re.fullmatch(r"\s*", before) and re.match(r"\.\s", after):
        return "list marker"
    if ORDINAL_BEFORE.search(before) or ORDINAL_AFTER.match(after):
        return "ordinal"
    if ORDINAL_RANGE.search(before):
        return "ordinal range"
    if re.fullmatch(r"0\d", s):
        return "notebook number"
    if YEAR.fullmatch(s):
        return "year"
    if re.fullmatch(r"\d{4}\.\d{4,5}", s) or re.match(r"\.\d", after):
        return "identifier"
    if re.fullmatch(r"[-+−]?[01]", s):
        return "zero or one"
    if (in_math or before.endswith("^")) and re.fullmatch(r"[0-2]", s):
        return "formula"
    if re.match(r"-?D\b|维|-bit\b", after):
        return "dimension or width"
    return ""


def cells(source: Path) -> list[tuple[str, str, str]]:
    """(edition, cell id, markdown) for every markdown cell of a notebook source, English and Chinese."""
    english = builder.markdown_cells(source)
    out = [("en", cid, text) for cid, text in english.items()]
    translation = builder.read_translation(builder.TRANSLATIONS / f"{source.stem}.md")
    out += [("zh-CN", cid, body) for cid, (_, body) in translation.blocks.items() if cid in english]
    return out


def resolve(records: dict, tie: re.Match) -> tuple[float | list, str]:
    """The value a tie names (with its path and factor applied) and the record's tolerance."""
    name = tie.group("name")
    if name not in records:
        raise KeyError(f"no record {name!r} in the baseline")
    value = records[name]["value"]
    for key in re.findall(r"\[([^\]]+)\]", tie.group("path") or ""):
        key = key.strip("'\"")
        if isinstance(value, list):
            value = value[int(key)]
        elif isinstance(value, dict):
            value = value[key]
        else:
            raise KeyError(f"record {name!r}: {key!r} indexes a {type(value).__name__}")
    if tie.group("op"):
        factor = float(tie.group("factor"))
        scale = (lambda v: v * factor) if tie.group("op") == "*" else (lambda v: v / factor)
        value = [scale(v) for v in value] if isinstance(value, list) else scale(value)
    return value, records[name]["tolerance"]


def _parts(text: str) -> list[str]:
    core = re.sub(r"[%xKMB]$", "", text.replace("−", "-").replace(",", ""))
    return re.split(r"[x×]", core)


def tie_holds(text: str, value, tolerance: str) -> tuple[bool, str]:
    """Whether the number as written equals ``value`` rounded to the written decimals, within ``tolerance``."""
    parts = _parts(text)
    values = value if isinstance(value, list) else [value]
    if len(parts) != len(values):
        return False, f"{text} has {len(parts)} number(s), the record {len(values)}"
    for part, v in zip(parts, values):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return False, f"the record holds {v!r}, not a number"
        written = float(part)
        decimals = len(part.split(".")[1]) if "." in part else 0
        slack = 0.5 * 10 ** -decimals
        kind, r = (tolerance.split(":")[0], float(tolerance.split(":")[1])) if ":" in tolerance else (tolerance, 0)
        if kind == "rel":
            slack += r * abs(v) + r * 1e-2
        elif kind == "size":
            slack = max(slack, abs(v))     # a factor of 2 either way
        if abs(written - v) > slack * (1 + 1e-9):
            return False, f"written {part}, recorded {v:.6g} (rounded to {decimals} decimal(s): {v:.{decimals}f})"
    return True, ""


def near(n: Number, words: tuple[str, ...]) -> bool:
    """Whether one of ``words`` stands within :data:`CONTEXT` characters of the number (any when none are given)."""
    return not words or any(w.lower() in n.context.lower() for w in words)


def cell_problems(stem: str, edition: str, cid: str, text: str, records: dict, used: set | None = None) -> list[str]:
    """Every number of one markdown cell that is neither tied, listed nor exempt, and every tie that does not hold;
    each as "<notebook> [<edition>] cell <id>: '<number>' in '<line>': why". ``used`` collects the constants that
    matched."""
    problems = []
    for n in numbers(stem[:2], edition, cid, text):
        where = f"{stem} [{edition}] cell {cid}: {n.text!r} in {n.line.strip()[:110]!r}"
        if n.tie is not None and n.why == "in a formula":
            problems.append(f"{where}: a tie inside a formula ($...$) shows as text in MathJax: put the number after "
                            "the formula (`$\\sigma_d$ = 0.5<!-- r:sigma_data -->`)")
            continue
        if n.tie is not None:
            try:
                value, tolerance = resolve(records, n.tie)
            except (KeyError, IndexError, ValueError) as exc:
                problems.append(f"{where}: tie {n.tie.group(0)!r} does not resolve ({exc}; in tests/baselines/"
                                f"{stem}.json)")
                continue
            ok, why = tie_holds(n.text, value, tolerance)
            if not ok:
                problems.append(f"{where}: does not match its record {n.tie.group('name')}"
                                f"{n.tie.group('path') or ''}: {why}")
            continue
        if n.why:
            continue
        match = next((c for c in CONSTANTS if c.number == n.text and (not c.notebooks or stem[:2] in c.notebooks)
                      and near(n, c.near)), None)
        if match is not None:
            if used is not None:
                used.add(match)
            continue
        problems.append(f"{where}: neither tied to a record (NUMBER<!-- r:record_name -->) nor a cited constant "
                        "(tests/test_claims.py CONSTANTS); see docs/claims.md")
    return problems


def check(source: Path, baselines: Path = BASELINES, used: set | None = None) -> list[str]:
    """:func:`cell_problems` for every markdown cell of one notebook, both editions, against its baseline."""
    baseline_file = baselines / f"{source.stem}.json"
    records = json.loads(baseline_file.read_text())["records"] if baseline_file.is_file() else {}
    return [p for edition, cid, text in cells(source)
            for p in cell_problems(source.stem, edition, cid, text, records, used)]


SOURCES = sorted(builder.SOURCES.glob("[0-9][0-9]_*.py"))


@pytest.mark.parametrize("source", SOURCES, ids=[s.stem for s in SOURCES])
def test_every_number_in_the_text_is_measured_or_cited(source):
    problems = check(source)
    assert not problems, f"{len(problems)} number(s) in the text of {source.name}:\n" + "\n".join(problems)


# ---------------------------------------------------------------------------------------------- the mechanism itself


def _numbers(text: str, edition: str = "zh-CN") -> list[tuple[str, str]]:
    return [(n.text, n.why) for n in numbers("99", edition, "99-01", text)]


def test_every_kind_of_number_is_found_in_both_languages():
    found = _numbers("## 2.3 标题\n\n约0.43，占 95.3%；64x64 的帧、4x8x8 的潜变量，fps_id 5-30，缩小为 1/8，"
                     "快 8x，共 16,000 步，-0.25 与 7M 步。见第 3 节与 2.9 节，2024 年 2 月。")
    assert [t for t, why in found if not why] == ["0.43", "95.3%", "64x64", "4x8x8", "5", "30", "8", "8x",
                                                   "16,000", "-0.25", "7M"]
    assert [(t, why) for t, why in found if why] == [("2.3", "heading ordinal"), ("1", "zero or one"),
                                                     ("3", "ordinal"), ("2.9", "ordinal"), ("2024", "year"),
                                                     ("2", "ordinal")]


def test_what_is_not_read():
    """Code, links, comments and model names are not claims; a bare number in backticks still is."""
    text = ("Run `svd-lab sample --steps 25` ([paper](https://arxiv.org/abs/2311.15127)) <!-- 99 --> with "
            "DiT-XL/2 and ViT-H/14:\n\n```bash\nsvd-lab batch --seeds 1,2,3\n```\n\n    indented 42\n\n"
            "but `0.43` is a number, and so is $\\sigma = 700$ while $x^2$ is a formula.")
    assert _numbers(text, "en") == [("0.43", ""), ("700", ""), ("2", "formula")]


def test_an_untied_number_is_reported_with_notebook_cell_and_number():
    problems = cell_problems("05_finetune", "zh-CN", "05-99", "损失降到 0.27，用了 240 步。", {})
    assert len(problems) == 2
    assert problems[0].startswith("05_finetune [zh-CN] cell 05-99: '0.27' in '损失降到 0.27，用了 240 步。': "
                                  "neither tied")
    assert "'240'" in problems[1]


def test_a_tie_compares_the_written_number_with_the_record_at_its_precision():
    records = {"loss": {"value": 0.4312, "tolerance": "rel:0.0001"}, "share": {"value": 0.953, "tolerance": "rel:1e-4"},
               "shape": {"value": [1, 8, 4, 8, 8], "tolerance": "exact"}, "size": {"value": [64, 64],
                                                                                  "tolerance": "exact"},
               "by_key": {"value": {"6": 1.2688, "12": 0.7111}, "tolerance": "rel:1e-4"}}
    ok = ("0.43<!-- r:loss -->, 95.3%<!-- r:share*100 -->, 8<!-- r:shape[1] --> frames, 64x64<!-- r:size -->, "
          "1.27<!-- r:by_key[6] --> px, 0.7<!-- r:by_key[12] --> px, 431.2<!-- r:loss*1000 -->")
    assert cell_problems("99_test", "en", "99-01", ok, records) == []
    wrong = "0.44<!-- r:loss -->, 95%<!-- r:share -->, 4<!-- r:shape[1] -->, 64x32<!-- r:size -->, 1<!-- r:nothing -->"
    problems = cell_problems("99_test", "en", "99-01", wrong, records)
    assert len(problems) == 5
    assert "written 0.44, recorded 0.4312" in problems[0]
    assert "does not resolve" in problems[4] and "no record 'nothing'" in problems[4]


def _ties():
    for source in SOURCES:
        for edition, cid, text in cells(source):
            for n in numbers(source.stem[:2], edition, cid, text):
                if n.tie is not None:
                    yield source, edition, cid, n


def _perturb(value):
    if isinstance(value, list):
        return [_perturb(v) for v in value]
    return value * 1.5 + 1


def test_the_check_bites_when_a_record_changes(tmp_path):
    """Every tie in the course: move its record (in a copy of the baselines) and the text that quotes it fails."""
    ties = [t for t in _ties() if (BASELINES / f"{t[0].stem}.json").is_file()]
    assert len(ties) >= 100, "the course ties fewer numbers to records than expected"
    for source, edition, cid, n in ties:
        copy = tmp_path / "baselines"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(BASELINES, copy)
        path = copy / f"{source.stem}.json"
        baseline = json.loads(path.read_text())
        entry = baseline["records"].get(n.tie.group("name"))
        if entry is None:
            continue                        # reported by the main test
        keys = [k.strip("'\"") for k in re.findall(r"\[([^\]]+)\]", n.tie.group("path") or "")]
        if not keys:
            entry["value"] = _perturb(entry["value"])
        else:
            holder = entry["value"]
            for k in keys[:-1]:
                holder = holder[int(k)] if isinstance(holder, list) else holder[k]
            last = int(keys[-1]) if isinstance(holder, list) else keys[-1]
            holder[last] = _perturb(holder[last])
        path.write_text(json.dumps(baseline))
        problems = check(source, copy)
        assert any(f"[{edition}] cell {cid}: {n.text!r}" in p and "does not match its record" in p
                   for p in problems), f"changing {n.tie.group(0)} went unnoticed in {source.stem} {edition} {cid}"


def test_the_cited_constants_are_few_sourced_and_used():
    used: set = set()
    for source in SOURCES:
        check(source, used=used)
    assert len(CONSTANTS) <= 50
    assert all(c.source.strip() for c in CONSTANTS)
    unused = [c for c in CONSTANTS if c not in used]
    assert not unused, f"constants no text cites any more (remove them): {unused}"


def test_a_tie_inside_a_formula_is_refused():
    """MathJax would print the comment: the number goes after the formula."""
    records = {"sigma_data": {"value": 0.5, "tolerance": "rel:1e-4"}}
    inside = cell_problems("99_test", "en", "99-01", "spread $\\sigma_d = 0.5<!-- r:sigma_data -->$.", records)
    assert len(inside) == 1 and "inside a formula" in inside[0]
    assert cell_problems("99_test", "en", "99-01", "spread $\\sigma_d$ = 0.5<!-- r:sigma_data -->.", records) == []
