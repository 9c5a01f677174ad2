#!/usr/bin/env python3
"""Print (or write into README.md) the one-click launch badges of the course notebooks.

The repository URL is read from pyproject.toml ([project.urls] Repository), the one place it is written; the
links are built from it for:

- Google Colab:  https://colab.research.google.com/github/ORG/REPO/blob/BRANCH/notebooks/NB.ipynb
- Binder:        https://mybinder.org/v2/gh/ORG/REPO/BRANCH?labpath=notebooks/NB.ipynb   (binder/ holds its setup)
- Huawei ModelArts CodeLab ("Run in ModelArts"):
                 https://authoring-modelarts-cnnorth4.huaweicloud.com/console/lab?share-url-b64=B64
  where B64 is the standard base64 of the notebook file's public URL: by default its raw GitHub URL
  (raw.githubusercontent.com, often unreachable from mainland China), or, where pyproject.toml sets
  ``[tool.svd-lab.modelarts] notebooks-url``, that base URL + ``/notebooks/NB.ipynb`` (an OBS bucket or a
  Gitee/GitCode mirror's raw URL: docs/modelarts.md section 2a says how to publish one). ``image-id`` there adds
  ``&imageid=`` (the notebook then opens in that image instead of CodeLab's default CPU one).

    python tools/make_badges.py                 # print the Markdown table
    python tools/make_badges.py --write README.md   # replace the text between the badge markers in README.md
    python tools/make_badges.py --check README.md   # exit 1 when README.md's badges are out of date
    python tools/make_badges.py --folder zh-CN --write README.zh-CN.md   # the Simplified Chinese notebooks

Markers in the README: ``<!-- badges:start -->`` and ``<!-- badges:end -->``.
"""

from __future__ import annotations

import argparse
import base64
import re
import sys
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_notebooks import repository_url  # the one reader of pyproject's Repository URL

START, END = "<!-- badges:start -->", "<!-- badges:end -->"
MODELARTS_LAB = "https://authoring-modelarts-cnnorth4.huaweicloud.com/console/lab"
BADGES = {
    "colab": "https://colab.research.google.com/assets/colab-badge.svg",
    "binder": "https://mybinder.org/badge_logo.svg",
    "modelarts": "https://img.shields.io/badge/Run%20in-ModelArts-red",
}


def github_slug(url: str) -> str:
    """"https://github.com/ORG/REPO(.git)" -> "ORG/REPO"; a clear error for other hosts (Colab/Binder need GitHub)."""
    parsed = urlparse(url)
    parts = [p for p in parsed.path.split("/") if p]
    if parsed.netloc.lower() not in ("github.com", "www.github.com") or len(parts) != 2:
        raise SystemExit(f"Repository URL {url!r}: the launch badges need https://github.com/ORG/REPO")
    return f"{parts[0]}/{parts[1].removesuffix('.git')}"


def colab_url(slug: str, notebook: str, branch: str) -> str:
    return f"https://colab.research.google.com/github/{slug}/blob/{branch}/notebooks/{notebook}"


def binder_url(slug: str, notebook: str, branch: str) -> str:
    return f"https://mybinder.org/v2/gh/{slug}/{branch}?labpath=notebooks/{notebook}"


def modelarts_settings(pyproject: Path = ROOT / "pyproject.toml") -> dict:
    """``[tool.svd-lab.modelarts]`` of pyproject.toml: ``notebooks-url`` (where ModelArts fetches the notebooks;
    empty: raw GitHub) and ``image-id`` (empty: CodeLab's default image)."""
    import tomllib

    settings = tomllib.loads(pyproject.read_text()).get("tool", {}).get("svd-lab", {}).get("modelarts", {})
    unknown = set(settings) - {"notebooks-url", "image-id"}
    if unknown:
        raise SystemExit(f"{pyproject}: unknown [tool.svd-lab.modelarts] keys {sorted(unknown)}; "
                         "known: notebooks-url, image-id")
    base = settings.get("notebooks-url", "").strip().rstrip("/")
    if base and urlparse(base).scheme != "https":
        raise SystemExit(f"{pyproject}: [tool.svd-lab.modelarts] notebooks-url {base!r} must be an https:// URL "
                         "(ModelArts fetches the notebook from it)")
    return {"notebooks-url": base, "image-id": settings.get("image-id", "").strip()}


def notebook_public_url(slug: str, notebook: str, branch: str, base: str = "") -> str:
    """The notebook file's public URL: CodeLab downloads the .ipynb behind ``share-url-b64`` and opens it.
    ``base``: a mirror holding the repository's files (``BASE/notebooks/NB.ipynb``); empty: raw GitHub."""
    if base:
        return f"{base}/notebooks/{notebook}"
    return f"https://raw.githubusercontent.com/{slug}/{branch}/notebooks/{notebook}"


def modelarts_url(slug: str, notebook: str, branch: str, base: str = "", image_id: str = "") -> str:
    """CodeLab's share link: ``share-url-b64`` is the standard base64 of the notebook's public URL."""
    encoded = base64.b64encode(notebook_public_url(slug, notebook, branch, base).encode()).decode("ascii")
    return f"{MODELARTS_LAB}?share-url-b64={encoded}" + (f"&imageid={image_id}" if image_id else "")


def notebooks(folder: Path = ROOT / "notebooks") -> list[str]:
    names = sorted(p.name for p in folder.glob("[0-9][0-9]_*.ipynb"))
    if not names:
        raise SystemExit(f"no notebooks in {folder}")
    return names


def badge_table(url: str, names: list[str], branch: str = "main", modelarts: dict | None = None) -> str:
    slug = github_slug(url)
    modelarts = modelarts or {}
    base, image_id = modelarts.get("notebooks-url", ""), modelarts.get("image-id", "")
    lines = ["| notebook | Colab | Binder | ModelArts |", "|---|---|---|---|"]
    for nb in names:
        lines.append(
            f"| `{nb}` "
            f"| [![Open in Colab]({BADGES['colab']})]({colab_url(slug, nb, branch)}) "
            f"| [![Launch Binder]({BADGES['binder']})]({binder_url(slug, nb, branch)}) "
            f"| [![Run in ModelArts]({BADGES['modelarts']})]({modelarts_url(slug, nb, branch, base, image_id)}) |"
        )
    return "\n".join(lines)


def replace_between_markers(text: str, table: str) -> str:
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(text):
        raise SystemExit(f"the README has no {START} ... {END} markers: add them where the badges belong")
    return pattern.sub(lambda _: f"{START}\n{table}\n{END}", text, count=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one-click launch badges for the course notebooks")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", metavar="README", help="replace the badge block in this file")
    group.add_argument("--check", metavar="README", help="exit 1 when this file's badge block is out of date")
    parser.add_argument("--branch", default="main")
    parser.add_argument("--folder", default="", help="a folder under notebooks/ (zh-CN: the Chinese edition)")
    args = parser.parse_args(argv)
    folder = args.folder.strip("/")
    names = [f"{folder}/{nb}" if folder else nb for nb in notebooks(ROOT / "notebooks" / folder)]
    table = badge_table(repository_url(), names, args.branch, modelarts_settings())
    target = args.write or args.check
    if not target:
        print(table)
        return 0
    path = Path(target)
    text = path.read_text()
    updated = replace_between_markers(text, table)
    if args.check:
        if updated != text:
            print(f"{path}: launch badges out of date: python tools/make_badges.py --write {path}", file=sys.stderr)
            return 1
        return 0
    if updated != text:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(updated)
        tmp.replace(path)
        print(f"updated the badges in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
