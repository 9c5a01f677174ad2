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
import math
import re
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
    Constant("0.02", ("cond_aug",), "the reference cond_aug (simple_video_sample.py)"),
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
    Constant("64", ("multiple", "倍数"), "sizes must be multiples of 64 (svd_lab.svd.images; the UNet's 3 downsamplings)"),
    Constant("4", ("bytes", "字节"), "a float32 is 4 bytes (IEEE 754 binary32)"),
    Constant("2", ("bytes", "字节", "float16"), "a float16 is 2 bytes (IEEE 754 binary16)"),
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
URL = re.compile(r"https?://\S+")
MATH = re.compile(r"\$\$.+?\$\$|\$[^$\n]+\$", re.DOTALL)
TIE = re.compile(r"<!--\s*r:(?P<name>[A-Za-z0-9_.]+)(?P<path>(?:\[[^\]]+\])*)\s*(?:(?P<op>[*/])\s*(?P<factor>[0-9.e+-]+))?"
                 r"\s*-->")
COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
MODEL_NAME = re.compile(r"\b(?:DiT|ViT)-[A-Za-z]+/\d+")
#: a number: an optional sign (not after a letter or digit: "5-30" is a range), digits with thousands commas and
#: decimals, sizes ("64x64", "4x8x8"), a multiplier ("8x") or magnitude suffix ("7M", "400K", "1.52B"), a percent
NUMBER = re.compile(r"(?<![A-Za-z0-9_.,\\])(?:(?<=[\s(\[=~≈])[-+−])?\d+(?:,\d{3})*(?:\.\d+)?"
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
        n.why = exempt(n, masked, m, line_start, any(a <= m.start() < b for a, b in math_spans))
        found.append(n)
    return found


HEADING_ORDINAL = re.compile(r"^#{1,6} +(?:(?:Exercise|练习) +)?$")
ORDINAL_BEFORE = re.compile(r"(?:\b(?:sections?|steps?|exercises?|cells?|table|algorithm|figure|fig\.|appendix|"
                            r"stage|part|item)|[§#]|第|练习|章节|小节)\s*$", re.IGNORECASE)
ORDINAL_RANGE = re.compile(r"(?:\bsections?|\bsteps?|第)\s*\d+(?:\.\d+)?\s*[-–]\s*$", re.IGNORECASE)
ORDINAL_AFTER = re.compile(r"^\s*(?:节|步(?!长)|小节|章)")
YEAR = re.compile(r"(?:19[9]\d|20[0-3]\d)")


def exempt(n: Number, masked: str, m: re.Match, line_start: int, in_math: bool) -> str:
    """The rule that exempts a number from being tied or listed ("" when none does). The rules, in order:

    - ordinals: a heading's leading number ("## 2.3", "# 03 ·", "### Exercise 2"), an ordered-list marker ("1. "), a
      number after section/step/exercise/cell/table/algorithm/figure/appendix/stage/part/item, "§", "#" (issues) or
      "第", or before "节"/"步"/"章" (Chinese section and step ordinals); the second number of a range of them
      ("sections 3-4");
    - notebook numbers: two digits with a leading zero ("notebook 03", "00 setup");
    - identifiers: years 1990-2039, arXiv ids (2212.09748), versions with two dots (2.2.1);
    - 0 and 1 (and +-1): origins, identities and first items ("frame 0", "scale 1", "[0, 1]"), definitions, not
      measurements;
    - small integers (0, 1, 2) inside a formula ($...$): exponents, fractions and indices;
    - dimensions: "1-D", "3-D", "3D".
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
    if in_math and re.fullmatch(r"[0-2]", s):
        return "formula"
    if re.match(r"-?D\b|维", after):
        return "dimension"
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


def near(n: Number, words: tuple[str, ...], window: int = 28) -> bool:
    if not words:
        return True
    at = n.column
    context = n.line[max(0, at - window): at + len(n.text) + window].lower()
    return any(w.lower() in context for w in words)


def check(source: Path, baselines: Path = BASELINES) -> list[str]:
    """Every number of one notebook's markdown (both editions) that is neither tied, listed nor exempt, and every
    tie that does not hold; each as "notebook edition cell: number in 'line': why"."""
    key = source.stem[:2]
    baseline_file = baselines / f"{source.stem}.json"
    records = json.loads(baseline_file.read_text())["records"] if baseline_file.is_file() else {}
    problems = []
    for edition, cid, text in cells(source):
        for n in numbers(key, edition, cid, text):
            where = f"{source.stem} [{edition}] cell {cid}: {n.text!r} in {n.line.strip()[:110]!r}"
            if n.tie is not None:
                try:
                    value, tolerance = resolve(records, n.tie)
                except (KeyError, IndexError, ValueError) as exc:
                    problems.append(f"{where}: tie {n.tie.group(0)!r} does not resolve ({exc}; baselines: "
                                    f"{baseline_file.relative_to(baselines.parent.parent) if baseline_file.is_relative_to(baselines.parent.parent) else baseline_file})")
                    continue
                ok, why = tie_holds(n.text, value, tolerance)
                if not ok:
                    problems.append(f"{where}: does not match its record {n.tie.group('name')}"
                                    f"{n.tie.group('path') or ''}: {why}")
                continue
            if n.why:
                continue
            if any(c.number == n.text and (not c.notebooks or key in c.notebooks) and near(n, c.near)
                   for c in CONSTANTS):
                continue
            problems.append(f"{where}: neither tied to a record (NUMBER<!-- r:record_name -->) nor a cited constant "
                            "(tests/test_claims.py CONSTANTS); see docs/claims.md")
    return problems


SOURCES = sorted(builder.SOURCES.glob("[0-9][0-9]_*.py"))


@pytest.mark.parametrize("source", SOURCES, ids=[s.stem for s in SOURCES])
def test_every_number_in_the_text_is_measured_or_cited(source):
    problems = check(source)
    assert not problems, f"{len(problems)} number(s) in the text of {source.name}:\n" + "\n".join(problems)
