"""``svd-lab models``: the checkpoints svd-lab knows, their sizes and licences, and which are present locally."""

from __future__ import annotations

import argparse
import json

EPILOG = """\
Formats:
  diffusers  a folder (unet/, vae/, image_encoder/, ...) that the course's pipeline loads directly;
             fp16 weights by default (about 4.5 GB), full precision with --variant fp32 (about 9 GB)
  sgm        Stability's single file (about 9.6 GB), as used by generative-models and the seed article;
             svd-lab converts it when loading
  mini       the course's own bouncing-ball world model (notebooks 01, 02), shipped in the repository
  small      the small SVD trained by svd-lab (profile small: notebooks 03, 04 on a CPU), shipped in the
             repository

Get one:      svd-lab download svd
Hub blocked?  svd-lab download svd --endpoint https://hf-mirror.com   (mainland China mirror)
"""


def register(sub) -> None:
    p = sub.add_parser(
        "models",
        help="list known checkpoints (size, licence, gated) and which are present locally",
        description="List the checkpoints svd-lab knows: format, download size, whether they are present in the "
                    "checkpoints folder, whether the hub repository is gated, and the licence.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", metavar="DIR",
                   help="checkpoints folder (default: checkpoints/ of the project, or $SVD_LAB_CHECKPOINTS)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON instead of the table")
    p.set_defaults(func=run)


def _gb(n: int | None) -> str:
    if not n:
        return "-"
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


def _local_state(found, name: str, fmt: str) -> tuple[str, object]:
    for c in found:
        if c.name == name and c.format == fmt:
            if not c.usable:
                return "INCOMPLETE", c
            where = " (by hand)" if c.placed == "hand" else ""
            variant = f" {c.variant}" if c.variant else ""
            return ("verified" if c.verified else "yes") + variant + where, c
    return "-", None


def collect(dir=None) -> dict:
    """The table's content as data: one row per (checkpoint, format), plus local checkpoints not in the registry."""
    from svd_lab.checkpoints import REGISTRY, present_checkpoints
    from svd_lab.checkpoints.local import checkpoints_root
    from svd_lab.checkpoints.registry import DIFFUSERS
    from svd_lab.svd.layout import FP16

    root = checkpoints_root(dir)
    found = present_checkpoints(root)
    rows, matched = [], set()
    for spec in REGISTRY.values():
        for fmt in spec.formats:
            state, ckpt = _local_state(found, spec.name, fmt)
            if ckpt is not None:
                matched.add(id(ckpt))
            size = spec.size(fmt, FP16 if fmt == DIFFUSERS and not spec.listed else None)
            if ckpt is not None and ckpt.size_bytes:
                size = ckpt.size_bytes
            rows.append({"name": spec.name, "format": fmt, "size_bytes": size, "local": state,
                         "path": str(ckpt.path) if ckpt else None,
                         "problem": ckpt.reason if ckpt is not None and not ckpt.usable else None,
                         "gated": spec.gated, "licence": spec.licence, "repo_id": spec.repo_id,
                         "description": spec.description, "estimate": spec.listed})
    others = [{"name": c.name, "format": c.format, "path": str(c.path), "usable": c.usable, "problem": c.reason}
              for c in found if id(c) not in matched]
    return {"checkpoints_dir": str(root), "rows": rows, "unregistered": others}


def render(data: dict) -> str:
    header = ("name", "format", "size", "local", "gated", "licence")
    table = [header]
    previous = None
    for r in data["rows"]:
        table.append((r["name"] if r["name"] != previous else "", r["format"],
                      _gb(r["size_bytes"]) + ("**" if r.get("estimate") and r["local"] == "-" else
                                              "*" if r["format"] == "diffusers" and r["local"] == "-" else ""),
                      r["local"], ("yes" if r["gated"] else "no") if r["repo_id"] else "-", r["licence"]))
        previous = r["name"]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    lines = [f"Checkpoints known to svd-lab (local folder: {data['checkpoints_dir']})", ""]
    for i, row in enumerate(table):
        lines.append("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("* diffusers sizes are the fp16 download (default); full precision (--variant fp32) is about twice "
                 "that.")
    lines.append("** Wan: an estimate, parameters x 4 bytes (float32; wan2.1's repository is 28.9 GB, 22.7 GB of it "
                 "the UMT5-XXL text encoder); a download checks the exact sizes the server lists.")
    problems = [r for r in data["rows"] if r["problem"]] + [r for r in data["unregistered"] if r["problem"]]
    if problems:
        lines += ["", "Present but not usable (loaders will refuse them):"]
        lines += [f"  {r['name']} ({r['format']}) at {r['path']}: {r['problem']}" for r in problems]
    extra = [r for r in data["unregistered"] if not r["problem"]]
    if extra:
        lines += ["", "Also found (not in the registry):"]
        lines += [f"  {r['name']} ({r['format']}) at {r['path']}" for r in extra]
    lines += [
        "",
        "What to download: svd (14 frames) or svd_xt (25 frames) for the course's full profile; they need a CUDA",
        "GPU with about 16 GB or more. On a CPU the course runs the tiny and small profiles, no download needed.",
        "",
        "  svd-lab download svd                        diffusers layout, fp16 (about 4.5 GB) into checkpoints/svd/",
        "  svd-lab download svd --format sgm           Stability's single file (about 9.6 GB)",
        "  svd-lab download svd --endpoint https://hf-mirror.com   through the mirror (mainland China)",
        "  svd-lab download --help                     gated repos, tokens, offline use, ModelArts OBS",
        "",
        "Wan (text to video, a video DiT trained with flow matching): wan2.1-t2v-1.3b (Wan's figure: 8.19 GB VRAM at",
        "480p with offloading), wan2.2-ti2v-5b (text or image to video, 720p on a 24 GB GPU by Wan's figure).",
        "  svd-lab download wan2.1-t2v-1.3b --source modelscope   from ModelScope (mainland China)",
        "  svd-lab sample --model wan2.1-t2v-1.3b --prompt \"a cat walks on the beach\"",
        "",
        "Licences: read the model card on the hub before using a checkpoint. Gated repos (svd_xt_1_1) need you to",
        "accept the licence on the hub page first, then a token: `hf auth login` or HF_TOKEN.",
    ]
    return "\n".join(lines)


def run(args) -> int:
    data = collect(args.dir)
    print(json.dumps(data, indent=1) if args.json else render(data))
    return 0
