"""The message catalogue: every message in both languages with the same fields, the language chosen by the notebook
parameter or SVD_LAB_LANG, and the doctor, the profile line, exercise verdicts, out-of-memory advice and download
errors actually printed in Chinese when asked."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from svd_lab import exercises, messages

REPO = Path(__file__).resolve().parents[1]
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(autouse=True)
def english_afterwards(monkeypatch):
    monkeypatch.delenv(messages.ENV, raising=False)
    yield
    messages.set_language(None)


def test_every_message_has_both_languages_with_the_same_fields():
    for key, entry in messages.CATALOGUE.items():
        assert set(entry) == set(messages.LANGUAGES), key
        assert messages.fields(entry["en"]) == messages.fields(entry["zh-CN"]), key
        assert CJK.search(entry["zh-CN"]) or key in {"exercise.why"}, f"{key}: the zh-CN text has no Chinese"
        assert not CJK.search(entry["en"]), key


def test_every_course_exercise_has_a_hint_in_the_catalogue_and_no_text_in_its_code():
    names = []
    for source in sorted((REPO / "tools" / "course").glob("0*.py")):
        text = source.read_text()
        names += re.findall(r'exercises\.check\("(\w+)"', text)
        assert "hint=" not in text, f"{source.name}: a hint written in a code cell (put it in svd_lab.messages)"
    assert len(names) >= 14 and len(set(names)) == len(names)
    assert [n for n in names if not messages.has(f"hint.{n}")] == []


def test_language_from_the_notebook_parameter_or_the_environment(monkeypatch):
    assert messages.current() == "en"
    monkeypatch.setenv(messages.ENV, "zh_CN")
    assert messages.current() == "zh-CN" and messages.t("doctor.advice") == "建议"
    messages.set_language("en")                    # the notebook's parameter wins over the environment
    assert messages.t("doctor.advice") == "Advice"
    monkeypatch.setenv(messages.ENV, "klingon")    # a stray value: English, never a crash
    messages.set_language(None)
    assert messages.current() == "en"
    with pytest.raises(ValueError, match="en, zh-CN"):
        messages.set_language("fr")


def test_exercise_verdicts_and_hints_in_chinese(capsys):
    messages.set_language("zh-CN")
    exercises.check("fast_rocket", None, lambda a: True)
    exercises.check("fps_ratio", "x", lambda a: float(a) > 0)
    exercises.check("gated", "svd", lambda a: True)
    out = capsys.readouterr().out
    assert "[fast_rocket] 还不对：还没有答案" in out and "提示：motion_bucket_id 就是模型" in out
    assert "检查你的答案时出错：ValueError" in out and "[gated] 正确" in out


def test_doctor_profile_line_oom_and_download_errors_in_chinese():
    import torch

    from svd_lab.checkpoints.hub_errors import _network_message
    from svd_lab.diagnostics import run_doctor
    from svd_lab.svd.pipeline import SVDPipeline
    from svd_lab.svd.profiles import choose_profile

    messages.set_language("zh-CN")
    report = run_doctor(check_network=False)
    text, html = str(report), report._repr_html_()
    assert "svd-lab 环境体检" in text and "建议" in text and ("所有必需的检查都通过了" in text or "未通过" in text)
    assert "检查项" in html and "修复方法" in html
    devices = report["devices"]
    if devices.fix:
        assert CJK.search(devices.fix) and "README.zh-CN.md" in devices.fix
    choice = choose_profile("tiny", None, None, torch.device("cpu"))
    assert choice.line().startswith("配置档 tiny：") and "随机权重" in choice.line()
    network = _network_message("https://huggingface.co", ConnectionError("refused"), name="svd")
    assert "无法从 https://huggingface.co 下载" in network and "hf-mirror.com" in network
    from svd_lab.svd.components import build_components

    pipe = SVDPipeline(build_components("tiny"), device="cpu")
    from svd_lab.memory import MemoryPlan

    error = pipe._oom_error("CUDA out of memory", "decoding", MemoryPlan(1, True, ""), 14, 576, 1024)
    assert "解码时显存不足" in str(error) and "--decoding-t 1" in str(error)


def test_the_cli_speaks_chinese_with_svd_lab_lang(tmp_path):
    import os
    import subprocess
    import sys

    image = REPO / "assets" / "rocket.png"
    done = subprocess.run([sys.executable, "-m", "svd_lab", "sample", str(image), "--profile", "tiny", "--steps", "1",
                           "--frames", "2", "--out", str(tmp_path), "--no-progress"],
                          env={**os.environ, messages.ENV: "zh-CN"}, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert "配置档 tiny：按要求使用 tiny 配置档（随机权重）" in done.stderr


def test_chinese_messages_use_the_glossary_terms():
    """The catalogue follows tools/course/zh-CN/glossary.tsv like the notebooks: no variant a term replaced."""
    glossary = REPO / "tools" / "course" / "zh-CN" / "glossary.tsv"
    variants = []
    for line in glossary.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) > 2:
            variants += [v.strip() for v in parts[2].split(",") if v.strip()]
    assert variants
    text = "\n".join(entry["zh-CN"] for entry in messages.CATALOGUE.values())
    assert [v for v in variants if v in text] == []
