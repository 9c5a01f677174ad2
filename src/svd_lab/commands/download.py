"""``svd-lab download NAME``: fetch a checkpoint from the hub, a mirror, ModelScope or OBS, verified, resumable."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Download a checkpoint into checkpoints/NAME/ (see `svd-lab models` for the names, sizes and licences).

The command either ends with every file complete and its sha256 checked against the hub, or it stops with a
message saying what to do. Interrupted? Run the same command again: it resumes where it stopped (partial files
wait in checkpoints/NAME/.svd-lab/staging/). A file that arrives corrupted is discarded and fetched again;
nothing incomplete is ever put under its final name, so loaders never see it.
"""

EPILOG = """\
examples:
  svd-lab download svd                          diffusers layout, fp16 weights (about 4.5 GB)
  svd-lab download svd_xt --variant fp32        full-precision weights (about 9 GB)
  svd-lab download svd --format sgm             Stability's single file svd.safetensors (about 9.6 GB)
  svd-lab download svd --dry-run                show the files, sizes and free space; download nothing

hub blocked (mainland China): use the mirror https://hf-mirror.com
  svd-lab download svd --endpoint https://hf-mirror.com
  or once for the shell:  export HF_ENDPOINT=https://hf-mirror.com

ModelScope (https://www.modelscope.cn, fast from mainland China), for the releases it holds (svd_xt):
  svd-lab download svd_xt --source modelscope
  same verification and resume; --endpoint overrides MODELSCOPE_ENDPOINT, --revision defaults to master; a token
  (MODELSCOPE_API_TOKEN or `modelscope login`) only for private repositories; files already in the ModelScope cache
  (~/.cache/modelscope, or MODELSCOPE_CACHE) are copied from there

gated repositories (svd_xt_1_1):
  1. open the model page on https://huggingface.co, log in and accept the licence
  2. create a read token at https://huggingface.co/settings/tokens
  3. `hf auth login` in a terminal, or `export HF_TOKEN=...` before starting svd-lab or Jupyter.
     Never paste a token into a notebook cell: notebooks get shared.

offline (HF_HUB_OFFLINE=1): nothing is fetched; the command succeeds if the files are already present and
verified, and says which are missing otherwise.

storage: checkpoints/NAME/ is what svd-lab loads. A file already in the Hugging Face cache
(~/.cache/huggingface/hub, or HF_HUB_CACHE) for the same commit is copied from there instead of downloaded.
Files placed by hand, like checkpoints/svd.safetensors, are found too; --format sgm verifies such a file in place.

Huawei ModelArts: copy from OBS with MoXing (only inside ModelArts):
  svd-lab download svd --from obs://my-bucket/checkpoints/svd
"""


def register(sub) -> None:
    # the registry names the checkpoints and formats (it imports no network client: `svd-lab --help` stays fast)
    from svd_lab.checkpoints.registry import DIFFUSERS, REGISTRY, SGM
    from svd_lab.svd.layout import FP16

    downloadable = ", ".join(name for name, spec in REGISTRY.items() if spec.downloadable)
    p = sub.add_parser("download", help="download a checkpoint (hub, mirror, ModelScope or OBS), verified, resumable",
                       description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", metavar="NAME", help=f"checkpoint name: {downloadable} (see `svd-lab models`)")
    p.add_argument("--format", choices=(DIFFUSERS, SGM), default=DIFFUSERS,
                   help="diffusers: folder layout the pipeline loads (default); sgm: Stability's single file")
    p.add_argument("--variant", choices=(FP16, "fp32"), default=FP16,
                   help="diffusers weights: fp16 (default, half the size) or fp32 (full precision)")
    p.add_argument("--dir", metavar="DIR",
                   help="checkpoints folder (default: checkpoints/ of the project, or $SVD_LAB_CHECKPOINTS)")
    p.add_argument("--source", choices=("hub", "modelscope"), default="hub",
                   help="hub: the Hugging Face hub or a mirror (default); modelscope: www.modelscope.cn")
    p.add_argument("--endpoint", metavar="URL",
                   help="hub or mirror URL, e.g. https://hf-mirror.com (default: $HF_ENDPOINT, else "
                        "https://huggingface.co); with --source modelscope: $MODELSCOPE_ENDPOINT, else "
                        "https://modelscope.cn")
    p.add_argument("--revision", default=None,
                   help="branch, tag or commit of the repository (default: main on the hub, master on ModelScope)")
    p.add_argument("--from", dest="obs_source", metavar="obs://BUCKET/PATH",
                   help="copy from Huawei OBS with MoXing instead (only inside ModelArts)")
    p.add_argument("--verify", action="store_true",
                   help="re-hash files already present instead of trusting their recorded verification")
    p.add_argument("--dry-run", action="store_true", help="show what would be downloaded and the free space; stop")
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-file lines")
    p.set_defaults(func=run)


def run(args) -> int:
    from svd_lab.checkpoints import hub, obs

    log = (lambda *a, **k: None) if args.quiet else print
    if args.obs_source:
        result = obs.copy_from_obs(args.name, args.obs_source, format=args.format, variant=args.variant,
                                   dir=args.dir, log=log)
        print(f"{result.checkpoint.name} ({result.checkpoint.format}) copied from {args.obs_source} to "
              f"{result.checkpoint.path}")
        return 0
    if args.source == "modelscope":
        from svd_lab.checkpoints import modelscope as source
    else:
        source = hub
    options = {"revision": args.revision} if args.revision else {}
    if args.dry_run:
        plan = source.plan_download(args.name, format=args.format, variant=args.variant, dir=args.dir,
                                    endpoint=args.endpoint, verify=args.verify, **options)
        print(plan.summary())
        if plan.free is not None and plan.bytes_to_write + hub.DISK_MARGIN > plan.free:
            print("NOT enough free disk space for this download.")
            return 1
        return 0
    if source is hub:
        options["progress"] = not args.quiet
    result = source.download(args.name, format=args.format, variant=args.variant, dir=args.dir,
                             endpoint=args.endpoint, verify=args.verify, log=log, **options)
    print(result)
    if result.refetched_corrupt:
        print(f"note: {', '.join(result.refetched_corrupt)} arrived corrupted and was fetched again")
    return 0
